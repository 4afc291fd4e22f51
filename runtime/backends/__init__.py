"""Backend registry; each backend module is imported only when chosen (tensorrt and torch are heavy)."""

from __future__ import annotations

from interactive_trt.common.errors import InterActiveError

BACKENDS = ("onnxruntime", "tensorrt", "torch")


def make_runner(backend: str, model, device: str = "auto", **options):
    if backend in ("onnxruntime", "ort", "onnxrt"):
        from interactive_trt.runtime.backends.onnxrt import OnnxRuntimeRunner

        return OnnxRuntimeRunner(model, device=device, **options)
    if backend == "torch":
        from interactive_trt.runtime.backends.torch_graph import TorchGraphRunner

        return TorchGraphRunner(model, device=device)
    if backend in ("tensorrt", "trt"):
        from interactive_trt.runtime.backends.tensorrt import TensorRTRunner

        return TensorRTRunner(model, device=device, **options)
    raise InterActiveError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
