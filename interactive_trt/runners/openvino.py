"""OpenVINO on the CPU: the ONNX file compiled by the OpenVINO loader (interactive_trt.forms.openvino),
one infer request per runner. Imported only when asked for.

`precision="bf16"` computes the backward pass's convolutions in bfloat16 (the forward pass, whose ReLU
masks and max-pool routing decide where gradients go, stays float32); refused where the CPU has no bf16.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from interactive_trt.common.errors import BackendUnavailable
from interactive_trt.forms.openvino import CompiledGraph
from interactive_trt.runners.base import Runner


class OpenVinoRunner(Runner):
    name = "openvino"

    def __init__(self, model, device: str = "auto", precision: str = "exported", threads: int = 0,
                 convolutions: str = "auto"):
        super().__init__(model)
        if device == "cuda":
            raise BackendUnavailable("the OpenVINO backend runs on the CPU; use --device cpu (or auto)")
        self.precision, self.threads, self.convolutions, self.graph = precision, threads, convolutions, None
        self.winograd_layers = 0

    def activate_impl(self) -> None:
        self.graph = CompiledGraph(self.model.onnx_path, self.precision, self.model.precision, self.threads,
                                   convolutions=self.convolutions)
        self.winograd_layers = self.graph.winograd_layers
        self.output_names = list(self.model.output_names) or self.graph.output_names

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        return self.graph(image, self.output_names)

    def bound_impl(self, image: np.ndarray) -> Callable[[], None]:
        """The infer request alone (compiled for the image's shape first): the input shared, not copied; the
        outputs stay in OpenVINO's buffers."""
        request = self.graph.request_for(image.shape)
        return lambda: request.infer([image], share_inputs=True)

    def deactivate_impl(self) -> None:
        self.graph.close()
        self.graph = None
