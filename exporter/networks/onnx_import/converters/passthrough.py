"""Ops that vanish at inference: Identity, Dropout (its mask unused, not in training mode) and a Cast to
float32 of a float32 tensor."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter


@converter("Identity", 1, 13, 14, 16, 19, 21, 23, 24)
def identity(node, ctx) -> None:
    ctx.set_value(node.output[0], ctx.value(node, 0, softmax=True))


@converter("Dropout", 7, 10, 12, 13, 22)
def dropout(node, ctx) -> None:
    if len(node.output) > 1 and node.output[1] and (ctx.consumers.get(node.output[1]) or node.output[1] in ctx.outputs):
        raise ctx.refuse(node, "its mask output is used; supported: Dropout at inference (removed)")
    training = ctx.optional_const(node, 2, "training_mode") if len(node.input) > 2 else None
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        raise ctx.refuse(node, "Dropout in training mode; supported: Dropout at inference (removed)")
    ctx.set_value(node.output[0], ctx.value(node, 0, softmax=True))


@converter("Cast", 6, 9, 13, 19, 21, 23, 24)
def cast(node, ctx) -> None:
    target = int(attributes(node).get("to", 0))
    if target != TensorProto.FLOAT:
        raise ctx.refuse(node, f"a cast to {TensorProto.DataType.Name(target)}; supported: float32 throughout")
    ctx.set_value(node.output[0], ctx.value(node, 0, softmax=True))
