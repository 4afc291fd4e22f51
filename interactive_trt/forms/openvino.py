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
  equals (kernel transposed and flipped, in a constant of its own), or a matrix product plus Col2Im
  where that convolution would mostly multiply padding (fc6); strided ones keep their op and get a
  copy of a shared constant. The file stays as it is: ONNX Runtime and TensorRT pay nothing, and
  OpenVINO holds the second kernel whichever side makes it (docs/benchmarks.md has the figures).
* **An explicit precision.** On CPUs with bfloat16 units OpenVINO's default inference precision is
  bf16, not f32, so we always compile with f32. `bf16` computes in bfloat16 only the convolutions
  and products whose values no decision reads (`reduce_precision`): the backward pass. Rounding the
  forward pass moves ReLU masks and max-pool arg-maxes; OpenVINO's own bf16 hint does that and
  misses the reduced bounds (docs/precision.md).

One more change is for speed alone: GELU's derivative takes Phi(z) from the forward pass's output instead
of a second Erf (`gelu_slopes_from_outputs`).
"""

from __future__ import annotations

import math
import weakref
from contextlib import ExitStack, nullcontext
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import BackendUnavailable, InterActiveError
from interactive_trt.forms.cpu import cpu_model
from interactive_trt.forms.winograd import INPUT, OUTPUT
from interactive_trt.common.extras import install

INSTALL_HINT = install("openvino")
# the runtime's --precision: our name -> the type the backward convolutions compute in
INFERENCE_PRECISIONS = {"exported": "f32", "bf16": "bf16"}
BACKWARD_OPS = ("ConvolutionBackpropData", "GroupConvolutionBackpropData")
DECISIONS = ("Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual", "Maximum", "Minimum", "Relu",
             "MaxPool")


WINOGRAD_TRANSFORMS = (INPUT, OUTPUT)  # exact small-integer sums; rounding them costs accuracy, saves nothing


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


def stride_one_kernel(node):
    """The constant kernel of a stride-1, undilated, ungrouped transposed convolution; None otherwise."""
    attributes = node.get_attributes()
    weight = node.input_value(1).get_node()
    if (node.get_type_name() != "ConvolutionBackpropData" or node.get_input_size() != 2
            or weight.get_type_name() != "Constant" or any(s != 1 for s in attributes["strides"])
            or any(d != 1 for d in attributes["dilations"]) or any(attributes["output_padding"])
            or attributes["auto_pad"] != "explicit"):
        return None
    kernel = weight.get_data()
    return kernel if kernel.ndim == 4 else None


def as_convolution(ops, source, kernel: np.ndarray, begin: list[int], end: list[int]):
    """The convolution a stride-1 transposed convolution equals: the kernel with input and output
    channels swapped and flipped, padded by k - 1 - p."""
    flipped = np.ascontiguousarray(kernel.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    return ops.convolution(source, ops.constant(flipped), [1, 1], begin, end, [1, 1])


def as_matmul_and_col2im(source, kernel: np.ndarray, pads_begin: list[int], pads_end: list[int]):
    """The transposed convolution by its definition: one product with the kernel as a matrix, then
    Col2Im adds the k x k blocks into place. For kernels whose convolution form would mostly multiply
    padding (fc6's 7x7 on a 10x10 map: 2.6 times the work at 512x512, 49 times at 224x224). None
    where OpenVINO has no Col2Im (before opset 15)."""
    try:
        from openvino import opset15 as ops
    except ImportError:
        return None
    channels_in, channels_out, k_h, k_w = kernel.shape
    axes = ops.constant(np.array([0, 2, 1], dtype=np.int64))
    columns = ops.reshape(source, ops.constant(np.array([0, 0, -1], dtype=np.int64)), special_zero=True)
    rows = ops.transpose(columns, axes)  # N x HW x C_in
    matrix = ops.constant(np.ascontiguousarray(kernel.reshape(channels_in, channels_out * k_h * k_w).T))
    blocks = ops.transpose(ops.matmul(rows, matrix, False, True), axes)  # N x (C_out k k) x HW
    spatial = ops.gather(ops.shape_of(source, "i64"), ops.constant(np.array([2, 3], dtype=np.int64)),
                         ops.constant(np.int64(0)))
    grown = np.array([k_h - 1 - pads_begin[0] - pads_end[0], k_w - 1 - pads_begin[1] - pads_end[1]], dtype=np.int64)
    return ops.col2im(blocks, ops.add(spatial, ops.constant(grown)),
                      ops.constant(np.array([k_h, k_w], dtype=np.int64)), pads_begin=pads_begin, pads_end=pads_end)


def reexpressed(node):
    """A stride-1 transposed convolution as ops that read a kernel of their own: the convolution it
    equals, or a product and Col2Im where that convolution would mostly multiply padding. None when
    the node is not of that form."""
    kernel = stride_one_kernel(node)
    if kernel is None:
        return None
    attributes = node.get_attributes()
    pads_begin, pads_end = list(attributes["pads_begin"]), list(attributes["pads_end"])
    begin = [k - 1 - p for k, p in zip(kernel.shape[2:], pads_begin)]
    end = [k - 1 - p for k, p in zip(kernel.shape[2:], pads_end)]
    if min(begin + end) < 0:
        return None
    source = node.input_value(0)
    if sum(begin + end) > sum(pads_begin + pads_end):
        blocks = as_matmul_and_col2im(source, kernel, pads_begin, pads_end)
        if blocks is not None:
            return blocks
    return as_convolution(opset(), source, kernel, begin, end)


def replace_output(node, replacement) -> None:
    """Consumers of `node` read `replacement`, which takes over the output's tensor names."""
    replacement.set_friendly_name(node.get_friendly_name())
    names = node.output(0).get_names()
    node.output(0).get_tensor().set_names(set())
    replacement.output(0).get_tensor().set_names(names)
    for target in list(node.output(0).get_target_inputs()):
        target.replace_source_output(replacement.output(0))


def rewrite_backward_convolutions(model) -> dict[str, int]:
    """Every transposed convolution of the backward pass gets a kernel of its own.

    Stride-1 ones are re-expressed (`reexpressed`): the CPU plugin then runs them with its convolution
    and matrix kernels. The others (strided connection sums, pool scatter kernels) keep their op but
    get their own copy of a shared constant. Works on an `openvino.Model` before compilation; returns
    how many of each.
    """
    ops = opset()
    counts = {"reexpressed": 0, "copied": 0}
    for node in model.get_ordered_ops():
        if node.get_type_name() not in BACKWARD_OPS:
            continue
        replacement = reexpressed(node)
        if replacement is not None:
            replace_output(node, replacement)
            counts["reexpressed"] += 1
            continue
        weight = node.input_value(1)
        source = weight.get_node()
        if source.get_type_name() == "Constant" and len(weight.get_target_inputs()) > 1:
            node.input(1).replace_source_output(ops.constant(source.get_data().copy()).output(0))
            counts["copied"] += 1
        elif source.get_type_name() == "Reshape" and source.input_value(0).get_node().get_type_name() == "Constant" \
                and weight.get_partial_shape().is_static:
            # a grouped one reads its kernel through the Reshape to G x O x I x k x k that OpenVINO's reader
            # puts on the constant its forward convolution reads too: shared all the same (RegNetY, ResNeXt)
            data = source.input_value(0).get_node().get_data()
            node.input(1).replace_source_output(ops.constant(data.reshape(weight.get_shape()).copy()).output(0))
            counts["copied"] += 1
    model.validate_nodes_and_infer_types()
    return counts


GELU_TINY = 1e-12  # keeps Phi = (x z + t / 2) / (z^2 + t) finite at z = 0; off Phi by at most 0.2 sqrt(t)


def scalar(output, value: float) -> bool:
    """Whether `output` is a constant of one element, equal to `value`."""
    node = output.get_node()
    if node.get_type_name() != "Constant":
        return False
    data = node.get_data()
    return data.size == 1 and abs(float(data.reshape(-1)[0]) - value) <= 1e-6 * abs(value)


def other_input(node, output):
    """The input of a binary `node` that is not `output` (None where both or neither are)."""
    first, second = node.input_value(0), node.input_value(1)
    if first == output and second != output:
        return second
    if second == output and first != output:
        return first
    return None


def only_consumer(output, kind: str):
    targets = list(output.get_target_inputs())
    node = targets[0].get_node() if len(targets) == 1 else None
    return node if node is not None and node.get_type_name() == kind else None


def erf_argument(erf):
    """z where the Erf reads z / sqrt 2 (as Divide or Multiply by a constant); None otherwise."""
    scaled = erf.input_value(0).get_node()
    kind = scaled.get_type_name()
    for side in (1, 0) if kind == "Multiply" else (1,) if kind == "Divide" else ():
        if scalar(scaled.input_value(side), math.sqrt(0.5) if kind == "Multiply" else math.sqrt(2)):
            return scaled.input_value(1 - side)
    return None


def gelu_chains(model) -> tuple[dict, list]:
    """Each z's GELU output x = z (1 + erf(z / sqrt 2)) / 2, by z; and the other Phi(z) = (1 + erf(z / sqrt 2)) / 2
    the graph computes, as (z, Phi): the backward pass's, in the derivative Phi + z phi(z)."""
    outputs, slopes = {}, []
    for erf in model.get_ordered_ops():
        z = erf_argument(erf) if erf.get_type_name() == "Erf" else None
        plus_one = only_consumer(erf.output(0), "Add") if z is not None else None
        if plus_one is None or not scalar(other_input(plus_one, erf.output(0)), 1.0):
            continue
        after = only_consumer(plus_one.output(0), "Multiply")
        factor = other_input(after, plus_one.output(0)) if after is not None else None
        if factor is None:
            continue
        if factor == z:  # z (1 + erf), then halved: torch.onnx's F.gelu
            half = only_consumer(after.output(0), "Multiply")
            if half is not None and scalar(other_input(half, after.output(0)), 0.5):
                outputs[z] = half.output(0)
        elif scalar(factor, 0.5):  # Phi itself: x where it is multiplied by z, a slope elsewhere
            products = [t.get_node() for t in after.output(0).get_target_inputs()
                        if t.get_node().get_type_name() == "Multiply" and other_input(t.get_node(), after.output(0)) == z]
            if products:
                outputs[z] = products[0].output(0)
            else:
                slopes.append((z, after.output(0)))
    return outputs, slopes


def gelu_slopes_from_outputs(model) -> int:
    """The backward pass's GELU derivative Phi(z) + z phi(z) takes Phi from the forward pass's output x = z Phi(z),
    as (x z + t / 2) / (z^2 + t), instead of a second Erf.

    OpenVINO fuses the forward pass's z Phi(z) into one Gelu op, so the forward pass's Phi cannot be shared,
    and its generated kernels spend most of a derivative's time in the Erf. x is in memory anyway (the next
    layer reads it): ConvNeXt-T's InterActive pass at 512x512 349 -> 339 ms. ONNX Runtime keeps the file's
    form, which it runs faster (docs/cpu-backends.md). float32 only: in float16, z^2 overflows from |z| = 256.
    Works on an `openvino.Model` before compilation; returns how many derivatives were rewritten."""
    ops = opset()
    outputs, slopes = gelu_chains(model)
    rewritten = 0
    for z, phi in slopes:
        x = outputs.get(z)
        if x is None or z.get_element_type().get_type_name() != "f32":
            continue
        tiny = np.float32(GELU_TINY)
        numerator = ops.add(ops.multiply(x, z), ops.constant(np.float32(0.5) * tiny))
        from_output = ops.divide(numerator, ops.add(ops.multiply(z, z), ops.constant(tiny)))
        for target in list(phi.get_target_inputs()):
            target.replace_source_output(from_output.output(0))
        rewritten += 1
    if rewritten:
        model.validate_nodes_and_infer_types()
    return rewritten


def decision_inputs(model) -> set[str]:
    """Names of the nodes whose values some decision reads: a comparison (ReLU masks, max-pool
    first-arg-max routing), a ReLU or a max-pool. Rounding any of them can move a mask or an arg-max."""
    stack = [node for node in model.get_ordered_ops() if node.get_type_name() in DECISIONS]
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        for index in range(node.get_input_size()):
            source = node.input_value(index).get_node()
            if source.get_name() not in seen:
                seen.add(source.get_name())
                stack.append(source)
    return seen


def constant_weight(node) -> tuple[np.ndarray | None, int]:
    """The constant operand of a convolution (its kernel) or a matrix product (either side: Winograd's
    products take the kernels first), and which input it is."""
    sides = (1, 0) if node.get_type_name() == "MatMul" else (1,)
    for side in sides:
        source = node.input_value(side).get_node()
        if source.get_type_name() == "Constant":
            return source.get_data(), side
    return None, 1


def reduce_precision(model, compute_type: str = "bf16") -> int:
    """Convolutions and matrix products that no decision reads compute in `compute_type`, with
    float32 in and out: in an InterActive graph, the backward pass. The forward pass (every layer
    feeds a ReLU or a pool), all-ones connection sums, Winograd's transforms and everything else stay
    as they are.
    Returns how many."""
    ops = opset()
    decided = decision_inputs(model)
    reduced = 0
    for node in model.get_ordered_ops():
        kind = node.get_type_name()
        weight, side = constant_weight(node) if kind in ("Convolution", "MatMul") else (None, 1)
        if (weight is None or node.get_name() in decided or np.all(weight == 1) or weight.dtype != np.float32
                or node.get_friendly_name().endswith(WINOGRAD_TRANSFORMS)):
            continue
        source = ops.convert(node.input_value(1 - side), compute_type)
        kernel = ops.convert(ops.constant(weight), compute_type)  # folded at compile
        attributes = node.get_attributes()
        if kind == "Convolution":
            product = ops.convolution(source, kernel, attributes["strides"], attributes["pads_begin"],
                                      attributes["pads_end"], attributes["dilations"], attributes["auto_pad"])
        else:
            left, right = (source, kernel) if side == 1 else (kernel, source)
            product = ops.matmul(left, right, attributes["transpose_a"], attributes["transpose_b"])
        replace_output(node, ops.convert(product, node.get_output_element_type(0)))
        reduced += 1
    model.validate_nodes_and_infer_types()
    return reduced


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


STATIC_RECOMPILES = 2  # new input shapes a graph is compiled again for before one dynamic model serves all


class CompiledGraph:
    """The ONNX file as OpenVINO runs it on the CPU (with the paying 3x3 layers as Winograd F(4x4, 3x3)
    unless `convolutions` is "direct", and the backward convolutions given kernels of their own): named
    float32 arrays in, named float32 arrays out.

    Compiled for the shape of the input in hand. OpenVINO's CPU plugin fuses chains of elementwise ops
    into one generated kernel (its "snippets") only where every shape is static, and the backward pass
    of a depthwise network is mostly such chains: EfficientNet-B0's InterActive pass at 512x512 takes
    94 ms compiled for its shape, 157 ms compiled for any shape (docs/cpu-backends.md). One compiled model
    is held at a time. A new shape compiles the graph again for it, `STATIC_RECOMPILES` times at most;
    after that (an interleaving of resolutions: image buckets, scales) a model compiled for any shape
    serves every input, so compilation never repeats without bound. The load-time form's file stays on
    disk until `close()`, so that a recompilation reads it rather than rewriting the graph.
    """

    def __init__(self, onnx_path: Path, precision: str = "exported", graph_precision: str = "fp32",
                 threads: int = 0, properties: dict | None = None, convolutions: str = "auto"):
        ov = openvino()
        self.core = ov.Core()
        check_inference_precision(precision, graph_precision, cpu_capabilities(self.core))
        self.precision, self.onnx_path = precision, onnx_path
        self.config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", **(properties or {})}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self.held = ExitStack()
        self.closer = weakref.finalize(self, self.held.close)
        form = cpu_model(onnx_path, "openvino") if convolutions == "auto" else nullcontext((str(onnx_path), {}))
        try:
            self.source, counts = self.held.enter_context(form)
            self.fresh = self.read()  # kept for the first compilation; later ones read the form again
            self.output_names = [output.get_any_name() for output in self.fresh.outputs]
        except BaseException:
            self.close()
            raise
        self.winograd_layers = counts.get("winograd", 0)
        self.shape, self.compiled, self.request = None, None, None
        self.recompiles = 0

    def read(self):
        """The form as an OpenVINO model: backward kernels separated, GELU's derivative reading the forward
        pass's output, precision reduced as asked."""
        try:
            model = self.core.read_model(self.source)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses with long texts
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise BackendUnavailable(f"{self.onnx_path}: OpenVINO cannot read it ({first})") from None
        rewrite_backward_convolutions(model)
        gelu_slopes_from_outputs(model)
        if self.precision == "bf16":
            reduce_precision(model, "bf16")
        return model

    def request_for(self, shape: tuple[int, ...]):
        """The infer request that runs inputs of `shape`, compiling when the shape is new."""
        shape = tuple(int(d) for d in shape)
        if self.request is not None and self.shape in (shape, "any"):
            return self.request
        dynamic = self.shape is not None and self.recompiles >= STATIC_RECOMPILES
        self.recompiles += self.shape is not None
        self.compiled = self.request = None  # the old model's memory goes before the new one is compiled
        model, self.fresh = (self.fresh if self.fresh is not None else self.read()), None
        if not dynamic:
            model.reshape({model.inputs[0]: list(shape)})
        self.compiled = self.core.compile_model(model, "CPU", self.config)
        self.request = self.compiled.create_infer_request()
        self.shape = "any" if dynamic else shape
        return self.request

    def __call__(self, image: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        request = self.request_for(image.shape)
        request.infer([image], share_inputs=True)
        wanted = names or self.output_names
        return {name: np.array(request.get_tensor(name).data, dtype=np.float32, copy=True) for name in wanted}

    def close(self) -> None:
        """Releases the compiled model and removes the load-time form's temporary file."""
        self.compiled = self.request = self.fresh = None
        self.closer()


def run_openvino(path: Path, feed: np.ndarray, names: list[str], precision: str = "exported",
                 graph_precision: str = "fp32") -> dict[str, np.ndarray]:
    """One batch through OpenVINO (export verification), as `exporter.onnx.verification.run_onnxruntime` does for ONNX Runtime."""
    graph = CompiledGraph(path, precision, graph_precision)
    try:
        return graph(feed, names)
    finally:
        graph.close()
