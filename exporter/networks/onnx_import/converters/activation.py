"""Activations. ReLU and ReLU6 (Clip 0..6, its bounds as attributes before opset 11, as inputs since)
back-propagate as masks; Clip 0..1 is HardSigmoid of slope 1 and offset 0; Sigmoid, SiLU (the op is not in
ONNX: Mul(x, Sigmoid(x))), HardSigmoid, HardSwish (the op, or Mul(x, HardSigmoid(x)) with 1/6 and 1/2), GELU
(the op, or its Erf and tanh forms: the last three as patterns.py fuses them), LeakyReLU, PReLU, ELU, SELU,
CELU, Tanh, Softplus, Softsign, Mish, ThresholdedReLU and Swish (ONNX's op of opset 24, as ONNX Runtime
expands it: patterns.py) with their exact derivatives (INTERACTIVE.md, "Any CNN, part 3"). An activation
merges into the conv, fully connected layer or add before it where that layer's pre-activation is read by
nothing else; anywhere else (and PReLU, whose slopes are parameters, always) it is an activation layer of
its own."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from interactive_trt.contracts.spec import INPUT
from interactive_trt.exporter.networks.onnx_import.builder import Dense, GateVector, Map, Pooled, describe
from interactive_trt.exporter.networks.onnx_import.converters.conv import per_channel
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter
from interactive_trt.exporter.networks.onnx_import.patterns import FUSED

FLOAT_MAX = 3.0e38


def activate(node, ctx, kind: str, alpha: float = 0.0, beta: float = 0.0) -> None:
    value = ctx.value(node, 0)
    if isinstance(value, Pooled) and not value.linear and value.rank in (2, 4) and \
            ctx.feeds_gates_only(node.output[0]):  # a gate of the pool alone, x * sigmoid(mean(x))
        gap = ctx.gap_of(node, value)
        value = Dense(gap.layer, gap.version) if value.rank == 2 else \
            replace(gap, layout=ctx.pooled_layout(node.input[0], value))
    if isinstance(value, Pooled) and value.linear:  # inside a head after the pool (MobileNetV3's)
        ctx.head_pooled = True
    elif not isinstance(value, (Map, Dense, GateVector)) or getattr(value, "layer", INPUT) == INPUT:
        where = "the input image" if isinstance(value, Map) else describe(value)
        raise ctx.refuse(node, f"{kind} of {where}; supported: an activation of a feature map, of a fully "
                               "connected layer, of a gate's vector or of a head layer after the global average "
                               "pool")
    draft = ctx.drafts[value.layer]
    if draft.activation == kind and kind in ("relu", "relu6"):
        ctx.set_value(node.output[0], value)  # idempotent: the layer is already activated
        return
    if draft.op in ("conv", "add") and not draft.activation and ctx.sole_reader(node, node.input[0]):
        draft.activation, draft.alpha, draft.beta = kind, float(alpha), float(beta)
        draft = ctx.modify(value.layer, node.output[0])
        ctx.set_value(node.output[0], replace(value, version=draft.version))
        return
    draft = ctx.follow(value.layer, node, "act", activation=kind, alpha=float(alpha), beta=float(beta))
    ctx.set_value(node.output[0], replace(value, layer=draft.id, version=draft.version))


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
    elif low == 0 and high == 1:  # GhostNet's gate as pytorchcv writes it, clamp(x, 0, 1)
        activate(node, ctx, "hardsigmoid", 1.0, 0.0)
    else:
        raise ctx.refuse(node, f"Clip({low:g}, {high:g}); supported: Clip(0, 6) (ReLU6), Clip(0, inf) (ReLU) and "
                               "Clip(0, 1) (HardSigmoid of slope 1 and offset 0)")


@converter("Sigmoid", 6, 13)
def sigmoid(node, ctx) -> None:
    activate(node, ctx, "sigmoid")


@converter("HardSigmoid", 6, 22)
def hard_sigmoid(node, ctx) -> None:
    attrs = attributes(node)
    activate(node, ctx, "hardsigmoid", float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5)))


@converter("HardSwish", 14, 22)
def hard_swish(node, ctx) -> None:
    activate(node, ctx, "hardswish")


@converter("LeakyRelu", 6, 16)
def leaky_relu(node, ctx) -> None:
    activate(node, ctx, "leakyrelu", float(attributes(node).get("alpha", 0.01)))


@converter("Elu", 6, 22)
def elu(node, ctx) -> None:
    activate(node, ctx, "elu", float(attributes(node).get("alpha", 1.0)))


@converter("Selu", 6, 22)
def selu(node, ctx) -> None:
    """gamma * ELU(z, alpha), ONNX's defaults being the constants of Klambauer et al. that torch fixes."""
    attrs = attributes(node)
    activate(node, ctx, "selu", float(attrs.get("alpha", 1.67326319217681884765625)),
             float(attrs.get("gamma", 1.05070102214813232421875)))


@converter("Mish", 18, 22)
def mish(node, ctx) -> None:
    activate(node, ctx, "mish")


@converter("PRelu", 6, 7, 9, 16)
def prelu(node, ctx) -> None:
    """LeakyReLU with a slope per channel (or one for all): a layer of its own, the slopes its weight."""
    value = ctx.value(node, 0)
    if not isinstance(value, Map) or value.layer == INPUT:
        raise ctx.refuse(node, f"a PReLU of {describe(value) if not isinstance(value, Map) else 'the input image'}; "
                               "supported: a PReLU of a feature map")
    slopes = per_channel(ctx, node, ctx.require_const(node, 1, "slope"), value, node.input[0])
    draft = ctx.follow(value.layer, node, "prelu", weight=slopes, bias=np.zeros_like(slopes))
    ctx.set_value(node.output[0], replace(value, layer=draft.id, version=draft.version))


@converter("Softsign", 1, 22)
def softsign(node, ctx) -> None:
    activate(node, ctx, "softsign")


@converter("Celu", 12)
def celu(node, ctx) -> None:
    activate(node, ctx, "celu", float(attributes(node).get("alpha", 1.0)))


@converter("ThresholdedRelu", 10, 22)
def thresholded_relu(node, ctx) -> None:
    """z above alpha, else 0: its derivative is the mask z > alpha, read off z (for alpha < 0 the output
    is 0 at z = 0 above alpha, so the mask cannot be read off the output)."""
    activate(node, ctx, "thresholdedrelu", float(attributes(node).get("alpha", 1.0)))


@converter("Tanh", 6, 13)
def tanh(node, ctx) -> None:
    activate(node, ctx, "tanh")


@converter("Softplus", 1, 22)
def softplus(node, ctx) -> None:
    activate(node, ctx, "softplus")


@converter("Gelu", 20)
def gelu(node, ctx) -> None:
    approximate = attributes(node).get("approximate", "none")
    activate(node, ctx, "gelu_tanh" if approximate == "tanh" else "gelu")


@converter(f"{FUSED}.Activation", 1)
def fused(node, ctx) -> None:
    """An activation that the file writes as several nodes (patterns.py)."""
    attrs = attributes(node)
    activate(node, ctx, attrs["kind"], float(attrs.get("alpha", 0.0)), float(attrs.get("beta", 0.0)))
