"""LayerNormalization over the channels at each position (ConvNeXt's blocks, written channels-last by
torch.onnx: Transpose to NHWC, LayerNormalization over the last axis; or written out, patterns.py), kept as a layer with its per-channel
weight and bias and back-propagated by its exact vector-Jacobian product (INTERACTIVE.md, "Any CNN, part 3");
ConvNeXt V2's Global Response Normalization (response_norms.py), the same way; and local response
normalisation across the channels."""

from __future__ import annotations

import numpy as np

from interactive_trt.exporter.networks.onnx_import.builder import Map, Pooled, describe, on_channels
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter
from interactive_trt.exporter.networks.onnx_import.patterns import FUSED


@converter("LayerNormalization", 17)
def layer_normalization(node, ctx) -> None:
    value = ctx.value(node, 0)
    attrs = attributes(node)
    if isinstance(value, Pooled):
        pooled_norm(node, ctx, value, attrs)
        return
    if not isinstance(value, Map) or value.layer == "image":
        raise ctx.refuse(node, f"a LayerNormalization of {describe(value)}; supported: over the channels of a feature "
                               "map or of the globally pooled vector")
    channel_axis = 1 if value.layout == "NCHW" else 3
    if int(attrs.get("axis", -1)) % 4 != 3 or channel_axis != 3:
        raise ctx.refuse(node, f"a LayerNormalization from axis {attrs.get('axis', -1)} of an {value.layout} map: "
                               "over more than its channels; supported: over the channels of a channels-last map")
    if len(node.output) > 1 and any(name and (ctx.consumers.get(name) or name in ctx.outputs)
                                    for name in node.output[1:]):
        raise ctx.refuse(node, "its mean or inverse deviation outputs are used; supported: the normalised map alone")
    draft = norm_layer(node, ctx, value.layer, attrs)
    ctx.set_value(node.output[0], Map(draft.id, value.layout, draft.version))


@converter(f"{FUSED}.LayerNormalization", 1)
def written_out(node, ctx) -> None:
    """A LayerNorm the file writes as several nodes (patterns.py), over its one `axis`: the channels of a
    channels-last map (axis -1), of a channels-first one (axis -3, ConvNeXt's own), or of the pooled vector."""
    value = ctx.value(node, 0)
    attrs = attributes(node)
    axis = int(attrs["axis"])
    if isinstance(value, Pooled):
        shape = ctx.shapes.get(node.input[0])
        if not shape or None in shape or shape[axis] != ctx.channels_of(value.layer) or \
                int(np.prod(shape)) != ctx.batch * shape[axis]:
            raise ctx.refuse(node, f"a LayerNorm over axis {axis} of a pooled tensor of shape {shape}; supported: "
                                   "over its channels")
        ctx.after_pool(node, value)
        ctx.head_pooled = True
        draft = norm_layer(node, ctx, value.layer, attrs)
        ctx.set_value(node.output[0], Pooled(draft.id, draft.version, rank=value.rank, linear=True))
        return
    if not isinstance(value, Map) or value.layer == "image":
        raise ctx.refuse(node, f"a LayerNorm of {describe(value)}; supported: over the channels of a feature map or "
                               "of the globally pooled vector")
    if not on_channels(value.layout, axis):
        raise ctx.refuse(node, f"a LayerNorm over axis {axis} of an {value.layout} map; supported: over its channels")
    draft = norm_layer(node, ctx, value.layer, attrs)
    ctx.set_value(node.output[0], Map(draft.id, value.layout, draft.version))


@converter(f"{FUSED}.GlobalResponseNorm", 1)
def global_response_norm(node, ctx) -> None:
    """ConvNeXt V2's GRN (response_norms.py): a norm over the positions of each channel of a feature map,
    along its channel `axis`."""
    value = ctx.value(node, 0)
    axis = int(attributes(node)["axis"])
    if not isinstance(value, Map) or value.layer == "image":
        raise ctx.refuse(node, f"a global response norm of {describe(value)}; supported: of a feature map")
    if not on_channels(value.layout, axis):
        raise ctx.refuse(node, f"a global response norm with its channels on axis {axis} of an {value.layout} map; "
                               "supported: its norms over the map's positions, their mean over its channels")
    draft = norm_layer(node, ctx, value.layer, attributes(node), "grn")
    ctx.set_value(node.output[0], Map(draft.id, value.layout, draft.version))


