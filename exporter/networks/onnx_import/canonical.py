"""Canonicalise an ONNX file before it is mapped: one image input at a fixed size, shapes inferred,
shape subgraphs and BatchNorms folded by ONNX Runtime's own offline optimiser.

Why ONNX Runtime (ORT_ENABLE_BASIC, saved to a temporary file) rather than onnx-simplifier or hand-written
patterns: it is the runtime this project already depends on and verifies against, so it reads every
opset and producer quirk the verification itself must read; its basic level emits only standard ONNX ops
(constant folding, including Shape of a now-static tensor, so tf2onnx's and torch's Shape/Gather/Concat
subgraphs before a Reshape or Pad become constants; Identity and Dropout removal; Conv+BatchNormalization,
Conv+Add, Conv+Mul and Pad+Conv fusion); and it installs as a wheel for every Python we support, which
onnx-simplifier (a C++ build) does not. The extended and later levels are not used: they emit
com.microsoft fused ops that are no part of the vocabulary.

The input is fixed to the native size and the original batch (1 when dynamic) first: the folding needs
static shapes, and the map sizes at the native size decide what a Flatten + Gemm becomes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import OnnxImportError
from interactive_trt.contracts.manifest import sha256_file

LEVEL = "ORT_ENABLE_BASIC"
PASSES = 3  # a pass folds what the one before it inlined (torch.onnx's unoptimised dynamo files need two)
# ReshapeFusion also merges contiguous Reshapes once their shapes are constant: a channel shuffle's last view
# and the N x groups x rest view of a GroupNorm written out after it became one Reshape, which neither
# pattern reads (found by a fuzzer of random networks, 2026-12-07). Constant folding does the rest of its work.
DISABLED = ("ReshapeFusion",)


@dataclass
class Canonical:
    """The canonical graph and what was learnt about the original file on the way."""

    model: object  # onnx.ModelProto after shape inference and ONNX Runtime's basic optimisation
    path: Path
    sha256: str
    input_name: str
    layout: str  # "NCHW" or "NHWC": how the original file takes its image
    native_size: tuple[int, int]
    batch: int | None  # the original input's fixed batch, None when dynamic
    output_name: str
    opset: int
    producer: str
    canonicaliser: str


def _dims(value_info) -> list:
    """The sizes of a graph input, None where dynamic: a dim_param, no value, or a value under 1 (paddle2onnx
    writes a dynamic batch as -1)."""
    shape = value_info.type.tensor_type.shape
    return [dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None for dim in shape.dim]


def default_opset(model) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise OnnxImportError("the model imports no version of the standard ONNX operator set")


def load(path: Path):
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxImportError(f"{path}: no such file")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a damaged file
        raise OnnxImportError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def unconverted(model, path: Path) -> None:
    """A TensorFlow function call that tf2onnx wrote as a node of its own (it warns, then writes the file):
    no runtime has the op. Keras runs every Conv2D with groups > 1 so (ConvNeXt's depthwise convs, RegNet's
    grouped ones: tensorflow-onnx#2099), and the fix is in the conversion."""
    for node in model.graph.node:
        if node.op_type in ("PartitionedCall", "StatefulPartitionedCall"):
            raise OnnxImportError(
                f"{path}: node {node.name!r} ({node.op_type}) is a TensorFlow function call tf2onnx did not "
                "convert; Keras runs a Conv2D with groups > 1 so: with Keras 2, convert again after setting each "
                "such layer's _jit_compiled_convolution_op = layer.convolution_op (docs/onnx-import.md)")


def drop_unread_inputs(model) -> int:
    """Removes graph inputs no node reads (Keras 3's export leaves its Normalization's mean and variance so,
    beside their folded values): ONNX Runtime would ask for them in every feed. Returns how many."""
    read = {name for node in model.graph.node for name in node.input}
    read |= {output.name for output in model.graph.output}
    unread = [item for item in model.graph.input if item.name not in read]
    if len(unread) == len(model.graph.input):
        return 0
    for item in unread:
        model.graph.input.remove(item)
    return len(unread)


def image_input(model, path: Path):
    """The one graph input that is not an initializer, checked to be a float 3-channel image."""
    from onnx import TensorProto

    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [item for item in model.graph.input if item.name not in initializers]
    if not inputs:
        raise OnnxImportError(f"{path}: the graph has no input")
    if len(inputs) > 1:
        extra = inputs[1]
        raise OnnxImportError(
            f"{path}: graph input {extra.name!r} {_dims(extra)} is a second input; supported: one input, the "
            f"image ({inputs[0].name!r}), with every weight stored as an initializer")
    image = inputs[0]
    tensor_type = image.type.tensor_type
    if tensor_type.elem_type != TensorProto.FLOAT:
        raise OnnxImportError(f"{path}: input {image.name!r} has element type "
                              f"{TensorProto.DataType.Name(tensor_type.elem_type)}; supported: FLOAT images")
    dims = _dims(image)
    if len(dims) != 4:
        raise OnnxImportError(f"{path}: input {image.name!r} has shape {dims}; supported: a batch of images, "
                              "N x 3 x H x W or N x H x W x 3")
    return image, dims


def optimise(ort, model, path: Path):
    """One pass of ONNX Runtime's basic level, read back from the file it saves."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="interactive-import-") as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVEL)
        options.optimized_model_filepath = str(Path(folder) / "canonical.onnx")
        options.log_severity_level = 3
        try:
            ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                 disabled_optimizers=list(DISABLED))
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's own message says why
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxImportError(f"{path}: ONNX Runtime cannot load the model: {first}") from None
        return onnx.load(str(Path(folder) / "canonical.onnx"))


def folds_left(model) -> int:
    """How many nodes still read only constants. ONNX Runtime inlines function ops (CastLike, as torch.onnx's
    dynamo exporter writes them unoptimised) after its folding pass, so the Cast -> Expand that gives a conv
    its zero bias survives one pass and folds in the next; what a pass leaves as it was (a DequantizeLinear),
    the next would too."""
    constants = {tensor.name for tensor in model.graph.initializer}
    return sum(1 for node in model.graph.node if node.input and all(name in constants for name in node.input if name))


# from this threshold on, softplus(x) = x + log1p(exp(-x)) rounds to x in float32 (exp(-15) = 3.1e-7 is under
# half of x's last place), and its slope, the sigmoid, to within 3.1e-7 of 1: the thresholded form is Softplus
SOFTPLUS_EXACT = 15.0


def softplus_thresholds(model) -> int:
    """torch's Softplus as the dynamo exporter writes it, Where(Greater(x, threshold), x, Softplus(x)) (torch
    returns x above its threshold, 20 by default), as the plain Softplus it equals in float32 from
    SOFTPLUS_EXACT on; Mish's softplus is written so too. Returns how many were rewritten."""
    from onnx import numpy_helper

    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    producer = {output: node for node in model.graph.node for output in node.output}
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    dropped = set()
    for node in model.graph.node:
        if node.op_type != "Where" or len(node.input) != 3:
            continue
        greater, softplus = producer.get(node.input[0]), producer.get(node.input[2])
        if greater is None or softplus is None or greater.op_type != "Greater" or softplus.op_type != "Softplus":
            continue
        x, threshold = greater.input[0], constants.get(greater.input[1])
        if node.input[1] != x or softplus.input[0] != x or threshold is None or threshold.size != 1 or \
                float(threshold.reshape(-1)[0]) < SOFTPLUS_EXACT or readers.get(node.input[0]) != 1 or \
                readers.get(node.input[2]) != 1:
            continue
        softplus.output[0] = node.output[0]
        dropped |= {id(node), id(greater)}
    if dropped:
        kept = [node for node in model.graph.node if id(node) not in dropped]
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return len(dropped) // 2


