"""The explicit InterActive graph on PyTorch, with the weights read back from the ONNX file, so the
torch backend needs nothing the ONNX path does not have. Imported only when asked for."""

from __future__ import annotations

import numpy as np

from interactive_trt.common.errors import BackendUnavailable, ManifestError
from interactive_trt.common.extras import install
from interactive_trt.common.memory import keep_freed_memory
from interactive_trt.runners.base import Runner


def weights_from_onnx(model):
    import onnx
    from onnx import numpy_helper

    from interactive_trt.exporter.public import Weights, parameter_shape

    proto = onnx.load(str(model.onnx_path))
    initializers = {item.name: item for item in proto.graph.initializer}
    for node in proto.graph.node:  # torch.onnx keeps one of several equal parameters (zero biases, say) and
        if node.op_type == "Identity" and node.input[0] in initializers:  # names the others by an Identity
            initializers.setdefault(node.output[0], initializers[node.input[0]])
    arrays = {}
    for layer in model.manifest.model.parameter_layers():
        try:
            weight = numpy_helper.to_array(initializers[f"{layer.name}__weight"])
            bias = numpy_helper.to_array(initializers[f"{layer.name}__bias"])
        except KeyError:
            raise ManifestError(f"{model.onnx_path}: no weights for layer {layer.name!r} in the ONNX file") from None
        if layer.op != "conv":  # stored 1 x C x 1 x 1 (graph.InterActiveGraph)
            weight, bias = weight.reshape(parameter_shape(layer)), bias.reshape(parameter_shape(layer))
        arrays[layer.name] = (np.ascontiguousarray(weight, dtype=np.float32),
                              np.ascontiguousarray(bias, dtype=np.float32))
    weights = Weights(arrays=arrays, source=str(model.onnx_path))
    # an fp16 file holds rounded weights (fp16-backward keeps float32 ones); the ONNX file's own digest has already been checked
    if model.manifest.precision != "fp16" and weights.digest != model.manifest.weights_sha256:
        raise ManifestError(f"{model.onnx_path}: weights digest differs from the manifest's; re-export")
    return weights


def prepare_graph(graph, device: str, channels_last: bool = False, compile: bool = False):
    """The graph on `device`, as the torch backend runs it, and the memory format its input takes.

    channels_last: cuDNN's Tensor Core kernels compute NHWC; an NCHW graph pays a layout conversion around
    each of them. compile: torch.compile (inductor) fuses the masks, routing and casts between the
    convolutions; it compiles once per input shape, which a long job amortizes and a single photo does
    not. Both are the user's choice where they are not measured to pay (docs/gpu.md)."""
    import torch

    layout = torch.channels_last if channels_last else torch.contiguous_format
    graph = graph.to(device)
    if channels_last:
        graph = graph.to(memory_format=torch.channels_last)  # the 4-D buffers: kernels and spreads
    return (torch.compile(graph, dynamic=False) if compile else graph), layout


class TorchGraphRunner(Runner):
    name = "torch"

    def __init__(self, model, device: str = "auto", channels_last: bool | None = None, compile: bool = False,
                 keep_memory: bool = True):
        """keep_memory: on the CPU, glibc keeps the memory a call frees for the next one instead of
        unmapping it (interactive_trt.common.memory): the pages are not faulted in again on every call."""
        super().__init__(model)
        self.device, self.channels_last, self.compile = device, channels_last, compile
        self.keep_memory = keep_memory
        self.memory_kept = False

    def activate_impl(self) -> None:
        try:
            import torch
        except ImportError:
            raise BackendUnavailable(f"the torch backend needs PyTorch: {install('export')}") from None
        from interactive_trt.exporter.public import InterActiveGraph

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
        graph = InterActiveGraph(manifest.model, weights_from_onnx(self.model), config=manifest.config,
                                 p=manifest.p, head=manifest.head, seed_scale=manifest.seed_scale,
                                 interactive=manifest.interactive, precision=manifest.precision,
                                 loss_scale=manifest.loss_scale).eval()
        on_gpu = str(self.torch_device).startswith("cuda")
        if not on_gpu and self.keep_memory:
            self.memory_kept = keep_freed_memory()
        if on_gpu:
            torch.backends.cudnn.benchmark = True  # cuDNN times its plans once per shape, as the engines' builder does
        # channels_last by default where it was measured to pay: an fp16 graph on a GPU (H200, VGG-19 at 512x512,
        # batch 32: 69.4 -> 66.7 ms); float32 convolutions with TF32 off have no Tensor Core kernels to feed
        default_layout = on_gpu and manifest.precision == "fp16"
        channels_last = default_layout if self.channels_last is None else self.channels_last
        self.output_names = graph.output_names
        self.graph, self.layout = prepare_graph(graph, self.torch_device, channels_last, self.compile)
        self._torch = torch

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            batch = torch.from_numpy(image).to(self.torch_device).contiguous(memory_format=self.layout)
            outputs = dict(zip(self.output_names, self.graph(batch)))
        return {name: value.float().cpu().numpy() for name, value in outputs.items()}

    def bound_impl(self, image: np.ndarray):
        """The input on the device in the graph's layout once; each call runs the graph and waits for the GPU."""
        torch = self._torch
        batch = torch.from_numpy(image).to(self.torch_device).contiguous(memory_format=self.layout)
        on_gpu = str(self.torch_device).startswith("cuda")

        def run() -> None:
            with torch.inference_mode():
                self.graph(batch)
            if on_gpu:
                torch.cuda.synchronize()

        return run

    def deactivate_impl(self) -> None:
        self.graph = None
