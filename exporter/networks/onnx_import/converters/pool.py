"""Pools: max and average pools as layers (pads, ceil or floor mode, count_include_pad as stored; a max
pool's ceil mode becomes the -inf padding at the end that it amounts to, at every size of the rule; ONNX's
default for AveragePool is count_include_pad = 0), the global average pool (GlobalAveragePool, a
ReduceMean over the spatial axes, or an AveragePool whose window is the whole map at the native size), the
global max pool of CBAM's channel gate (GlobalMaxPool, ReduceMax over the spatial axes, or a MaxPool whose
window is the whole map: torch.onnx's adaptive_max_pool2d(x, 1)), CBAM's spatial gate's mean and maximum
over the channels (ReduceMean, ReduceMax over the channel axis, keeping it, or dropping it where an
Unsqueeze puts it back), and a mean over a map's positions flattened into one axis (x.flatten(2).mean(-1))."""

from __future__ import annotations

from interactive_trt.contracts.spec import INPUT, MASK_ACTIVATIONS
from interactive_trt.exporter.networks.onnx_import.builder import Draft, Map, Padded, Pooled, Positions, Unchanneled
from interactive_trt.exporter.networks.onnx_import.converters.conv import window
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter
from interactive_trt.exporter.networks.onnx_import.converters.shape import axes_of


def non_negative(ctx, layer: str) -> bool:
    """Whether a layer's output is never negative: a ReLU or ReLU6 after it, or pools and concatenations of
    such outputs."""
    if layer == INPUT:
        return False
    draft = ctx.drafts[layer]
    if draft.activation in MASK_ACTIVATIONS:
        return True
    return draft.op in ("maxpool", "avgpool", "concat") and all(non_negative(ctx, name) for name in draft.inputs)


