"""Activations and LayerNorms that ONNX files write as several nodes, made one node of our own before the
converters run.

An activation is one layer of the vocabulary with one exact derivative (INTERACTIVE.md, "Any CNN, part 3"),
but exporters spell some of them out: SiLU as Mul(x, Sigmoid(x)) (ONNX has no SiLU op before opset 24),
HardSwish as Mul(x, HardSigmoid(x)) with slope 1/6 and offset 1/2 (torch.onnx before opset 14), and GELU
as 0.5 * x * (1 + Erf(x / sqrt 2)) or its tanh approximation (torch.onnx before opset 20, in either order
of the products), Mish as Mul(x, Tanh(Softplus(x))) (before opset 18), and LayerNorm in its many
written-out forms (written_norms.py: torch.onnx before opset 17, ConvNeXt's channels-first one, TensorFlow's
moments). Read node by node, the Div of GELU's form would fold into the conv before it as a constant
scale, the Sigmoid would be a gate, and LayerNorm's Sub and Div of computed tensors would be refused: the
pattern has to be seen whole. A pattern is fused only where its inner tensors are
read by nothing else; the fused node, of domain FUSED with the activation's name as `kind`, takes the
place of the pattern's last node and keeps its output name (and a name of the pattern's nodes).
"""

from __future__ import annotations

import math
import os

import numpy as np

FUSED = "interactive_trt.fused"
OP_TYPES = {"silu": "SiLU", "swish": "Swish", "hardswish": "HardSwish", "hardsigmoid": "HardSigmoid", "gelu": "Gelu",
            "gelu_tanh": "Gelu", "mish": "Mish", "layernorm": "LayerNormalization", "squaredrelu": "Relu",
            "groupnorm": "GroupNormalization",
            "grn": "GlobalResponseNorm"}  # in refusals


