"""ONNX Runtime, imported when asked for, in whichever of its two packages is installed.

The project names neither `onnxruntime` nor `onnxruntime-gpu` in its base dependencies: both install the
same `onnxruntime/` folder, and a machine with both loses the CUDA provider to whichever was installed
last. The extras choose one (`[cpu]`, or `[gpu]` / `[gpu-cu12]`), and a missing one is refused in one line.
"""

from __future__ import annotations

from importlib import metadata

from interactive_trt.common.errors import BackendUnavailable
from interactive_trt.common.extras import install

ORT_EXTRA = install("cpu", "or the gpu extra on a machine with an NVIDIA GPU")
PACKAGES = ("onnxruntime", "onnxruntime-gpu")


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailable(f"ONNX Runtime is not installed: {ORT_EXTRA}") from None
    except OSError as exc:  # onnxruntime-gpu whose CUDA libraries do not load
        raise BackendUnavailable(f"ONNX Runtime cannot load its libraries ({exc}); {ORT_EXTRA}") from None
    return onnxruntime


def installed_packages() -> list[str]:
    """Which of onnxruntime and onnxruntime-gpu pip has installed (both is the broken case)."""
    found = []
    for name in PACKAGES:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def both_installed_hint() -> str | None:
    if len(installed_packages()) < 2:
        return None
    return ("onnxruntime and onnxruntime-gpu are both installed and share one folder, which loses the CUDA "
            "provider: pip uninstall -y onnxruntime onnxruntime-gpu, then "
            + install("cpu", "or the gpu one"))


CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"


def cuda_options(precision: str = "fp32", **overrides) -> dict[str, str]:
    """The CUDA provider's options for a graph of `precision` (the manifest's).

    The provider computes float32 convolutions and products in TF32 unless told not to: with its
    default, EfficientNet-Lite0's real weights on photos fell to cosine 0.9887 (block0.interactive_avg)
    against the CPU, under even the reduced bounds; with TF32 off, 0.99999. So TF32 is off for fp32 and
    fp16-backward graphs (whose float32 forward pass decides every mask). An fp16 graph keeps it on: its
    cuDNN plans are built without Tensor Cores otherwise, and its float32 parts (connection sums and
    spreads of float16 values) are held to the reduced bounds it is verified under anyway.
    `overrides` (a provider option name and value each) are for measurements.
    """
    options = {"use_tf32": "1" if precision == "fp16" else "0"}
    options.update({name: str(value) for name, value in overrides.items()})
    return options


def session_providers(device: str, precision: str = "fp32", **overrides) -> list:
    """What InferenceSession's `providers` gets for --device auto, cpu or cuda: the CUDA provider with
    `cuda_options` where onnxruntime-gpu has one (auto, cuda), else the CPU; cuda without one is refused
    in one line."""
    ort = import_onnxruntime()
    if device == "cpu":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER in ort.get_available_providers():
        return [(CUDA_PROVIDER, cuda_options(precision, **overrides)), CPU_PROVIDER]
    if device == "cuda":
        raise BackendUnavailable(both_installed_hint() or (
            f"ONNX Runtime has no CUDA provider here: {install('gpu', 'onnxruntime-gpu')} "
            "on a machine with an NVIDIA GPU, or use --device cpu"))
    return [CPU_PROVIDER]


def provider_name(provider) -> str:
    return provider[0] if isinstance(provider, tuple) else provider
