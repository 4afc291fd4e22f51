"""Add and Sum of feature maps (residual sums), Concat along channels, and per-channel constant Add, Sub,
Mul and Div, which fold into the layer before them (a bias, a decomposed BatchNorm) or, on the image,
into the recorded preprocessing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from interactive_trt.contracts.spec import INPUT
from interactive_trt.exporter.networks.onnx_import.builder import (
    Dense, Draft, ImageChannels, Map, Pooled, describe, on_channels,
)
from interactive_trt.exporter.networks.onnx_import.converters.conv import fold_affine
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter


def constant_inputs(ctx, node) -> list:
    return [ctx.const(name) for name in node.input]


def sum_of_maps(node, ctx, values=None) -> None:
    values = values or [ctx.value(node, index) for index in range(len(node.input))]
    if len(values) == 1:
        ctx.set_value(node.output[0], values[0])
        return
    kinds = {type(value) for value in values}
    if kinds == {Pooled}:
        summed_heads(node, ctx, values)
        return
    layouts = {getattr(value, "layout", "NC") for value in values}
    if not (kinds == {Map} or kinds == {Dense}) or len(layouts) > 1:
        found = ", ".join(describe(value) + (f" ({value.layout})" if isinstance(value, Map) else "")
                          for value in values)
        raise ctx.refuse(node, f"a sum of {found}; supported: a residual sum of feature maps of one layout")
    layers = [value.layer for value in values]
    shapes = {(ctx.channels_of(layer), *ctx.size_of(layer)) for layer in layers}
    if len(shapes) > 1:
        raise ctx.refuse(node, f"a sum of maps of shapes {sorted(shapes)}; supported: equal shapes (no broadcasting)")
    channels, height, width = shapes.pop()
    draft = ctx.add(Draft(id=ctx.new_id(), op="add", inputs=tuple(layers), channels=channels, size=(height, width),
                          total_stride=ctx.total_stride_of(*layers), source=node.output[0]))
    first = values[0]
    result = Map(draft.id, first.layout, draft.version) if isinstance(first, Map) else Dense(draft.id, draft.version)
    ctx.set_value(node.output[0], result)


def linear_chain(ctx, value: Pooled):
    """The head layers between the pooled map and `value` as one affine map of the pooled vector, (weight
    out x C, bias), float64; None where one of them is not linear (an activation, a LayerNorm)."""
    weight, bias, name = None, None, value.layer
    while name != ctx.head_map:
        draft = ctx.drafts.get(name)
        if draft is None:
            return None
        if draft.activation or draft.op not in ("conv", "affine") or len(draft.inputs) != 1 or \
                draft.op == "conv" and (draft.kernel, draft.kernel_w, draft.groups) != (1, 0, 1):
            return None
        if draft.op == "conv":
            step, shift = draft.weight[:, :, 0, 0], draft.bias
        else:
            step, shift = np.diag(draft.weight), draft.bias
        weight, bias = (step, shift) if weight is None else (weight @ step, weight @ shift + bias)
        name = draft.inputs[0]
    return weight, bias


def summed_heads(node, ctx, values) -> None:
    """Classifiers summed after the pool (RepViT's and FastViT's distillation heads, (head(x) + head_dist(x))
    / 2): where each is linear, the sum is one linear layer of the pooled map, the heads' matrices summed,
    and a classifier that is one linear layer stays one (INTERACTIVE.md, "Any CNN")."""
    chains = [linear_chain(ctx, value) if value.linear and ctx.head_map else None for value in values]
    if any(chain is None for chain in chains) or len({chain[0].shape for chain in chains}) > 1 or \
            len({value.rank for value in values}) > 1:
        found = ", ".join(describe(value) for value in values)
        raise ctx.refuse(node, f"a sum of {found}; supported: a residual sum of feature maps of one layout, or a sum "
                               "of linear classifiers of the pooled map")
    weight = sum(chain[0] for chain in chains)
    bias = sum(chain[1] for chain in chains)
    channels = ctx.channels_of(ctx.head_map)
    draft = ctx.windowed(node, "conv", ctx.head_map, weight.shape[0], 1, 1, (0, 0, 0, 0), in_channels=channels,
                         weight=np.ascontiguousarray(weight[:, :, None, None]), bias=np.asarray(bias, np.float64),
                         weight_key=node.output[0], dense=True)
    ctx.head_pooled = False  # the heads are one linear layer after the pool now
    ctx.set_value(node.output[0], Pooled(draft.id, draft.version, rank=values[0].rank, linear=True))


@converter("Add", 7, 13, 14)
def add(node, ctx) -> None:
    constants = constant_inputs(ctx, node)
    if constants[1] is not None and constants[0] is None:
        fold_affine(ctx, node, 0, 1.0, constants[1], "constant Add")
    elif constants[0] is not None and constants[1] is None:
        fold_affine(ctx, node, 1, 1.0, constants[0], "constant Add")
    else:
        sum_of_maps(node, ctx)


@converter("Sum", 6, 8, 13)
def sum_(node, ctx) -> None:
    if any(constant is not None for constant in constant_inputs(ctx, node)):
        raise ctx.refuse(node, "a Sum with a constant term; supported: a Sum of feature maps, or Add for a bias")
    sum_of_maps(node, ctx)


@converter("Mul", 7, 13, 14)
def mul(node, ctx) -> None:
    constants = constant_inputs(ctx, node)
    if constants[1] is not None and constants[0] is None:
        fold_affine(ctx, node, 0, constants[1], 0.0, "constant Mul")
    elif constants[0] is not None and constants[1] is None:
        fold_affine(ctx, node, 1, constants[0], 0.0, "constant Mul")
    else:
        gate(node, ctx)


def gate(node, ctx) -> None:
    """A map times a factor computed in the network: a squeeze-and-excitation gate (N x C x 1 x 1, made from
    the map through a global average pool), a spatial gate (N x 1 x H x W, one factor per position, as
    scSE's) or another map of its shape (INTERACTIVE.md, "Any CNN, part 3"). A map times its own pooled
    vector, with no layer between (x * mean(x)), is a gate whose branch is the pool alone."""
    values = [pooled_factor(node, ctx, index) for index in range(2)]
    if not all(isinstance(value, Map) for value in values) or values[0].layout != values[1].layout:
        raise ctx.refuse(node, "a product of " + " and ".join(describe(value) for value in values) + "; supported: "
                         "a feature map times a gate (per channel, after a global average pool) or times a map of "
                         "its own shape, in one layout")
    layers = [value.layer for value in values]
    shapes = [(ctx.channels_of(layer), ctx.size_of(layer)) for layer in layers]
    full = [index for index, layer in enumerate(layers) if not ctx.is_pooled(layer)]
    channels = {channels for channels, _ in shapes}
    spatial = len(full) == 2 and min(channels) == 1 < max(channels)  # one channel: a factor per position
    if len({shapes[index][1] for index in full}) > 1 or len(channels) > 1 and not spatial:
        raise ctx.refuse(node, f"a product of maps of shapes {[(c, *size) for c, size in shapes]}; supported: equal "
                               "shapes, a map times a per-channel gate from a global average pool, or times a "
                               "one-channel map of its size (a gate per position)")
    main = max(full, key=lambda index: shapes[index][0]) if full else 0
    draft = ctx.add(Draft(id=ctx.new_id(), op="mul", inputs=tuple(layers), channels=shapes[main][0],
                          size=shapes[main][1], total_stride=ctx.total_stride_of(*layers),
                          source=node.output[0]))
    ctx.set_value(node.output[0], Map(draft.id, values[0].layout, draft.version))


def pooled_factor(node, ctx, index: int):
    """Input `index` of a product; a globally pooled map (N x C x 1 x 1, or N x 1 x 1 x C) times another map
    is its gap layer, in the layout the pooled tensor has."""
    value = ctx.value(node, index)
    other = ctx.value(node, 1 - index)
    if not (isinstance(value, Pooled) and value.rank == 4 and not value.linear and isinstance(other, Map)):
        return value
    return replace(ctx.gap_of(node, value), layout=ctx.pooled_layout(node.input[index], value))


@converter("Sub", 7, 13, 14)
def sub(node, ctx) -> None:
    constants = constant_inputs(ctx, node)
    if constants[1] is not None and constants[0] is None:
        fold_affine(ctx, node, 0, 1.0, -np.asarray(constants[1], np.float64), "constant Sub")
    elif constants[0] is not None and constants[1] is None:
        fold_affine(ctx, node, 1, -1.0, constants[0], "constant Sub")
    else:
        difference(node, ctx)


def difference(node, ctx) -> None:
    """a - b of two feature maps of one shape (FastViT's RepMixer, mixer(x) - norm(x)): the sum of a and
    b scaled by -1, an affine layer of its own (named after the difference, with '::negated')."""
    values = [ctx.value(node, index) for index in range(2)]
    if not all(isinstance(value, Map) and value.layer != INPUT for value in values):
        raise ctx.refuse(node, "a difference of " + " and ".join(describe(value) for value in values) + "; supported: "
                         "of two feature maps of one shape, or a per-channel constant shift")
    channels = ctx.channels_of(values[1].layer)
    negated = ctx.follow(values[1].layer, node, "affine", weight=-np.ones(channels), bias=np.zeros(channels))
    negated.source = f"{node.output[0]}::negated"
    sum_of_maps(node, ctx, [values[0], Map(negated.id, values[1].layout, negated.version)])


@converter("Div", 7, 13, 14)
def div(node, ctx) -> None:
    divisor = ctx.const(node.input[1])
    if divisor is None or ctx.const(node.input[0]) is not None or not np.all(np.asarray(divisor) != 0):
        raise ctx.refuse(node, "a division by a computed tensor or by zero; supported: division by a per-channel "
                               "nonzero constant")
    fold_affine(ctx, node, 0, 1.0 / np.asarray(divisor, np.float64), 0.0, "constant Div")


def image_again(node, ctx, values) -> None:
    """The image's channels put back in order, each with its constant affine (transform_input): the image,
    with the affine recorded in the preprocessing, where nothing else reads the image."""
    sources = {value.source for value in values if isinstance(value, ImageChannels)}
    source = next(iter(sources))
    image = ctx.values[source]
    channels = [channel for value in values for channel in getattr(value, "channels", ())]
    takers = {taker for value in values for taker in getattr(value, "takers", ())}
    axis = int(attributes(node).get("axis", 1)) % 4
    others = [reader for reader in ctx.consumers.get(source, []) if reader.output[0] not in takers]
    if not all(isinstance(value, ImageChannels) and not value.dropped for value in values) or len(sources) > 1:
        reason = "a concatenation of " + ", ".join(describe(value) for value in values)
    elif others:
        reason = "other nodes read the image as it is"
    elif channels != list(range(ctx.channels_of(INPUT))) or not on_channels(image.layout, axis):
        reason = f"channels {channels} of the image along axis {axis}"
    else:
        reason = None
    if reason:
        raise ctx.refuse(node, f"{reason}; supported: the image's channels taken apart, each scaled and shifted by "
                               "constants, and put back in their order (torchvision's transform_input)")
    scale = np.array([s for value in values for s in value.scale])
    shift = np.array([t for value in values for t in value.shift])
    old_scale = ctx.input_scale if ctx.input_scale is not None else np.ones(3)
    old_shift = ctx.input_shift if ctx.input_shift is not None else np.zeros(3)
    ctx.input_scale, ctx.input_shift = old_scale * scale, old_shift * scale + shift
    ctx.set_value(node.output[0], image)


def zero_channels(node, ctx):
    """(the map, (before, after)): how many zero channels the constant inputs of a Concat along the channels
    put around the one map among them (`torch.cat((x, zeros), 1)`, PyramidNet's widened shortcut); None
    where no input is constant. Constants elsewhere, or not zero, are refused."""
    constants = [ctx.const(name) for name in node.input]
    if all(array is None for array in constants):
        return None
    maps = [index for index, array in enumerate(constants) if array is None]
    if len(maps) != 1 or any(array.ndim != 4 or np.any(array) for array in constants if array is not None):
        raise ctx.refuse(node, "a concatenation with constants; supported: zeros before or after one feature map's "
                               "channels (a widened shortcut)")
    value = ctx.value(node, maps[0])
    if not isinstance(value, Map) or value.layer == INPUT:
        raise ctx.refuse(node, f"zeros concatenated to {describe(value)}; supported: to a feature map's channels")
    axis = int(attributes(node).get("axis", 1)) % 4
    rows, channel = (2, 1) if value.layout == "NCHW" else (1, 3)
    size = ctx.size_of(value.layer)
    if axis != channel or any(tuple(array.shape[rows:rows + 2]) != size or array.shape[0] not in (1, ctx.batch)
                              for array in constants if array is not None):
        raise ctx.refuse(node, f"zeros concatenated along axis {axis} of an {value.layout} map of size "
                               f"{size[0]}x{size[1]}; supported: zero channels of the map's size")
    return value, (sum(array.shape[channel] for array in constants[:maps[0]]),
                   sum(array.shape[channel] for array in constants[maps[0] + 1:]))


@converter("Concat", 4, 11, 13)
def concat(node, ctx) -> None:
    widened = zero_channels(node, ctx)
    if widened is not None:
        value, channel_pads = widened
        ctx.set_value(node.output[0], ctx.padded(value, (0, 0, 0, 0), node.output[0], channel_pads=channel_pads))
        return
    values = [ctx.value(node, index) for index in range(len(node.input))]
    if any(isinstance(value, ImageChannels) for value in values):
        image_again(node, ctx, values)
        return
    if not all(isinstance(value, Map) for value in values) or len({value.layout for value in values}) > 1:
        raise ctx.refuse(node, "a concatenation of " + ", ".join(describe(value) for value in values)
                         + "; supported: feature maps of one layout, along the channels")
    layout = values[0].layout
    axis = int(attributes(node).get("axis", 1)) % 4
    if not on_channels(layout, axis):
        raise ctx.refuse(node, f"a concatenation along axis {axis} of {layout} maps; supported: along the channels")
    layers = [value.layer for value in values]
    sizes = {ctx.size_of(layer) for layer in layers}
    if len(sizes) > 1:
        raise ctx.refuse(node, f"a concatenation of maps of sizes {sorted(sizes)}; supported: equal sizes")
    draft = ctx.add(Draft(id=ctx.new_id(), op="concat", inputs=tuple(layers),
                          channels=sum(ctx.channels_of(layer) for layer in layers), size=sizes.pop(),
                          total_stride=ctx.total_stride_of(*layers), source=node.output[0]))
    ctx.set_value(node.output[0], Map(draft.id, layout, draft.version))