@converter(f"{FUSED}.GroupNormalization", 1)
def group_normalization(node, ctx) -> None:
    """GroupNorm over the channels and positions of each group of an NCHW map, as torch.onnx writes it
    (patterns.py); ONNX's own GroupNormalization op is rewritten into that form first (canonical.py)."""
    value = ctx.value(node, 0)
    attrs = attributes(node)
    if not isinstance(value, Map) or value.layer == "image" or value.layout != "NCHW":
        where = f"an {value.layout} map" if isinstance(value, Map) and value.layer != "image" else describe(value)
        raise ctx.refuse(node, f"a GroupNorm of {where}; supported: of a channels-first feature map")
    channels, groups = ctx.channels_of(value.layer), int(attrs["num_groups"])
    if groups < 1 or channels % groups:
        raise ctx.refuse(node, f"{groups} groups of {channels} channels; supported: groups that divide the channels")
    draft = norm_layer(node, ctx, value.layer, attrs, "groupnorm", groups=groups)
    ctx.set_value(node.output[0], Map(draft.id, value.layout, draft.version))


@converter("LRN", 1, 13)
def local_response_normalization(node, ctx) -> None:
    """Local response normalisation across the channels (AlexNet, GoogLeNet and CaffeNet of the ONNX model
    zoo; torch's LocalResponseNorm, which torch.onnx writes out and patterns.py makes this op again): a layer
    of its own, weight-free on the way to the successors, with its exact vector-Jacobian product."""
    value = ctx.value(node, 0)
    attrs = attributes(node)
    if not isinstance(value, Map) or value.layer == "image" or value.layout != "NCHW":
        where = f"an {value.layout} map" if isinstance(value, Map) and value.layer != "image" else describe(value)
        raise ctx.refuse(node, f"a local response normalisation of {where}; supported: across the channels of a "
                               "channels-first feature map")
    size, alpha = int(attrs["size"]), float(attrs.get("alpha", 1e-4))
    beta, bias = float(attrs.get("beta", 0.75)), float(attrs.get("bias", 1.0))
    if size < 1 or size % 2 == 0 or alpha < 0 or bias <= 0:
        raise ctx.refuse(node, f"size {size}, alpha {alpha}, bias {bias}; supported: an odd size (a window centred on "
                               "each channel), alpha >= 0 and bias > 0")
    draft = ctx.follow(value.layer, node, "lrn", channel_window=size, alpha=alpha, beta=beta, eps=bias)
    ctx.set_value(node.output[0], Map(draft.id, value.layout, draft.version))


def pooled_norm(node, ctx, value: Pooled, attrs: dict) -> None:
    """A LayerNorm of the pooled vector (ConvNeXt's head): a head layer, applied per position of T."""
    shape = ctx.shapes.get(node.input[0])
    axis = int(attrs.get("axis", -1))
    channels = ctx.channels_of(value.layer)
    if not shape or None in shape or int(np.prod(shape[axis:])) != channels or int(np.prod(shape[:axis])) != ctx.batch:
        raise ctx.refuse(node, f"a LayerNormalization from axis {axis} of a pooled tensor of shape {shape}; "
                               "supported: over its channels")
    ctx.after_pool(node, value)
    ctx.head_pooled = True
    draft = norm_layer(node, ctx, value.layer, attrs)
    ctx.set_value(node.output[0], Pooled(draft.id, draft.version, rank=value.rank, linear=True))


def norm_layer(node, ctx, source: str, attrs: dict, op: str = "layernorm", **fields):
    """A norm layer of `op` with the node's per-channel scale and bias (ones and zeros where a written-out
    form has none) and its epsilon."""
    channels = ctx.channels_of(source)
    scale = ctx.optional_const(node, 1, "scale") if node.domain == FUSED else ctx.require_const(node, 1, "scale")
    scale = np.ones(channels) if scale is None else np.asarray(scale, np.float64).reshape(-1)
    bias = ctx.optional_const(node, 2, "bias")
    bias = np.zeros(channels) if bias is None else np.asarray(bias, np.float64).reshape(-1)
    if scale.size != channels or bias.size != channels:
        raise ctx.refuse(node, f"scale and bias of {scale.size} and {bias.size} values for {channels} channels")
    return ctx.follow(source, node, op, weight=scale, bias=bias, eps=float(attrs.get("epsilon", 1e-5)), **fields)