class Graph:
    """Who makes and who reads each tensor of a graph, and its scalar constants."""

    def __init__(self, graph):
        self.graph = graph
        self.producer = {output: node for node in graph.node for output in node.output}
        self.readers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.outputs = {output.name for output in graph.output}
        self.shapes = {info.name: [dim.dim_value if dim.HasField("dim_value") else None
                                   for dim in info.type.tensor_type.shape.dim]
                       for info in (*graph.input, *graph.value_info, *graph.output)
                       if info.type.tensor_type.HasField("shape")}
        self.ranks = {name: len(shape) for name, shape in self.shapes.items()}
        self.constants = {tensor.name: tensor for tensor in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.constants[node.output[0]] = node

    def scalar(self, name: str) -> float | None:
        array = self.array(name)
        if array is None and self.cast_constant(name) is not None:  # a constant cast to float (Swish's alpha)
            array = self.array(self.cast_constant(name).input[0])
        return float(array.reshape(-1)[0]) if array is not None and array.size == 1 else None

    def cast_constant(self, name: str):
        """The Cast node that makes `name` from a constant, if that is how `name` is made."""
        node = self.producer.get(name)
        return node if node is not None and node.op_type == "Cast" and node.input[0] in self.constants else None

    def array(self, name: str) -> np.ndarray | None:
        from onnx import helper, numpy_helper

        item = self.constants.get(name)
        if item is None:
            return None
        if hasattr(item, "op_type"):
            value = helper.get_attribute_value(item.attribute[0])
            return numpy_helper.to_array(value) if hasattr(value, "dims") else np.asarray(value)
        return numpy_helper.to_array(item)

    def only_reader(self, name: str, op_type: str | tuple[str, ...] | None = None):
        """The one node that reads `name`, when it is of `op_type` (or one of them; any, where None) and
        `name` is no graph output."""
        readers = self.readers.get(name, [])
        kinds = (op_type,) if isinstance(op_type, str) else op_type
        if name in self.outputs or len(readers) != 1 or kinds is not None and readers[0].op_type not in kinds:
            return None
        return readers[0]

    def other_input(self, node, name: str) -> str | None:
        others = [other for other in node.input if other != name]
        return others[0] if len(node.input) == 2 and len(others) == 1 else None


def product_with_input(g: Graph, node, kind: str):
    """x * f(x): the Mul that reads f's output and f's own input."""
    mul = g.only_reader(node.output[0], "Mul")
    if mul is None or g.other_input(mul, node.output[0]) != node.input[0]:
        return None
    return [node, mul], kind


def gelu_tail(g: Graph, inner, x: str):
    """0.5 * x * (1 + inner), the products in any order: the nodes after `inner` (Erf or Tanh), the last
    one making GELU's output, or None."""
    plus = g.only_reader(inner.output[0], "Add")
    if plus is None or g.scalar(g.other_input(plus, inner.output[0]) or "") != 1.0:
        return None
    outer = g.only_reader(plus.output[0], "Mul")
    if outer is None:
        return None
    other = g.other_input(outer, plus.output[0])
    if g.scalar(other or "") == 0.5:  # x * ((1 + inner) * 0.5), as torch.onnx's dynamo exporter writes it
        last = g.only_reader(outer.output[0], "Mul")
        return [plus, outer, last] if last is not None and g.other_input(last, outer.output[0]) == x else None
    if other == x:  # (x * (1 + inner)) * 0.5
        half = g.only_reader(outer.output[0], "Mul")
        if half is None or g.scalar(g.other_input(half, outer.output[0]) or "") != 0.5:
            return None
        return [plus, outer, half]
    halved = g.producer.get(other or "")  # (x * 0.5) * (1 + inner)
    if halved is None or halved.op_type != "Mul" or x not in halved.input or \
            g.scalar(g.other_input(halved, x) or "") != 0.5 or g.only_reader(halved.output[0], "Mul") is not outer:
        return None
    return [halved, plus, outer]


def gelu_erf(g: Graph, erf):
    """0.5 * x * (1 + erf(x / sqrt 2)): the Div or Mul before the Erf, then the Add of 1 and the products."""
    scaled = g.producer.get(erf.input[0])
    if scaled is None or scaled.op_type not in ("Div", "Mul") or g.only_reader(scaled.output[0], "Erf") is None:
        return None
    x = scaled.input[0]
    factor = g.scalar(scaled.input[1])
    if factor is None or not math.isclose(factor if scaled.op_type == "Mul" else 1 / factor, math.sqrt(0.5),
                                          rel_tol=1e-6):
        return None
    tail = gelu_tail(g, erf, x)
    return None if tail is None else ([scaled, erf, *tail], "gelu")


def scaled_operand(g: Graph, node, factor: float) -> str | None:
    """The computed input of a Mul of it by the scalar `factor`."""
    if node is None or node.op_type != "Mul" or len(node.input) != 2:
        return None
    scalars = [g.scalar(name) for name in node.input]
    matching = [index for index, value in enumerate(scalars)
                if value is not None and math.isclose(value, factor, rel_tol=1e-5)]
    return node.input[1 - matching[0]] if len(matching) == 1 and scalars[1 - matching[0]] is None else None


def gelu_tanh(g: Graph, tanh):
    """GELU's tanh approximation as torch.onnx writes it before opset 20:
    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x * x * x))), or with the cube as Pow(x, 3), as
    Keras' gelu(approximate=True) comes out of tf2onnx."""
    scaled = g.producer.get(tanh.input[0])
    operand = scaled_operand(g, scaled, math.sqrt(2 / math.pi))
    inner = g.producer.get(operand or "")
    if inner is None or inner.op_type != "Add" or g.only_reader(inner.output[0], "Mul") is not scaled:
        return None
    for x in inner.input:  # x + 0.044715 * x^3, the cube as x * (x * x)
        cubic = g.producer.get(g.other_input(inner, x) or "")
        if cubic is None or g.only_reader(cubic.output[0], "Add") is not inner:
            continue
        cube = g.producer.get(scaled_operand(g, cubic, 0.044715) or "")
        if cube is not None and cube.op_type == "Pow" and cube.input[0] == x and g.scalar(cube.input[1]) == 3.0 \
                and g.only_reader(cube.output[0], "Mul") is cubic:
            tail = gelu_tail(g, tanh, x)
            if tail is not None and g.only_reader(scaled.output[0], "Tanh") is tanh:
                return [cube, cubic, inner, scaled, tanh, *tail], "gelu_tanh"
            continue
        square = g.producer.get(g.other_input(cube, x) or "") if cube is not None and cube.op_type == "Mul" else None
        if square is None or square.op_type != "Mul" or list(square.input) != [x, x] or \
                g.only_reader(square.output[0], "Mul") is not cube or g.only_reader(cube.output[0], "Mul") is not cubic:
            continue
        tail = gelu_tail(g, tanh, x)
        if tail is not None and g.only_reader(scaled.output[0], "Tanh") is tanh:
            return [square, cube, cubic, inner, scaled, tanh, *tail], "gelu_tanh"
    return None


def mish(g: Graph, softplus):
    """x * tanh(softplus(x)), as torch.onnx writes Mish before opset 18."""
    tanh = g.only_reader(softplus.output[0], "Tanh")
    mul = g.only_reader(tanh.output[0], "Mul") if tanh is not None else None
    if mul is None or g.other_input(mul, tanh.output[0]) != softplus.input[0]:
        return None
    return [softplus, tanh, mul], "mish"


def reduced_axes(g: Graph, node) -> tuple[int, ...] | None:
    """A keepdims ReduceMean's axes, counted from the last (-1), from its attribute (before opset 18) or
    its constant second input; None where they or the input's rank are unknown."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1:
        found = g.array(node.input[1])
        axes = None if found is None else found.reshape(-1).tolist()
    rank = g.ranks.get(node.input[0])
    if not attrs.get("keepdims", 1) or not axes or rank is None and min(axes) >= 0:
        return None
    return tuple(int(axis) - rank if axis >= 0 else int(axis) for axis in axes)


def scaled_swish(g: Graph, sigmoid):
    """x * sigmoid(alpha * x), as ONNX Runtime's optimiser expands ONNX's Swish op (opset 24): alpha a scalar
    constant, cast to float in the expansion; alpha 1 is SiLU."""
    scaled = g.producer.get(sigmoid.input[0])
    product = g.only_reader(sigmoid.output[0], "Mul")
    if scaled is None or scaled.op_type != "Mul" or len(scaled.input) != 2 or product is None or \
            g.only_reader(scaled.output[0], "Sigmoid") is not sigmoid:
        return None
    for x, factor in (tuple(scaled.input), tuple(reversed(scaled.input))):
        alpha = g.scalar(factor)
        if alpha is None or g.scalar(x) is not None or g.other_input(product, sigmoid.output[0]) != x:
            continue
        cast = g.cast_constant(factor)
        members = ([cast] if cast is not None and len(g.readers.get(factor, [])) == 1 else []) + [scaled, sigmoid, product]
        return members, "silu" if alpha == 1.0 else "swish", {"x": x, "alpha": alpha}
    return None


def sixth_of(g: Graph, node, operand: str) -> bool:
    """Whether `node` divides `operand` by 6 (or multiplies it by 1/6)."""
    if node is None or node.op_type not in ("Div", "Mul") or len(node.input) != 2:
        return False
    if node.op_type == "Div":
        return node.input[0] == operand and g.scalar(node.input[1]) == 6.0
    other = g.other_input(node, operand)
    factor = g.scalar(other) if other is not None else None
    return factor is not None and math.isclose(factor, 1 / 6, rel_tol=1e-6)


def clip_bounds(g: Graph, clip) -> tuple[float | None, float | None]:
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in clip.attribute}
    if "min" in attrs or "max" in attrs:  # before opset 11
        return attrs.get("min"), attrs.get("max")
    return tuple(g.scalar(clip.input[index]) if len(clip.input) > index and clip.input[index] else None
                 for index in (1, 2))


def hard_sigmoid_written(g: Graph, clip):
    """relu6(x + 3) / 6, as hand-written MobileNetV3 code spells HardSigmoid, and x times it, HardSwish, the
    division before or after the product. Read node by node, the head's x * relu6(x + 3) / 6 would be a
    product of two fully connected layers' outputs, which no gate is."""
    add = g.producer.get(clip.input[0])
    if clip_bounds(g, clip) != (0.0, 6.0) or add is None or add.op_type != "Add" or \
            g.only_reader(add.output[0], "Clip") is not clip:
        return None
    x = next((name for name in add.input if g.scalar(g.other_input(add, name) or "") == 3.0), None)
    after = g.only_reader(clip.output[0])
    if x is None or g.scalar(x) is not None or after is None:
        return None
    if sixth_of(g, after, clip.output[0]):
        product = g.only_reader(after.output[0], "Mul")
        if product is not None and g.other_input(product, after.output[0]) == x:
            return [add, clip, after, product], "hardswish", {"x": x}
        return [add, clip, after], "hardsigmoid", {"x": x, "alpha": 1 / 6, "beta": 0.5}
    if after.op_type == "Mul" and g.other_input(after, clip.output[0]) == x:
        divided = g.only_reader(after.output[0])
        if sixth_of(g, divided, after.output[0]):
            return [add, clip, after, divided], "hardswish", {"x": x}
    return None


def squared_relu(g: Graph, relu):
    """relu(x) ** 2, or relu(x) * relu(x): Squared ReLU, as MetaFormer's StarReLU (s * relu(x) ** 2 + b, its
    scalars then a constant Mul and Add) and Primer's MLP write it."""
    after = g.only_reader(relu.output[0], "Pow")
    if after is not None and g.scalar(after.input[1]) == 2.0:
        return [relu, after], "squaredrelu"
    readers = g.readers.get(relu.output[0], [])  # a Mul of relu(x) by itself reads it twice
    if relu.output[0] not in g.outputs and len(readers) == 2 and readers[0] is readers[1] and \
            readers[0].op_type == "Mul":
        return [relu, readers[0]], "squaredrelu"
    return None


def per_channel_constant(g: Graph, node, name: str, channels: int) -> np.ndarray | None:
    """The other input of `node` as `channels` values, where it is a constant that broadcasts along the
    channels of an NCHW map (one value, or C x 1 x 1 / 1 x C x 1 x 1); else None."""
    other = g.other_input(node, name)
    array = g.array(other or "")
    if array is None or array.size not in (1, channels) or array.ndim > 4:
        return None
    shape = [1] * (4 - array.ndim) + list(array.shape)
    if array.size == channels > 1 and shape[1] != channels:
        return None
    return np.broadcast_to(np.asarray(array, np.float64).reshape(-1), (channels,)).copy()


def group_norm_written(g: Graph, norm):
    """GroupNorm as torch.onnx writes it before opset 21: x viewed as N x G x (rest), InstanceNormalization
    of that (one scale and bias per group), viewed back, then the per-channel weight (Mul) and bias (Add)."""
    from onnx import helper

    before = g.producer.get(norm.input[0])
    if before is None or before.op_type != "Reshape" or g.only_reader(before.output[0]) is not norm:
        return None
    x, target = before.input[0], g.array(before.input[1])
    shape = g.shapes.get(x)
    if not shape or len(shape) != 4 or None in shape[1:] or target is None or target.size != 3:
        return None
    groups, channels = int(target.reshape(-1)[1]), shape[1]
    after = g.only_reader(norm.output[0], "Reshape")
    scale, shift = g.array(norm.input[1]), g.array(norm.input[2])
    if groups < 1 or channels % groups or after is None or g.shapes.get(after.output[0]) != shape or \
            scale is None or shift is None or scale.size != groups or shift.size != groups:
        return None
    epsilon = float(helper.get_attribute_value(norm.attribute[0])) if norm.attribute else 1e-5
    weight = np.repeat(np.asarray(scale, np.float64).reshape(-1), channels // groups)
    bias = np.repeat(np.asarray(shift, np.float64).reshape(-1), channels // groups)
    members, last = [before, norm, after], after
    for op_type in ("Mul", "Add"):
        reader = g.only_reader(last.output[0], op_type)
        constant = per_channel_constant(g, reader, last.output[0], channels) if reader is not None else None
        if constant is None:
            continue
        if op_type == "Mul":
            weight, bias = weight * constant, bias * constant
        else:
            bias = bias + constant
        members.append(reader)
        last = reader
    return members, "groupnorm", {"x": x, "groups": groups, "epsilon": epsilon,
                                  "scale": weight.astype(np.float32), "bias": bias.astype(np.float32)}


def instance_norm(g: Graph, norm):
    """InstanceNorm of a map (IBN-Net's, style networks'): GroupNorm of one group per channel, whose scale
    and bias are per channel already."""
    from onnx import helper

    shape, scale, shift = g.shapes.get(norm.input[0]), g.array(norm.input[1]), g.array(norm.input[2])
    if not shape or len(shape) != 4 or not shape[1] or scale is None or shift is None or \
            scale.size != shape[1] or shift.size != shape[1]:
        return None
    epsilon = float(helper.get_attribute_value(norm.attribute[0])) if norm.attribute else 1e-5
    return [norm], "groupnorm", {"x": norm.input[0], "groups": shape[1], "epsilon": epsilon,
                                 "scale": np.asarray(scale, np.float32).reshape(-1),
                                 "bias": np.asarray(shift, np.float32).reshape(-1)}


def lrn_written(g: Graph, pool):
    """Local response normalisation as torch.onnx writes torch's LocalResponseNorm (and pytorchcv its own):
    x * x viewed as N x 1 x C x H x W, padded along C (a Pad, or the pool's own pads), a `size` x 1 x 1
    average pool counting the padding, viewed back (Squeeze, maybe a Reshape), times alpha, plus k, to the
    power beta, and x divided by that: ONNX's LRN at odd sizes."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
    kernel = list(attrs.get("kernel_shape", []))
    if len(kernel) != 3 or kernel[1:] != [1, 1] or kernel[0] % 2 == 0 or not attrs.get("count_include_pad", 0) or \
            any(stride != 1 for stride in attrs.get("strides", [1, 1, 1])):
        return None
    size, reach = int(kernel[0]), int(kernel[0]) // 2
    pads = list(attrs.get("pads", [0] * 6))
    members, start = [pool], g.producer.get(pool.input[0])
    if start is not None and start.op_type == "Pad" and not any(pads):
        constant = g.array(start.input[1]) if len(start.input) > 1 else None
        mode = {a.name: helper.get_attribute_value(a) for a in start.attribute}.get("mode", b"constant")
        fill = g.scalar(start.input[2]) if len(start.input) > 2 and start.input[2] else 0.0
        if constant is None or mode not in (b"constant", "constant") or fill != 0.0 or \
                g.only_reader(start.output[0]) is not pool:
            return None
        pads = [int(v) for v in constant.reshape(-1)]
        pads = pads[2:5] + pads[7:10]  # the 5-D Pad's begins and ends, past N and the new axis
        members.insert(0, start)
        start = g.producer.get(start.input[0])
    if pads != [reach, 0, 0, reach, 0, 0] or start is None or start.op_type not in ("Reshape", "Unsqueeze") or \
            g.only_reader(start.output[0]) is not members[0]:
        return None
    square = g.producer.get(start.input[0])
    if square is None or g.only_reader(square.output[0]) is not start or not (
            square.op_type == "Mul" and square.input[0] == square.input[1]
            or square.op_type == "Pow" and g.scalar(square.input[1]) == 2.0):
        return None
    x = square.input[0]
    members = [square, start, *members]
    last = g.only_reader(pool.output[0], ("Squeeze", "Reshape"))
    if last is None:
        return None
    members.append(last)
    view = g.only_reader(last.output[0], "Reshape")
    if view is not None:
        members.append(view)
        last = view
    shape = g.shapes.get(x)
    if shape is None or g.shapes.get(last.output[0]) not in (shape, None):
        return None
    values = {}
    for op_type in ("Mul", "Add", "Pow"):
        step = g.only_reader(last.output[0], op_type)
        value = g.scalar(g.other_input(step, last.output[0]) or "") if step is not None else None
        if value is None or op_type == "Pow" and step.input[0] != last.output[0]:
            return None
        values[op_type] = value
        members.append(step)
        last = step
    divide = g.only_reader(last.output[0], "Div")
    if divide is None or divide.input[0] != x or divide.input[1] != last.output[0]:
        return None
    members.append(divide)
    return members, "lrn", {"x": x, "size": size, "alpha": values["Mul"], "bias": values["Add"],
                            "beta": values["Pow"]}


def matches(g: Graph, node):
    if node.op_type == "Sigmoid":
        return product_with_input(g, node, "silu") or scaled_swish(g, node)
    if node.op_type == "HardSigmoid":
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if math.isclose(attrs.get("alpha", 0.2), 1 / 6, rel_tol=1e-6) and attrs.get("beta", 0.5) == 0.5:
            return product_with_input(g, node, "hardswish")
    if node.op_type == "Clip":
        return hard_sigmoid_written(g, node)
    if node.op_type == "Erf":
        return gelu_erf(g, node)
    if node.op_type == "Tanh":
        return gelu_tanh(g, node)
    if node.op_type == "Softplus":
        return mish(g, node)
    if node.op_type == "Relu":
        return squared_relu(g, node)
    if node.op_type == "InstanceNormalization":
        return group_norm_written(g, node) or instance_norm(g, node)
    if node.op_type == "AveragePool":
        return lrn_written(g, node)
    if node.op_type == "ReduceMean":
        from interactive_trt.exporter.networks.onnx_import.written_norms import layer_norm_by_value

        return layer_norm_by_value(g, node)
    if node.op_type in ("ReduceL2", "ReduceSumSquare", "Pow", "Mul"):
        from interactive_trt.exporter.networks.onnx_import.response_norms import response_norm_by_value

        return response_norm_by_value(g, node)
    return None


def fuse_activations(model) -> int:
    """Rewrites `model` in place; returns how many patterns became one node."""
    from onnx import helper

    g = Graph(model.graph)
    nodes = list(model.graph.node)
    position = {id(node): index for index, node in enumerate(nodes)}
    replaced: dict[int, list] = {}  # index -> the nodes made (at the pattern's last node), or [] (the others)
    for node in nodes:
        if node.domain not in ("", "ai.onnx") or position[id(node)] in replaced:
            continue
        found = matches(g, node)
        if found is None or any(position[id(member)] in replaced for member in found[0]):
            continue
        members, kind, *extra = found
        last = members[-1]
        named = [member.name for member in reversed(members) if member.name]
        name = named[0] if named else last.output[0]
        if kind in ("layernorm", "grn", "groupnorm", "lrn") and len(members) > 1:  # a norm written out
            scope = os.path.commonprefix([member.name for member in members])
            label = {"layernorm": "LayerNorm", "grn": "GlobalResponseNorm", "groupnorm": "GroupNorm",
                     "lrn": "LocalResponseNorm"}[kind]
            name = f"{scope[:scope.rfind('/') + 1]}{label}" if "/" in scope else name
        if kind == "layernorm":
            made = fused_layer_norm(model, members[0].input[0], last.output[0], name, **extra[0])
        elif kind == "groupnorm":
            options = extra[0]
            made = [helper.make_node("GroupNormalization", [options["x"], *parameters(model, name, options)],
                                     [last.output[0]], name=name, domain=FUSED, kind="groupnorm",
                                     num_groups=int(options["groups"]), epsilon=float(options["epsilon"]))]
        elif kind == "grn":
            options = extra[0]
            made = fused_response_norm(model, last.output[0], name, options)
        elif kind == "lrn":  # ONNX's own op, read by its converter
            options = extra[0]
            made = [helper.make_node("LRN", [options["x"]], [last.output[0]], name=name, size=int(options["size"]),
                                     **{key: float(options[key]) for key in ("alpha", "beta", "bias")})]
        else:
            options = extra[0] if extra else {}
            made = [helper.make_node(OP_TYPES[kind], [options.get("x", members[0].input[0])], [last.output[0]],
                                     name=name, domain=FUSED, kind=kind,
                                     **{key: float(options[key]) for key in ("alpha", "beta") if key in options})]
        for member in members:
            replaced[position[id(member)]] = made if member is last else []
    if not replaced:
        return 0
    kept = [made for index, node in enumerate(nodes) for made in replaced.get(index, [node])]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return sum(1 for made in replaced.values() if made)


def parameters(model, name: str, options: dict) -> list[str]:
    """A fused norm's fitted scale and bias as initializers of their own ('' for one the file has none of:
    ones and zeros, sized by the converter, which knows the channels)."""
    from onnx import numpy_helper

    inputs = []
    for role in ("scale", "bias"):
        if options.get(role) is None:
            inputs.append("")
            continue
        tensor = numpy_helper.from_array(options[role], f"{name}::{role}")
        model.graph.initializer.append(tensor)
        inputs.append(tensor.name)
    return inputs


def fused_response_norm(model, output: str, name: str, options: dict) -> list:
    """The GlobalResponseNorm a written-out one becomes, then the Transpose of the map it adds back (its
    output's layout, where the optimiser moved the model's permute into it)."""
    from onnx import helper

    perm = options.get("perm")
    inputs = [options["x"], *parameters(model, name, options)]
    normalised = output if perm is None else f"{name}::normalised"
    made = [helper.make_node("GlobalResponseNorm", inputs, [normalised], name=name, domain=FUSED, kind="grn",
                             axis=options["axis"], epsilon=float(options["epsilon"]))]
    if perm is not None:
        made.append(helper.make_node("Transpose", [normalised], [output], name=f"{name}::transpose", perm=perm))
    return made


def fused_layer_norm(model, x: str, output: str, name: str, axis: int, epsilon: float, scale, bias, perm) -> list:
    """The LayerNormalization a written-out one becomes, then the Transpose found inside it (a norm over
    one axis commutes with moving that axis)."""
    from onnx import helper

    inputs = [x, *parameters(model, name, {"scale": scale, "bias": bias})]
    if perm is None:
        return [helper.make_node("LayerNormalization", inputs, [output], name=name, domain=FUSED, kind="layernorm",
                                 axis=axis, epsilon=float(epsilon))]
    normalised = f"{name}::normalised"
    return [helper.make_node("LayerNormalization", inputs, [normalised], name=name, domain=FUSED, kind="layernorm",
                             axis=axis, epsilon=float(epsilon)),
            helper.make_node("Transpose", [normalised], [output], name=f"{name}::transpose", perm=perm)]
