"""ONNX Runtime: CUDA execution provider when onnxruntime-gpu has one, else CPU. Which ONNX Runtime package
is installed is the extras' choice (common.ort); none is refused in one line. On the CPU the graph runs
in the forms ONNX Runtime's CPU kernels run fast (exporter.onnx.cpu) unless `convolutions="direct"`."""

from __future__ import annotations

import numpy as np

from interactive_trt.common.errors import BackendUnavailable
from interactive_trt.common.ort import both_installed_hint, import_onnxruntime
from interactive_trt.exporter.onnx.cpu import cpu_model

from interactive_trt.runtime.backends.base import Runner


def choose_providers(device: str) -> list[str]:
    ort = import_onnxruntime()
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise BackendUnavailable(both_installed_hint() or (
            "ONNX Runtime has no CUDA provider here: pip install 'interactive-trt[gpu]' (onnxruntime-gpu) "
            "on a machine with an NVIDIA GPU, or use --device cpu"))
    return ["CPUExecutionProvider"]


def session_source(path, providers: list[str], convolutions: str) -> tuple[str | bytes, dict[str, int]]:
    """What a session loads: on the CPU provider the graph's CPU form (unless "direct"), else the file."""
    if providers[0] == "CPUExecutionProvider" and convolutions == "auto":
        return cpu_model(path, "onnxruntime")
    return str(path), {"winograd": 0, "products": 0}


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, model, device: str = "auto", threads: int = 0, convolutions: str = "auto"):
        super().__init__(model)
        self.device, self.threads, self.convolutions, self.session = device, threads, convolutions, None
        self.winograd_layers = 0

    def activate_impl(self) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        providers = choose_providers(self.device)
        try:
            source, counts = session_source(self.model.onnx_path, providers, self.convolutions)
            self.winograd_layers = counts["winograd"]
            self.session = ort.InferenceSession(source, options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise BackendUnavailable(f"{self.model.onnx_path}: ONNX Runtime cannot load it ({first})") from None
        self.providers = self.session.get_providers()
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, {self.model.manifest.input_name: image})
        return dict(zip(self.output_names, values))

    def deactivate_impl(self) -> None:
        self.session = None
