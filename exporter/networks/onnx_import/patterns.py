"""Activations that ONNX files write as several nodes, made one node of our own before the converters run.

An activation is one layer of the vocabulary with one exact derivative (INTERACTIVE.md, "Any CNN, part 3"),
but exporters spell some of them out: SiLU as Mul(x, Sigmoid(x)) (ONNX has no SiLU op before opset 24),
HardSwish as Mul(x, HardSigmoid(x)) with slope 1/6 and offset 1/2 (torch.onnx before opset 14), and GELU
as 0.5 * x * (1 + Erf(x / sqrt 2)) or its tanh approximation (torch.onnx before opset 20, in either order
of the products). Read node
by node, the Div of GELU's form would fold into the conv before it as a constant scale, and the Sigmoid
would be a gate: the pattern has to be seen whole. A pattern is fused only where its inner tensors are
read by nothing else; the fused node, of domain FUSED with the activation's name as `kind`, takes the
place of the pattern's last node and keeps its output name (and a name of the pattern's nodes).
"""

from __future__ import annotations

import math

import numpy as np

FUSED = "interactive_trt.fused"
OP_TYPES = {"silu": "SiLU", "hardswish": "HardSwish", "gelu": "Gelu", "gelu_tanh": "Gelu"}  # in refusals


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
        self.constants = {tensor.name: tensor for tensor in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.constants[node.output[0]] = node

    def scalar(self, name: str) -> float | None:
        from onnx import helper, numpy_helper

        item = self.constants.get(name)
        if item is None:
            return None
        if hasattr(item, "op_type"):
            value = helper.get_attribute_value(item.attribute[0])
            array = numpy_helper.to_array(value) if hasattr(value, "dims") else np.asarray(value)
        else:
            array = numpy_helper.to_array(item)
        return float(array.reshape(-1)[0]) if array.size == 1 else None

    def only_reader(self, name: str, op_type: str):
        """The one node that reads `name`, when it is of `op_type` and `name` is no graph output."""
        readers = self.readers.get(name, [])
        if name in self.outputs or len(readers) != 1 or readers[0].op_type != op_type:
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
    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x * x * x)))."""
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
        square = g.producer.get(g.other_input(cube, x) or "") if cube is not None and cube.op_type == "Mul" else None
        if square is None or square.op_type != "Mul" or list(square.input) != [x, x] or \
                g.only_reader(square.output[0], "Mul") is not cube or g.only_reader(cube.output[0], "Mul") is not cubic:
            continue
        tail = gelu_tail(g, tanh, x)
        if tail is not None and g.only_reader(scaled.output[0], "Tanh") is tanh:
            return [square, cube, cubic, inner, scaled, tanh, *tail], "gelu_tanh"
    return None


def matches(g: Graph, node):
    if node.op_type == "Sigmoid":
        return product_with_input(g, node, "silu")
    if node.op_type == "HardSigmoid":
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if math.isclose(attrs.get("alpha", 0.2), 1 / 6, rel_tol=1e-6) and attrs.get("beta", 0.5) == 0.5:
            return product_with_input(g, node, "hardswish")
    if node.op_type == "Erf":
        return gelu_erf(g, node)
    if node.op_type == "Tanh":
        return gelu_tanh(g, node)
    return None


def fuse_activations(model) -> int:
    """Rewrites `model` in place; returns how many patterns became one node."""
    from onnx import helper

    g = Graph(model.graph)
    nodes = list(model.graph.node)
    position = {id(node): index for index, node in enumerate(nodes)}
    replaced: dict[int, object] = {}  # index -> the fused node (at the pattern's last node) or None
    for node in nodes:
        if node.domain not in ("", "ai.onnx") or position[id(node)] in replaced:
            continue
        found = matches(g, node)
        if found is None or any(position[id(member)] in replaced for member in found[0]):
            continue
        members, kind = found
        last = members[-1]
        named = [member.name for member in reversed(members) if member.name]
        one = helper.make_node(OP_TYPES[kind], [members[0].input[0]], [last.output[0]],
                               name=named[0] if named else last.output[0], domain=FUSED, kind=kind)
        for member in members:
            replaced[position[id(member)]] = one if member is last else None
    if not replaced:
        return 0
    kept = [replaced.get(index, node) for index, node in enumerate(nodes)
            if index not in replaced or replaced[index] is not None]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return sum(1 for node in replaced.values() if node is not None)
