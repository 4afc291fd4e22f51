"""ONNX Runtime, imported when asked for, in whichever of its two packages is installed.

The project names neither `onnxruntime` nor `onnxruntime-gpu` in its base dependencies: both install the
same `onnxruntime/` folder, and a machine with both loses the CUDA provider to whichever was installed
last. The extras choose one (`[cpu]`, or `[gpu]` / `[gpu-cu12]`), and a missing one is refused in one line.
"""

from __future__ import annotations

from importlib import metadata

from interactive_trt.common.errors import BackendUnavailable

ORT_EXTRA = "pip install 'interactive-trt[cpu]' (or [gpu] on a machine with an NVIDIA GPU)"
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
            "provider: pip uninstall -y onnxruntime onnxruntime-gpu, then install one extra "
            "('interactive-trt[cpu]' or '[gpu]')")
