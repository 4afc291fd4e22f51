"""Activations: ReLU and ReLU6 (Clip 0..6, its bounds as attributes before opset 11, as inputs since), which
back-propagate as masks (z > 0; 0 < z < 6). They merge into the conv, fully connected layer or add before
them; anything else is refused (INTERACTIVE.md, "Any CNN")."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from interactive_trt.contracts.spec import INPUT
from interactive_trt.exporter.networks.onnx_import.builder import Dense, Map, describe
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter

FLOAT_MAX = 3.0e38


def activate(node, ctx, kind: str) -> None:
    value = ctx.value(node, 0)
    if not isinstance(value, (Map, Dense)) or getattr(value, "layer", INPUT) == INPUT:
        where = "the input image" if isinstance(value, Map) else describe(value)
        raise ctx.refuse(node, f"{kind} of {where}; supported: an activation right after a Conv, a fully connected "
                               "layer or an Add (it cannot move before a global average pool)")
    draft = ctx.drafts[value.layer]
    if draft.op not in ("conv", "add"):
        raise ctx.refuse(node, f"{kind} after a {draft.op} layer ({draft.source!r}); supported: an activation right "
                               "after a Conv, a fully connected layer or an Add")
    if draft.activation == kind:
        ctx.set_value(node.output[0], value)  # idempotent: the layer is already activated
        return
    if draft.activation:
        raise ctx.refuse(node, f"{kind} after {draft.activation} of {draft.source!r}; supported: one activation")
    if not ctx.sole_reader(node, node.input[0]):
        raise ctx.refuse(node, f"other nodes also read its pre-activation {node.input[0]!r}; supported: a layer "
                               "whose activated output alone is used")
    draft.activation = kind
    draft = ctx.modify(value.layer, node.output[0])
    ctx.set_value(node.output[0], replace(value, version=draft.version))


@converter("Relu", 6, 13, 14)
def relu(node, ctx) -> None:
    activate(node, ctx, "relu")


def bound(value, default: float) -> float:
    if value is None:
        return default
    return float(np.asarray(value).reshape(-1)[0])


@converter("Clip", 6, 11, 12, 13)
def clip(node, ctx) -> None:
    if ctx.opset < 11:
        attrs = attributes(node)
        low, high = float(attrs.get("min", -FLOAT_MAX)), float(attrs.get("max", FLOAT_MAX))
    else:
        low = bound(ctx.optional_const(node, 1, "minimum"), -np.inf)
        high = bound(ctx.optional_const(node, 2, "maximum"), np.inf)
    if low == 0 and high == 6:
        activate(node, ctx, "relu6")
    elif low == 0 and high >= FLOAT_MAX:
        activate(node, ctx, "relu")
    else:
        raise ctx.refuse(node, f"Clip({low:g}, {high:g}); supported: Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU)")