def group_norms_as_torch_writes_them(model) -> int:
    """ONNX's GroupNormalization (opset 18: a scale and bias per group; 21: per channel) rewritten as
    torch.onnx writes GroupNorm before it: x viewed as N x groups x rest, InstanceNormalization, viewed back,
    the per-channel scale and bias. The same function, in the form patterns.py reads; ONNX Runtime would
    otherwise inline the op's function body (two means, a variance, three Reshapes) before we see it. Only
    where x's shape and the scale and bias are known; returns how many were rewritten."""
    from onnx import helper, numpy_helper

    shapes = {info.name: [dim.dim_value for dim in info.type.tensor_type.shape.dim]
              for info in (*model.graph.input, *model.graph.value_info)}
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    opset = default_opset(model)
    nodes, count = [], 0
    for node in model.graph.node:
        shape = shapes.get(node.input[0]) if node.op_type == "GroupNormalization" and node.domain in ("", "ai.onnx") \
            else None
        arrays = [constants.get(name) for name in node.input[1:3]] if shape else []
        if not shape or len(shape) != 4 or 0 in shape or any(array is None for array in arrays):
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        groups, channels, name = int(attrs["num_groups"]), shape[1], node.name or node.output[0]
        scale, bias = (np.asarray(array, np.float32).reshape(-1) for array in arrays)
        if opset < 21:
            scale, bias = np.repeat(scale, channels // groups), np.repeat(bias, channels // groups)
        made = {f"{name}::{role}": value for role, value in (
            ("grouped_shape", np.array([shape[0], groups, -1], np.int64)), ("shape", np.array(shape, np.int64)),
            ("ones", np.ones(groups, np.float32)), ("zeros", np.zeros(groups, np.float32)),
            ("scale", scale.reshape(channels, 1, 1)), ("bias", bias.reshape(channels, 1, 1)))}
        model.graph.initializer.extend(numpy_helper.from_array(value, key) for key, value in made.items())
        grouped, normed, back, scaled = (f"{name}::{step}" for step in ("grouped", "normed", "back", "scaled"))
        nodes += [helper.make_node("Reshape", [node.input[0], f"{name}::grouped_shape"], [grouped]),
                  helper.make_node("InstanceNormalization", [grouped, f"{name}::ones", f"{name}::zeros"], [normed],
                                   name=name, epsilon=float(attrs.get("epsilon", 1e-5))),
                  helper.make_node("Reshape", [normed, f"{name}::shape"], [back]),
                  helper.make_node("Mul", [back, f"{name}::scale"], [scaled]),
                  helper.make_node("Add", [scaled, f"{name}::bias"], [node.output[0]])]
        count += 1
    if count:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return count


def canonicalise(path: Path, input_size: tuple[int, int] | None = None) -> Canonical:
    """Fix the input, infer shapes, fold constants with ONNX Runtime; refuse what cannot be an image CNN."""
    import onnx
    from onnx import shape_inference

    from interactive_trt.common.ort import import_onnxruntime
    from interactive_trt.exporter.networks.onnx_import.patterns import Graph
    from interactive_trt.exporter.networks.onnx_import.space_to_depth import space_to_depth_into_convs

    path = Path(path)
    model = load(path)
    unconverted(model, path)
    drop_unread_inputs(model)
    image, dims = image_input(model, path)
    if dims[1] == 3:
        layout, (height, width) = "NCHW", dims[2:4]
    elif dims[3] == 3:
        layout, (height, width) = "NHWC", dims[1:3]
    else:
        raise OnnxImportError(f"{path}: input {image.name!r} has shape {dims}: no axis of 3 colour channels at "
                              "position 1 (NCHW) or 3 (NHWC)")
    if input_size is not None:
        if (height, width) != (None, None) and (height, width) != tuple(input_size):
            raise OnnxImportError(f"{path}: --input-size {input_size[0]}x{input_size[1]} differs from the size "
                                  f"{height}x{width} fixed in the file")
        height, width = input_size
    if height is None or width is None:
        raise OnnxImportError(f"{path}: input {image.name!r} has a dynamic size {dims}: give the size the "
                              "network was trained at with --input-size HxW")
    if len(model.graph.output) != 1:
        names = ", ".join(repr(output.name) for output in model.graph.output)
        raise OnnxImportError(f"{path}: the graph has {len(model.graph.output)} outputs ({names}); supported: "
                              "one output, the class scores (or their softmax)")
    batch = dims[0]
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    shape = fixed.graph.input[[item.name for item in fixed.graph.input].index(image.name)].type.tensor_type.shape
    sizes = (batch or 1, 3, height, width) if layout == "NCHW" else (batch or 1, height, width, 3)
    for dim, size in zip(shape.dim, sizes):
        dim.Clear()
        dim.dim_value = int(size)
    del fixed.graph.value_info[:]
    for output in fixed.graph.output:
        output.type.tensor_type.ClearField("shape")
    try:
        fixed = shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception:  # noqa: BLE001 - ONNX Runtime below says what is wrong, if anything is
        pass
    while group_norms_as_torch_writes_them(fixed):  # ONNX infers no shape past a GroupNormalization: again
        try:
            fixed = shape_inference.infer_shapes(fixed, data_prop=True)
        except Exception:  # noqa: BLE001 - as above
            break
    ort = import_onnxruntime()
    canonical, left = fixed, None
    for _ in range(PASSES):
        canonical = optimise(ort, canonical, path)
        count = folds_left(canonical)
        if not count or count == left:
            break
        left = count
    softplus_thresholds(canonical)
    try:
        canonical = shape_inference.infer_shapes(canonical)
    except Exception:  # noqa: BLE001 - shapes are a help for messages, not a requirement
        pass
    if space_to_depth_into_convs(canonical, Graph(canonical.graph)):
        del canonical.graph.value_info[:]
        try:
            canonical = shape_inference.infer_shapes(canonical)
        except Exception:  # noqa: BLE001 - as above
            pass
    producer = " ".join(part for part in (model.producer_name, model.producer_version) if part) or "unknown"
    return Canonical(model=canonical, path=path, sha256=sha256_file(path), input_name=image.name, layout=layout,
                     native_size=(int(height), int(width)), batch=batch, output_name=model.graph.output[0].name,
                     opset=default_opset(model), producer=producer,
                     canonicaliser=f"onnxruntime {ort.__version__} {LEVEL} without {', '.join(DISABLED)}, "
                                   f"onnx {onnx.__version__} shape inference")
