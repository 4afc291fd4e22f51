"""OpenVINO's CPU plugin as one more runtime for exported graphs: how a graph is read, compiled and run.

Shared by the runtime's `openvino` backend and by export verification, so that both run exactly the
same compiled model. Nothing here imports openvino until a function asks for it.

Two things make OpenVINO compute our graph as ONNX Runtime does:

* **Backward kernels of their own.** The explicit backward pass applies each layer's own kernel
  transposed: a ConvTranspose reads the very initializer its forward Conv reads. OpenVINO's CPU
  plugin (2026.4) then runs the transposed convolution with the forward convolution's prepared
  kernel, as if it were W[d, c] instead of W[c, d]: gamma maps come out with cosines near 0, or
  negative, against ONNX Runtime, and square kernels (fc7, conv5_x) hide it from every shape check.
  Here, when the model is read, each stride-1 transposed convolution becomes the convolution it
  equals, with its kernel transposed and flipped in a constant of its own; the strided ones keep
  their op and get a copy of a shared constant. The ONNX file stays as it is, so ONNX Runtime and
  TensorRT pay nothing (README, *OpenVINO*, has the measured costs of each place for this fix).
* **An explicit precision.** On CPUs with bfloat16 units OpenVINO's default inference precision is
  bf16, not f32, so we always compile with f32. `bf16` computes the backward convolutions (now
  ordinary convolutions) in bfloat16 with float32 in and out; the forward pass, whose rounding would
  move ReLU masks and max-pool arg-maxes (OpenVINO's own bf16 hint does, and misses the reduced
  bounds), and the connection sums stay float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from interactive_trt.common.errors import BackendUnavailable, InterActiveError

INSTALL_HINT = "pip install 'interactive-trt[openvino]'"
# the runtime's --precision: our name -> the type the backward convolutions compute in
INFERENCE_PRECISIONS = {"exported": "f32", "bf16": "bf16"}
BACKWARD_OPS = ("ConvolutionBackpropData", "GroupConvolutionBackpropData")


class PrecisionUnavailable(InterActiveError):
    """A reduced inference precision the CPU (or the exported graph) cannot give."""


def openvino():
    """The openvino module, or a one-line error that says what to install."""
    try:
        import openvino as ov
    except ImportError:
        raise BackendUnavailable(f"OpenVINO is not installed: {INSTALL_HINT}") from None
    return ov


def is_installed() -> bool:
    try:
        openvino()
    except BackendUnavailable:
        return False
    return True


def version() -> str:
    return openvino().get_version()


def opset():
    """OpenVINO's op factories (top-level since 2025, under openvino.runtime before)."""
    openvino()
    try:
        from openvino import opset13
    except ImportError:
        from openvino.runtime import opset13
    return opset13


