"""Conv, and what folds into a conv or fully connected layer: BatchNormalization and per-channel
constant Add, Sub, Mul, Div (INTERACTIVE.md: w' = w g / sqrt(v + eps), b' = (b - m) g / sqrt(v + eps) + beta,
computed in float64)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from interactive_trt.contracts.spec import INPUT, dilated_extent
from interactive_trt.exporter.networks.onnx_import.builder import (
    Dense, GateVector, ImageChannels, Map, Padded, Pooled, auto_pads, describe,
)
from interactive_trt.exporter.networks.onnx_import.converters.dense import fully_connected
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter


def square(ctx, node, values, what: str) -> int:
    values = tuple(int(v) for v in values)
    if len(values) != 2:
        raise ctx.refuse(node, f"{what} {list(values)}: supported: 2-D windows")
    if values[0] != values[1]:
        raise ctx.refuse(node, f"{what} {values[0]}x{values[1]} is not square; supported: square {what}s")
    return values[0]


def window(ctx, node, attrs: dict, kernel_default=None, dilated: bool = False):
    """Kernel and strides (height, width: Inception's 1x7 and 7x1 kernels, a text recogniser's 2x1 strides
    are not square), (top, left, bottom, right) pads and dilation (square; more than 1 only where `dilated`,
    a Conv's), ONNX defaults spelled out (strides 1, pads 0, dilations 1, auto_pad NOTSET)."""
    kernel = tuple(int(v) for v in attrs.get("kernel_shape", kernel_default))
    if len(kernel) != 2:
        raise ctx.refuse(node, f"kernel {list(kernel)}: supported: 2-D windows")
    strides = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    if len(strides) != 2 or min(strides) < 1:
        raise ctx.refuse(node, f"strides {list(strides)}; supported: two strides of 1 or more")
    dilations = tuple(int(d) for d in attrs.get("dilations", (1, 1)))
    if not dilated and any(d != 1 for d in dilations):
        raise ctx.refuse(node, f"dilation {'x'.join(map(str, dilations))}; supported: dilation 1 (a dilated "
                               "convolution is read, a dilated pool is not)")
    dilation = square(ctx, node, dilations, "dilation")
    if dilation < 1:
        raise ctx.refuse(node, f"dilation {dilation}; supported: 1 or more")
    extent = tuple(dilated_extent(side, dilation) for side in kernel)
    mode = attrs.get("auto_pad", "NOTSET")
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        source = ctx.value(node).layer
        pads = auto_pads(mode, ctx.size_of(source), extent, strides)
    else:
        pads = tuple(int(p) for p in attrs.get("pads", (0, 0, 0, 0))) if mode == "NOTSET" else (0, 0, 0, 0)
    if len(pads) != 4 or min(pads) < 0:
        raise ctx.refuse(node, f"pads {list(pads)}; supported: four non-negative pads (top, left, bottom, right)")
    return kernel, strides, pads, dilation


@converter("Conv", 1, 11, 22)
def convolution(node, ctx) -> None:
    pooled = ctx.value(node, 0)
    if isinstance(pooled, GateVector):
        across_channels(node, ctx, pooled)
        return
    if isinstance(pooled, Pooled) and pooled.rank == 4:
        if pooled.linear or not ctx.feeds_gates_only(node.output[0]):
            # a head on the pooled map: Keras' classifier (conv_preds), MobileNetV3's 1x1 convs after the pool
            weight = ctx.require_const(node, 1, "weight")
            bias = ctx.optional_const(node, 2, "bias")
            if weight.ndim != 4 or weight.shape[2:] != (1, 1) or int(attributes(node).get("group", 1)) != 1:
                raise ctx.refuse(node, f"a conv with weight {list(weight.shape)} on the globally pooled map; "
                                       "supported: a 1x1 conv (a fully connected layer)")
            fully_connected(node, ctx, weight[:, :, 0, 0], np.zeros(weight.shape[0]) if bias is None else bias)
            ctx.set_value(node.output[0], replace(ctx.values[node.output[0]], rank=4))  # N x classes x 1 x 1
            return
        value = ctx.gap_of(node, pooled)  # a gate's branch: the pool becomes a layer
    else:
        value = ctx.map_of(node, 0, padded=True)
    weight = ctx.require_const(node, 1, "weight")
    if weight.ndim != 4:
        raise ctx.refuse(node, f"a {weight.ndim - 2}-D convolution; supported: 2-D convolutions")
    bias = ctx.optional_const(node, 2, "bias")
    attrs = attributes(node)
    kernel, strides, pads, dilation = window(ctx, node, attrs, kernel_default=weight.shape[2:], dilated=True)
    if tuple(weight.shape[2:]) != kernel:
        raise ctx.refuse(node, f"kernel_shape {kernel[0]}x{kernel[1]} differs from its weight {list(weight.shape)}")
    groups = int(attrs.get("group", 1))
    in_channels = ctx.channels_of(value.layer)
    if weight.shape[1] * groups != in_channels or weight.shape[0] % groups:
        raise ctx.refuse(node, f"weight {list(weight.shape)} with {groups} groups does not fit its {in_channels} "
                               "input channels")
    if isinstance(value, Padded):
        pads = tuple(a + b for a, b in zip(pads, value.pads))
    channels = int(weight.shape[0])
    bias = np.zeros(channels) if bias is None else np.asarray(bias, np.float64).reshape(-1)
    if bias.shape != (channels,):
        raise ctx.refuse(node, f"bias of shape {list(bias.shape)} for {channels} output channels")
    draft = ctx.windowed(node, "conv", value.layer, channels, kernel, strides, pads, groups=groups,
                         weight=np.asarray(weight, np.float64), bias=bias, in_channels=in_channels,
                         weight_key=node.input[1], dilation=dilation)
    ctx.set_value(node.output[0], Map(draft.id, "NCHW", draft.version))


def across_channels(node, ctx, value) -> None:
    """ECA's gate: a 1-D convolution along the channels of the pooled vector (viewed as N x 1 x C) is a
    linear map of the channels, a C x C band matrix: the 1x1 conv of a squeeze-and-excitation branch."""
    weight = ctx.require_const(node, 1, "weight")
    attrs = attributes(node)
    strides, dilations = tuple(attrs.get("strides", (1,))), tuple(attrs.get("dilations", (1,)))
    if value.axes != ("N", "1", "C") or weight.shape[:2] != (1, 1) or weight.ndim != 3 or \
            int(attrs.get("group", 1)) != 1 or strides != (1,) or dilations != (1,):
        raise ctx.refuse(node, f"a convolution with weight {list(weight.shape)} of a gate's vector viewed as "
                               f"{' x '.join(value.axes)}; supported: one 1-D filter along the channels, N x 1 x C, "
                               "stride and dilation 1 (ECA's gate)")
    mode = attrs.get("auto_pad", "NOTSET")
    extent, channels = int(weight.shape[2]), ctx.channels_of(value.layer)
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        before = (extent - 1) // 2 if mode == "SAME_UPPER" else extent // 2
        pads = (before, extent - 1 - before)
    else:
        pads = tuple(int(p) for p in attrs.get("pads", (0, 0))) if mode == "NOTSET" else (0, 0)
    out = channels + pads[0] + pads[1] - extent + 1
    if out < 1:
        raise ctx.refuse(node, f"its {extent}-wide filter does not fit the {channels} channels")
    taps = np.asarray(weight, np.float64).reshape(-1)
    band = np.zeros((out, channels))
    for row in range(out):
        for tap in range(extent):
            column = row + tap - pads[0]
            if 0 <= column < channels:
                band[row, column] = taps[tap]
    bias = ctx.optional_const(node, 2, "bias")
    bias = np.full(out, 0.0 if bias is None else float(np.asarray(bias).reshape(-1)[0]))
    draft = ctx.windowed(node, "conv", value.layer, out, 1, 1, (0, 0, 0, 0), in_channels=channels,
                         weight=band[:, :, None, None], bias=bias, weight_key=node.input[1])
    ctx.set_value(node.output[0], GateVector(draft.id, draft.version, value.axes))


def channel_axis(ctx, value, name: str) -> tuple[tuple, int]:
    """The tensor's shape at the native size (batch 1) and the axis that holds the channels."""
    if isinstance(value, Map):
        channels = ctx.channels_of(value.layer)
        height, width = ctx.size_of(value.layer)
        if value.layout == "NCHW":
            return (1, channels, height, width), 1
        return (1, height, width, channels), 3
    channels = ctx.channels_of(value.layer)
    if isinstance(value, Pooled) and value.rank == 4:
        shape = ctx.shapes.get(name)
        if shape and len(shape) == 4 and shape[1] != channels and shape[3] == channels:
            return (1, 1, 1, channels), 3
        return (1, channels, 1, 1), 1
    return (1, channels), 1


def per_channel(ctx, node, constant: np.ndarray, value, name: str) -> np.ndarray:
    """A constant that broadcasts as one number per channel, as a vector; anything else is refused."""
    shape, axis = channel_axis(ctx, value, name)
    array = np.asarray(constant, np.float64)
    if array.ndim > len(shape):
        raise ctx.refuse(node, f"its constant of shape {list(array.shape)} does not broadcast per channel")
    aligned = (1,) * (len(shape) - array.ndim) + array.shape
    for index, (have, want) in enumerate(zip(aligned, shape)):
        if have != 1 and (index != axis or have != want):
            raise ctx.refuse(node, f"its constant of shape {list(array.shape)} is not one number per channel of "
                                   f"the {list(shape)} tensor; supported: per-channel scales and shifts")
    vector = array.reshape(aligned)
    vector = vector.reshape(-1) if vector.size > 1 else np.full(shape[axis], float(vector.reshape(-1)[0]))
    return np.broadcast_to(vector, (shape[axis],)).astype(np.float64)


def fold_affine(ctx, node, index: int, scale, shift, what: str, allow_input: bool = True) -> None:
    """x * scale + shift per channel, folded into the conv or fully connected layer that made x (or, on the
    image itself, into the recorded preprocessing)."""
    name = node.input[index]
    value = ctx.value(node, index)
    if isinstance(value, ImageChannels):
        ctx.set_value(node.output[0], image_affine(ctx, node, value, scale, shift, what))
        return
    scale_vector = per_channel(ctx, node, scale, value, name)
    shift_vector = per_channel(ctx, node, shift, value, name)
    if isinstance(value, Map) and value.layer == INPUT:
        if not allow_input:
            raise ctx.refuse(node, f"a {what} of the input image, not preceded by a Conv; supported: a {what} "
                                   "folded into the Conv or fully connected layer before it")
        if not ctx.sole_reader(node, name):
            raise ctx.refuse(node, "a per-channel scale or shift of the image that other nodes bypass")
        old_scale = ctx.input_scale if ctx.input_scale is not None else np.ones(3)
        old_shift = ctx.input_shift if ctx.input_shift is not None else np.zeros(3)
        ctx.input_scale, ctx.input_shift = old_scale * scale_vector, old_shift * scale_vector + shift_vector
        ctx.set_value(node.output[0], value)
        return
    if not isinstance(value, (Map, Dense, Pooled)):
        raise ctx.refuse(node, f"a {what} of {describe(value)}; supported: a {what} of a feature map, of a fully "
                               "connected layer or of a head layer after the global average pool")
    if isinstance(value, Pooled):
        ctx.after_pool(node, value)  # an affine map commutes with the pool: the head stays what it was
    draft = ctx.drafts[value.layer]
    if draft.op != "conv" or draft.activation or not ctx.sole_reader(node, name) or \
            isinstance(value, Pooled) and not value.linear:
        # pre-activation BatchNorm, a BN or constant Mul after an activation, layer scale: a layer of its own
        # (INTERACTIVE.md, "Any CNN, part 3"), exact whatever lies around it
        draft = ctx.follow(value.layer, node, "affine", weight=np.array(scale_vector), bias=np.array(shift_vector))
        linear = {"linear": True} if isinstance(value, Pooled) else {}
        ctx.set_value(node.output[0], replace(value, layer=draft.id, version=draft.version, **linear))
        return
    draft.weight = draft.weight * scale_vector[:, None, None, None]
    draft.bias = draft.bias * scale_vector + shift_vector
    draft = ctx.modify(value.layer, node.output[0])
    ctx.set_value(node.output[0], replace(value, version=draft.version))


def image_affine(ctx, node, value: ImageChannels, scale, shift, what: str) -> ImageChannels:
    """A constant scale and shift of channels taken from the image: one number, or one per channel taken."""
    count = len(value.channels)
    vectors = []
    for constant in (scale, shift):
        array = np.asarray(constant, np.float64)
        if array.size not in (1, count) or array.size == count > 1 and (value.dropped or array.ndim < 3 or
                                                                            array.shape[-3] != count):
            raise ctx.refuse(node, f"a {what} of shape {list(array.shape)} of {count} image channel(s); supported: "
                                   "one number, or one per channel")
        vectors.append(np.broadcast_to(array.reshape(-1), (count,)))
    return replace(value, scale=tuple(float(a * s) for a, s in zip(value.scale, vectors[0])),
                   shift=tuple(float(b * s + t) for b, s, t in zip(value.shift, *vectors)))


@converter("BatchNormalization", 7, 9, 14, 15)
def batch_normalization(node, ctx) -> None:
    attrs = attributes(node)
    if int(attrs.get("training_mode", 0)) or int(attrs.get("spatial", 1)) != 1:
        raise ctx.refuse(node, "a BatchNormalization in training mode or per-position; supported: the inference "
                               "form, folded into the conv before it")
    if any(name and ctx.consumers.get(name) or name in ctx.outputs for name in node.output[1:]):
        raise ctx.refuse(node, "its running-statistics outputs are used; supported: the inference form")
    value = ctx.value(node, 0)
    if isinstance(value, Map) and value.layout != "NCHW":
        raise ctx.refuse(node, "it normalises axis 1 of an NHWC tensor (its rows, not its channels)")
    gamma, beta, mean, var = (np.asarray(ctx.require_const(node, i, what), np.float64)
                              for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    factor = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
    shift = beta - mean * factor
    if isinstance(value, Map) or isinstance(value, Pooled) and value.rank == 4:  # axis 1 of N x C x H x W
        factor, shift = factor.reshape(-1, 1, 1), shift.reshape(-1, 1, 1)
    fold_affine(ctx, node, 0, factor, shift, "BatchNormalization", allow_input=False)
