"""LayerNormalization over the channels at each position (ConvNeXt's blocks, written channels-last by
torch.onnx: Transpose to NHWC, LayerNormalization over the last axis), kept as a layer with its per-channel
weight and bias and back-propagated by its exact vector-Jacobian product (INTERACTIVE.md, "Any CNN, part 3")."""

from __future__ import annotations

import numpy as np

from interactive_trt.exporter.networks.onnx_import.builder import Map, describe
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter


@converter("LayerNormalization", 17)
def layer_normalization(node, ctx) -> None:
    value = ctx.value(node, 0)
    attrs = attributes(node)
    if not isinstance(value, Map) or value.layer == "image":
        raise ctx.refuse(node, f"a LayerNormalization of {describe(value)}; supported: over the channels of a feature "
                               "map (a norm after the global average pool belongs to a head: not yet supported)")
    channel_axis = 1 if value.layout == "NCHW" else 3
    if int(attrs.get("axis", -1)) % 4 != 3 or channel_axis != 3:
        raise ctx.refuse(node, f"a LayerNormalization from axis {attrs.get('axis', -1)} of an {value.layout} map: "
                               "over more than its channels; supported: over the channels of a channels-last map")
    if len(node.output) > 1 and any(name and (ctx.consumers.get(name) or name in ctx.outputs)
                                    for name in node.output[1:]):
        raise ctx.refuse(node, "its mean or inverse deviation outputs are used; supported: the normalised map alone")
    channels = ctx.channels_of(value.layer)
    scale = np.asarray(ctx.require_const(node, 1, "scale"), np.float64).reshape(-1)
    bias = ctx.optional_const(node, 2, "bias")
    bias = np.zeros(channels) if bias is None else np.asarray(bias, np.float64).reshape(-1)
    if scale.size != channels or bias.size != channels:
        raise ctx.refuse(node, f"scale and bias of {scale.size} and {bias.size} values for {channels} channels")
    draft = ctx.follow(value.layer, node, "layernorm", weight=scale, bias=bias,
                       eps=float(attrs.get("epsilon", 1e-5)))
    ctx.set_value(node.output[0], Map(draft.id, value.layout, draft.version))