def as_convolution(node, compute_type=None):
    """A stride-1 transposed convolution as the convolution it equals: the kernel transposed (input and
    output channels swapped) and flipped, in a constant of its own, padded by k - 1 - p.

    `compute_type` ("bf16") computes it in that type, with float32 in and out. None when the node is
    not of that form.
    """
    ops = opset()
    attributes = node.get_attributes()
    weight = node.input_value(1).get_node()
    if (node.get_type_name() != "ConvolutionBackpropData" or node.get_input_size() != 2
            or weight.get_type_name() != "Constant" or any(s != 1 for s in attributes["strides"])
            or any(d != 1 for d in attributes["dilations"]) or any(attributes["output_padding"])
            or attributes["auto_pad"] != "explicit"):
        return None
    kernel = weight.get_data()
    if kernel.ndim != 4:
        return None
    size = kernel.shape[2:]
    begin = [k - 1 - p for k, p in zip(size, attributes["pads_begin"])]
    end = [k - 1 - p for k, p in zip(size, attributes["pads_end"])]
    if min(begin + end) < 0:
        return None
    flipped = np.ascontiguousarray(kernel.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    source = node.input_value(0)
    if compute_type is None or np.all(kernel == 1):  # connection sums stay float32, as in an fp16 graph
        return ops.convolution(source, ops.constant(flipped), [1, 1], begin, end, [1, 1])
    typed_kernel = ops.convert(ops.constant(flipped.astype(np.float32)), compute_type)  # folded at compile
    convolution = ops.convolution(ops.convert(source, compute_type), typed_kernel, [1, 1], begin, end, [1, 1])
    return ops.convert(convolution, source.get_element_type())


def rewrite_backward_convolutions(model, compute_type=None) -> dict[str, int]:
    """Every transposed convolution of the backward pass gets a kernel of its own.

    Stride-1 ones become the convolutions they equal (a flipped, transposed kernel: the CPU plugin runs
    them with its convolution kernels, and `compute_type` bf16 reaches them); the others (strided
    connection sums, pool scatter kernels) keep their op but get their own copy of a shared constant.
    Works on an `openvino.Model` before compilation; returns the counts of each.
    """
    ops = opset()
    counts = {"as_convolution": 0, "copied": 0}
    for node in model.get_ordered_ops():
        if node.get_type_name() not in BACKWARD_OPS:
            continue
        replacement = as_convolution(node, compute_type)
        if replacement is not None:
            replacement.set_friendly_name(node.get_friendly_name())
            names = node.output(0).get_names()
            node.output(0).get_tensor().set_names(set())
            replacement.output(0).get_tensor().set_names(names)
            for target in list(node.output(0).get_target_inputs()):
                target.replace_source_output(replacement.output(0))
            counts["as_convolution"] += 1
            continue
        weight = node.input_value(1)
        source = weight.get_node()
        if source.get_type_name() == "Constant" and len(weight.get_target_inputs()) > 1:
            node.input(1).replace_source_output(ops.constant(source.get_data().copy()).output(0))
            counts["copied"] += 1
    model.validate_nodes_and_infer_types()
    return counts


def cpu_capabilities(core) -> list[str]:
    return [str(item) for item in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


def has_bf16() -> bool:
    return "BF16" in cpu_capabilities(openvino().Core())


def check_inference_precision(precision: str, graph_precision: str, capabilities: list[str]) -> str:
    """The compute type of the backward convolutions for our `precision`; refused in one line where it
    cannot be had."""
    if precision not in INFERENCE_PRECISIONS:
        raise PrecisionUnavailable(f"--precision {precision!r}: choose one of {', '.join(INFERENCE_PRECISIONS)}")
    if precision == "bf16":
        if graph_precision != "fp32":
            raise PrecisionUnavailable(f"--precision bf16 reduces a float32 graph; this model computes in "
                                       f"{graph_precision} already")
        if "BF16" not in capabilities:
            raise PrecisionUnavailable(f"--precision bf16: this CPU has no bfloat16 support (OpenVINO reports "
                                       f"{', '.join(capabilities)}); use --precision exported")
    return INFERENCE_PRECISIONS[precision]


def compile_for_cpu(onnx_path: Path, precision: str = "exported", graph_precision: str = "fp32", threads: int = 0):
    """Reads the ONNX file, gives the backward convolutions kernels of their own, compiles for the CPU."""
    ov = openvino()
    core = ov.Core()
    check_inference_precision(precision, graph_precision, cpu_capabilities(core))
    try:
        model = core.read_model(str(onnx_path))
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses with long texts
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailable(f"{onnx_path}: OpenVINO cannot read it ({first})") from None
    rewrite_backward_convolutions(model, "bf16" if precision == "bf16" else None)
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return core.compile_model(model, "CPU", config)


class CompiledGraph:
    """One compiled model and its infer request: named float32 arrays in, named float32 arrays out."""

    def __init__(self, onnx_path: Path, precision: str = "exported", graph_precision: str = "fp32",
                 threads: int = 0):
        self.compiled = compile_for_cpu(onnx_path, precision, graph_precision, threads)
        self.request = self.compiled.create_infer_request()
        self.output_names = [output.get_any_name() for output in self.compiled.outputs]

    def __call__(self, image: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        self.request.infer([image], share_inputs=True)
        wanted = names or self.output_names
        return {name: np.array(self.request.get_tensor(name).data, dtype=np.float32, copy=True) for name in wanted}


def run_openvino(path: Path, feed: np.ndarray, names: list[str], precision: str = "exported",
                 graph_precision: str = "fp32") -> dict[str, np.ndarray]:
    """One batch through OpenVINO (export verification), as `run_onnxruntime` does for ONNX Runtime."""
    return CompiledGraph(path, precision, graph_precision)(feed, names)
