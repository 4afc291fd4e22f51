"""The explicit InterActive graph on PyTorch, with the weights read back from the ONNX file, so the
torch backend needs nothing the ONNX path does not have. Imported only when asked for."""

from __future__ import annotations

import numpy as np

from interactive_trt.common.errors import BackendUnavailable, ManifestError

from interactive_trt.runtime.backends.base import Runner


def weights_from_onnx(model):
    import onnx
    from onnx import numpy_helper

    from interactive_trt.exporter.networks.weights import Weights

    proto = onnx.load(str(model.onnx_path))
    initializers = {item.name: item for item in proto.graph.initializer}
    arrays = {}
    for layer in model.manifest.model.conv_layers():
        try:
            weight = numpy_helper.to_array(initializers[f"{layer.name}__weight"])
            bias = numpy_helper.to_array(initializers[f"{layer.name}__bias"])
        except KeyError:
            raise ManifestError(f"{model.onnx_path}: no weights for layer {layer.name!r} in the ONNX file") from None
        arrays[layer.name] = (np.ascontiguousarray(weight, dtype=np.float32),
                              np.ascontiguousarray(bias, dtype=np.float32))
    weights = Weights(arrays=arrays, source=str(model.onnx_path))
    # an fp16 file holds rounded weights (fp16-backward keeps float32 ones); the ONNX file's own digest has already been checked
    if model.manifest.precision != "fp16" and weights.digest != model.manifest.weights_sha256:
        raise ManifestError(f"{model.onnx_path}: weights digest differs from the manifest's; re-export")
    return weights


class TorchGraphRunner(Runner):
    name = "torch"

    def __init__(self, model, device: str = "auto"):
        super().__init__(model)
        self.device = device

    def activate_impl(self) -> None:
        try:
            import torch
        except ImportError:
            raise BackendUnavailable("the torch backend needs PyTorch: pip install 'interactive-trt[torch]'") from None
        from interactive_trt.exporter.interactive.graph import InterActiveGraph

        manifest = self.model.manifest
        if self.device == "auto":
            self.torch_device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            self.torch_device = self.device
        if str(self.torch_device).startswith("cuda"):
            # TF32 convolutions keep 10 mantissa bits, as fp16 does: on an H100 they moved pool1's gamma to a
            # cosine of 0.997 against the float32 CPU run. Off, as for the engines and the reference.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        self.graph = InterActiveGraph(manifest.model, weights_from_onnx(self.model), config=manifest.config,
                                      p=manifest.p, head=manifest.head, seed_scale=manifest.seed_scale,
                                      interactive=manifest.interactive, precision=manifest.precision,
                                      loss_scale=manifest.loss_scale).eval().to(self.torch_device)
        self._torch = torch

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            outputs = self.graph.named_outputs(torch.from_numpy(image).to(self.torch_device))
        return {name: value.float().cpu().numpy() for name, value in outputs.items()}

    def deactivate_impl(self) -> None:
        self.graph = None