@converter("MaxPool", 1, 8, 10, 11, 12, 22)
def max_pool(node, ctx) -> None:
    value = ctx.map_of(node, padded=True)
    extra = (0, 0, 0, 0)
    if isinstance(value, Padded) and non_negative(ctx, value.layer):
        # Keras' ZeroPadding2D before a MaxPooling2D (ResNet50, DenseNet121): on a map that is never
        # negative a window's maximum is the same with the zeros or with -inf in their place; where that
        # maximum is 0 the routed gradient reaches a ReLU output of 0, whose mask stops it either way
        extra, value = value.pads, Map(value.layer, value.layout, value.version)
    elif isinstance(value, Padded):  # (ResNetV2's, before any activation) the zeros can be a maximum: a layer
        value = ctx.padded(value, value.pads, node.input[0])
    if len(node.output) > 1 and node.output[1] and (ctx.consumers.get(node.output[1]) or node.output[1] in ctx.outputs):
        raise ctx.refuse(node, "its Indices output is used; supported: max pooling alone")
    attrs = attributes(node)
    kernel, strides, pads, _ = window(ctx, node, attrs)
    pads = tuple(a + b for a, b in zip(pads, extra))
    if not any(pads) and ctx.size_of(value.layer) == kernel and ctx.feeds_gates_only(node.output[0]):
        # a gate's global max pool at every size, not a window fixed at this one
        reduction(node, ctx, value, "gmp", ctx.channels_of(value.layer), (1, 1))
        return
    top, left, bottom, right = pads
    if (top, left) == (bottom, right) and (top > kernel[0] // 2 or left > kernel[1] // 2):
        raise ctx.refuse(node, f"pads {list(pads)} wider than half its {kernel[0]}x{kernel[1]} window")
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    if ceil_mode:  # a last window past the end (GoogLeNet's pools): the same as that much more -inf padding
        height, width = ctx.size_of(value.layer)
        extra = []
        for side, before, after, extent, step in zip((height, width), (top, left), (bottom, right), kernel, strides):
            windows = -(-(side + before + after - extent) // step) + 1
            if (windows - 1) * step >= side + before:  # a window may not start in the padding at the end
                windows -= 1
            extra.append(max(0, (windows - 1) * step + extent - (side + before + after)))
        if any(extra):  # (one that tiles the map stays as it is)
            pads, ceil_mode = (top, left, bottom + extra[0], right + extra[1]), False
    draft = ctx.windowed(node, "maxpool", value.layer, ctx.channels_of(value.layer), kernel, strides, pads,
                         ceil_mode=ceil_mode)
    ctx.set_value(node.output[0], Map(draft.id, "NCHW", draft.version))


@converter("AveragePool", 7, 10, 11, 19, 22)
def average_pool(node, ctx) -> None:
    value = ctx.map_of(node)
    attrs = attributes(node)
    kernel, strides, pads, _ = window(ctx, node, attrs)
    if not any(pads) and ctx.size_of(value.layer) == kernel:
        ctx.set_value(node.output[0], Pooled(value.layer, value.version, rank=4, linear=False))
        return
    top, left, bottom, right = pads
    if (top, left) != (bottom, right):
        raise ctx.refuse(node, f"asymmetric pads {list(pads)} on an average pool; supported: symmetric pads")
    if top > kernel[0] // 2 or left > kernel[1] // 2:
        raise ctx.refuse(node, f"pads {list(pads)} wider than half its {kernel[0]}x{kernel[1]} window")
    size = ctx.size_of(value.layer)
    if attrs.get("ceil_mode", 0) and any((side + 2 * pad - extent) % step
                                         for side, pad, extent, step in zip(size, (top, left), kernel, strides)):
        raise ctx.refuse(node, f"a ceil-mode average pool whose last window runs past its {size[0]}x{size[1]} map at "
                               f"the native size {ctx.native_size[0]}x{ctx.native_size[1]}; supported: ceil-mode "
                               "average pools whose windows tile the map (export the file at a size where they do, "
                               "as a multiple of 32)")
    draft = ctx.windowed(node, "avgpool", value.layer, ctx.channels_of(value.layer), kernel, strides, pads,
                         ceil_mode=bool(attrs.get("ceil_mode", 0)),
                         count_include_pad=bool(attrs.get("count_include_pad", 0)))
    ctx.set_value(node.output[0], Map(draft.id, "NCHW", draft.version))


@converter("GlobalAveragePool", 1, 22)
def global_average_pool(node, ctx) -> None:
    value = ctx.map_of(node)
    ctx.set_value(node.output[0], Pooled(value.layer, value.version, rank=4, linear=False))


@converter("GlobalMaxPool", 1, 22)
def global_max_pool(node, ctx) -> None:
    """A global max pool as a layer of its own (N x C x 1 x 1 at every size): unlike the average pool, no
    linear layer commutes with it, so it serves gates' branches only (CBAM's channel gate)."""
    value = ctx.map_of(node, layouts=("NCHW", "NHWC"))
    if not ctx.feeds_gates_only(node.output[0]):
        raise ctx.refuse(node, "a global max pool does not commute with the classifier (use a global average "
                               "pool); supported: a global max pool in a gate's branch (CBAM's channel gate)")
    reduction(node, ctx, value, "gmp", ctx.channels_of(value.layer), (1, 1))


def reduction(node, ctx, value, op: str, channels: int, size: tuple[int, int], keep: bool = True) -> None:
    if value.layer == "image":
        raise ctx.refuse(node, "it reduces the input image; supported: a reduction of a feature map")
    draft = ctx.add(Draft(id=ctx.new_id(), op=op, inputs=(value.layer,), channels=channels, size=size,
                          total_stride=ctx.total_stride_of(value.layer), source=node.output[0]))
    ctx.set_value(node.output[0], Map(draft.id, value.layout, draft.version) if keep
                  else Unchanneled(draft.id, draft.version, value.layout))


def reduced(node, ctx, what: str):
    """The map a ReduceMean or ReduceMax reads, which of its axes it reduces (spatial or channels), and
    whether it keeps them."""
    value = ctx.map_of(node, layouts=("NCHW", "NHWC"))
    attrs = attributes(node)
    axes = axes_of(node, ctx)
    found = None if axes is None else {axis % 4 for axis in axes}
    spatial, channel = ({2, 3}, {1}) if value.layout == "NCHW" else ({1, 2}, {3})
    keep = bool(int(attrs.get("keepdims", 1)))
    if found == channel:
        return value, "channels", keep
    if found == spatial:
        return value, "spatial", keep
    raise ctx.refuse(node, f"a {what} over axes {None if axes is None else sorted(found)} of an {value.layout} map"
                           f"{'' if keep else ', dropping them'}; supported: over its two spatial axes, or over its "
                           "channels")


@converter("ReduceMean", 1, 11, 13, 18)
def reduce_mean(node, ctx) -> None:
    positions = ctx.value(node, 0)
    if isinstance(positions, Positions):  # x.flatten(2).mean(-1): a global average pool
        axes = axes_of(node, ctx)
        if axes is None or [axis % 3 for axis in axes] != [2]:
            raise ctx.refuse(node, f"a mean over axes {axes} of a map with its positions in one axis; supported: "
                                   "over the positions (the last axis)")
        keep = bool(int(attributes(node).get("keepdims", 1)))
        ctx.set_value(node.output[0], Pooled(positions.layer, positions.version, rank=3 if keep else 2, linear=False))
        return
    value, axes, keep = reduced(node, ctx, "mean")
    if axes == "channels":
        reduction(node, ctx, value, "channel_mean", 1, ctx.size_of(value.layer), keep)
        return
    ctx.set_value(node.output[0], Pooled(value.layer, value.version, rank=4 if keep else 2, linear=False))


@converter("ReduceMax", 1, 11, 12, 13, 18, 20)
def reduce_max(node, ctx) -> None:
    value, axes, keep = reduced(node, ctx, "maximum")
    if axes == "channels":
        reduction(node, ctx, value, "channel_max", 1, ctx.size_of(value.layer), keep)
    elif not keep:
        raise ctx.refuse(node, "a global max pool dropping its spatial axes; supported: keeping them (a gate's branch)")
    else:
        global_max_pool(node, ctx)
