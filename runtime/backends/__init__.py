"""Backend registry; each backend module is imported only when chosen (tensorrt, torch and openvino are
heavy, and the ONNX Runtime path must import none of them)."""

from __future__ import annotations

import os

from interactive_trt.common.errors import InterActiveError

BACKENDS = ("onnxruntime", "openvino", "tensorrt", "torch")
# what a backend may compute in besides the exported graph's own precision (--precision)
PRECISIONS = ("exported", "bf16")
REDUCED_PRECISION_BACKENDS = ("openvino",)


def check_precision(backend: str, precision: str) -> None:
    if precision not in PRECISIONS:
        raise InterActiveError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision != "exported" and backend not in REDUCED_PRECISION_BACKENDS:
        raise InterActiveError(f"--precision {precision} is offered by --backend openvino only; {backend} computes "
                               f"the graph as exported (interactive-export --fp16 writes a float16 graph)")


# how the CPU backends run 3x3 layers: "auto" (Winograd F(4x4, 3x3) where it pays: interactive_trt.forms.winograd)
# or "direct" (the exported convolutions); the environment variable sets the default
CONVOLUTIONS = ("auto", "direct")
CONVOLUTIONS_VARIABLE = "INTERACTIVE_CPU_CONVOLUTIONS"


def cpu_convolutions(options: dict) -> str:
    choice = options.pop("convolutions", None) or os.environ.get(CONVOLUTIONS_VARIABLE, "auto")
    if choice not in CONVOLUTIONS:
        raise InterActiveError(f"{CONVOLUTIONS_VARIABLE}={choice!r}: choose one of {', '.join(CONVOLUTIONS)}")
    return choice


ALIASES = {"ort": "onnxruntime", "onnxrt": "onnxruntime", "ov": "openvino", "trt": "tensorrt"}
BACKEND_HELP = " | ".join(BACKENDS)
THREADED = ("onnxruntime", "openvino")  # the CPU runtimes, which take `threads`
BATCH_SIZED = ("tensorrt",)  # sizes its buffers and picks its engines for `batch_size`


def backend_name(backend: str) -> str:
    """The registry's name for what the user typed (aliases included); an unknown one refused."""
    name = ALIASES.get(backend, backend)
    if name not in BACKENDS:
        raise InterActiveError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return name


def check_verified(model, precision: str) -> None:
    """A reduced precision that missed its bounds when the model was exported is refused for it."""
    manifest = getattr(model, "manifest", None)
    refused = (getattr(manifest, "verification", None) or {}).get("refused_precisions") or {}
    if precision in refused:
        raise InterActiveError(f"{model.onnx_path}: --precision {precision} missed its reduced bounds when this model "
                               f"was exported ({refused[precision]}); run it at the exported precision")


def make_runner(backend: str, model, device: str = "auto", precision: str = "exported", **options):
    backend = backend_name(backend)
    check_precision(backend, precision)
    check_verified(model, precision)
    convolutions = cpu_convolutions(options)
    if backend == "onnxruntime":
        from interactive_trt.runners.onnxrt import OnnxRuntimeRunner

        return OnnxRuntimeRunner(model, device=device, convolutions=convolutions, **options)
    if backend == "openvino":
        from interactive_trt.runners.openvino import OpenVinoRunner

        return OpenVinoRunner(model, device=device, precision=precision, convolutions=convolutions, **options)
    if backend == "torch":
        from interactive_trt.runtime.backends.torch_graph import TorchGraphRunner

        return TorchGraphRunner(model, device=device, **options)
    from interactive_trt.runtime.backends.tensorrt import TensorRTRunner

    return TensorRTRunner(model, device=device, **options)
