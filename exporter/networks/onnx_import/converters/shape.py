"""Layout and shape ops: Transpose between NCHW and NHWC (tf2onnx's input and flatten), Flatten and
Reshape to N x CHW before a fully connected layer (their shape inputs are constants after
canonicalisation), Squeeze and Unsqueeze of a pooled vector, and Pad with zeros before a Conv."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from interactive_trt.contracts.spec import INPUT
from interactive_trt.exporter.networks.onnx_import.builder import (
    Dense, Draft, Flat, GateVector, Grouped, ImageChannels, Map, Padded, Parts, Pooled, Positions, Probabilities,
    Rows, Unchanneled, describe, on_channels,
)
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter

SWAPS = {("NCHW", (0, 2, 3, 1)): "NHWC", ("NHWC", (0, 3, 1, 2)): "NCHW"}


@converter("Transpose", 1, 13, 21, 23, 24)
def transpose(node, ctx) -> None:
    value = ctx.value(node, 0)
    rank = 2 if isinstance(value, (Dense, Flat)) or isinstance(value, Pooled) and value.rank == 2 else 4
    rank = 5 if isinstance(value, Grouped) else len(value.axes) if isinstance(value, GateVector) else rank
    perm = tuple(int(p) for p in attributes(node).get("perm", range(rank - 1, -1, -1)))
    if perm == tuple(range(rank)):
        ctx.set_value(node.output[0], value)
    elif isinstance(value, (Map, Padded)) and (value.layout, perm) in SWAPS:
        ctx.set_value(node.output[0], replace(value, layout=SWAPS[(value.layout, perm)]))
    elif isinstance(value, Pooled) and value.rank == 4 and perm[0] == 0:
        ctx.set_value(node.output[0], value)  # a 1x1 map: only the channel axis moves
    elif isinstance(value, GateVector) and sorted(perm) == list(range(len(value.axes))):
        gate_axes(node, ctx, value, tuple(value.axes[axis] for axis in perm))
    elif isinstance(value, Grouped) and perm == (0, 2, 1, 3, 4) and not value.transposed:
        ctx.set_value(node.output[0], replace(value, transposed=True))
    else:
        raise ctx.refuse(node, f"permutation {list(perm)} of {describe(value)}; supported: NCHW <-> NHWC of a map")


def flatten_value(node, ctx, value):
    if isinstance(value, Probabilities):  # a softmax of N x C x 1 x 1 scores, flattened to the output
        return Probabilities(flatten_value(node, ctx, value.scores))
    if isinstance(value, Map):
        return Flat(value.layer, value.layout, value.version)
    if isinstance(value, Pooled):
        return replace(value, rank=2)
    if isinstance(value, (Flat, Dense)):
        return value
    raise ctx.refuse(node, f"flattening {describe(value)}")


@converter("Flatten", 1, 9, 11, 13, 21, 23, 24)
def flatten(node, ctx) -> None:
    axis = int(attributes(node).get("axis", 1))
    value = ctx.value(node, 0, softmax=True)
    if axis != 1:
        raise ctx.refuse(node, f"flattening from axis {axis}; supported: axis 1 (N x everything else)")
    ctx.set_value(node.output[0], flatten_value(node, ctx, value))


def positions_as_rows(node, ctx, value, target: list[int]) -> bool:
    """A channels-last map to N H W x C rows and back (a pointwise Linear layer's Gemm in between)."""
    channels = ctx.channels_of(value.layer)
    height, width = ctx.size_of(value.layer)
    rows = ctx.batch * height * width
    if isinstance(value, Map) and value.layout == "NHWC" and len(target) == 2 and target[1] == channels \
            and target[0] in (rows, -1) and rows != ctx.batch:
        ctx.set_value(node.output[0], Rows(value.layer, value.version))
        return True
    if isinstance(value, Rows) and len(target) == 4 and target[0] in (ctx.batch, -1) and \
            target[1:] == [height, width, channels]:
        ctx.set_value(node.output[0], Map(value.layer, "NHWC", value.version))
        return True
    return False


def channel_groups(node, ctx, value, target: list[int]) -> bool:
    """ShuffleNet's channel shuffle as torch writes it: an NCHW map viewed as N x g x C/g x H x W, the two
    group axes transposed, viewed back as N x C x H x W: a shuffle layer of g groups."""
    channels = ctx.channels_of(value.layer)
    size = list(ctx.size_of(value.layer))
    if isinstance(value, Map) and value.layout == "NCHW" and len(target) == 5 and target[0] in (ctx.batch, -1) \
            and target[3:] == size and target[1] > 0 and target[2] in (channels // target[1], -1) \
            and channels % target[1] == 0:
        ctx.set_value(node.output[0], Grouped(value.layer, value.version, target[1]))
        return True
    if isinstance(value, Grouped) and value.transposed and len(target) == 4 and target[0] in (ctx.batch, -1) \
            and target[1] in (channels, -1) and target[2:] == size:
        draft = ctx.follow(value.layer, node, "shuffle", groups=value.groups)
        ctx.set_value(node.output[0], Map(draft.id, "NCHW", draft.version))
        return True
    return False


def numel(ctx, value) -> int:
    channels = ctx.channels_of(value.layer)
    if isinstance(value, (Map, Flat, Rows)):
        height, width = ctx.size_of(value.layer)
        return channels * height * width
    return channels


def unchanged_shape(ctx, value) -> list[int]:
    """A map's shape after the batch axis in its layout, 1 x 1 spatially (a gate branch's map)."""
    channels = ctx.channels_of(value.layer)
    return [channels, 1, 1] if value.layout == "NCHW" else [1, 1, channels]


@converter("Reshape", 5, 13, 14, 19, 21, 23, 24)
def reshape(node, ctx) -> None:
    value = ctx.value(node, 0, softmax=True)
    target = [int(v) for v in np.asarray(ctx.require_const(node, 1, "shape")).reshape(-1)]
    scores = value.scores if isinstance(value, Probabilities) else value
    if isinstance(scores, Padded) or not hasattr(scores, "layer"):
        raise ctx.refuse(node, f"reshaping {describe(value)}")
    total = numel(ctx, scores)
    batch = ctx.batch
    if target and target[0] == 0:
        target[0] = batch
    if isinstance(value, (Map, Rows)) and positions_as_rows(node, ctx, value, target):
        return
    if isinstance(value, (Map, Grouped)) and channel_groups(node, ctx, value, target):
        return
    if isinstance(value, Map) and value.layout == "NCHW" and len(target) == 3 and target[0] in (batch, -1) and \
            target[1] in (ctx.channels_of(value.layer), 0) and target[2] in (total // ctx.channels_of(value.layer), -1):
        ctx.set_value(node.output[0], Positions(value.layer, value.version))  # x.flatten(2)
        return
    if len(target) == 2 and target[0] in (batch, -1) and target[1] in (total, -1) and target != [-1, -1]:
        ctx.set_value(node.output[0], flatten_value(node, ctx, value))
        return
    if isinstance(value, Dense) and ctx.is_pooled(value.layer) and len(target) == 4 and \
            target[0] in (batch, -1, 0) and sorted(target[1:]) == [1, 1, total]:
        gate_axes(node, ctx, value, ("N", *("C" if size == total else "1" for size in target[1:])))
        return
    if isinstance(value, Map) and ctx.is_pooled(value.layer) and len(target) == 4 and \
            target[0] in (batch, -1, 0) and target[1:] == unchanged_shape(ctx, value):
        ctx.set_value(node.output[0], value)  # a gate branch's 1 x 1 map to its own shape (tf2onnx's SE convs)
        return
    if isinstance(value, Pooled) and len(target) == 4 and target[0] in (batch, -1, 0) and \
            sorted(target[1:]) == [1, 1, total]:
        ctx.set_value(node.output[0], replace(value, rank=4))
        return
    if eca_view(node, ctx, value, target, total):
        return
    if isinstance(value, Pooled) and target in ([-1], [batch * total]):
        ctx.set_value(node.output[0], replace(value, rank=1))  # for the Gather below
        return
    raise ctx.refuse(node, f"reshaping {describe(value)} of {total} values per image to {target}; supported: "
                           f"flattening to (N, {total})")


def eca_view(node, ctx, value, target: list[int], total: int) -> bool:
    """timm's ECA views the pooled vector as N x 1 x C for its 1-D conv across the channels
    (`y.view(n, 1, -1)`) and the gate back as N x C x 1 x 1 (`view(n, -1, 1, 1)`): the axes ECA's Squeeze
    and Transpose give, named (gate_axes)."""
    batch = ctx.batch
    if target[:1] not in ([batch], [-1], [0]) or any(size not in (1, total, -1) for size in target[1:]) or \
            target[1:].count(1) != len(target) - 2:
        return False
    names = ("N", *("1" if size == 1 else "C" for size in target[1:]))
    if isinstance(value, Pooled) and not value.linear and len(target) == 3 and ctx.feeds_gates_only(node.output[0]):
        gate_axes(node, ctx, ctx.gap_of(node, value), names)
        return True
    if isinstance(value, GateVector) and len(target) in (3, 4):
        gate_axes(node, ctx, value, names)
        return True
    return False


@converter("Gather", 1, 11, 13)
def gather(node, ctx) -> None:
    """torch.onnx's dynamo exporter writes ConvNeXt's `flatten(adaptive_avg_pool2d(x, 1))` view as a
    Reshape to [-1] and a Gather of every index in order (`as_strided`): a pooled vector, unchanged."""
    value = ctx.value(node, 0, raveled=True)
    indices = np.asarray(ctx.require_const(node, 1, "indices"))
    axis = int(attributes(node).get("axis", 0))
    if isinstance(value, Map) and indices.ndim == 0 and on_channels(value.layout, axis):
        index = int(indices) % ctx.channels_of(value.layer)  # x[:, i]: one channel, its axis dropped
        if value.layer == INPUT:
            ctx.set_value(node.output[0], image_channels(node, (index,), dropped=True))
            return
        channel_slice(node, ctx, value, index, index + 1, node.output[0])
        sliced = ctx.values[node.output[0]]
        ctx.set_value(node.output[0], Unchanneled(sliced.layer, sliced.version, sliced.layout))
        return
    if isinstance(value, Pooled) and value.rank == 1 and axis == 0:
        channels = ctx.channels_of(value.layer)
        if indices.shape in ((ctx.batch, channels, 1, 1), (ctx.batch, channels)) and \
                np.array_equal(indices.reshape(-1), np.arange(ctx.batch * channels)):
            ctx.set_value(node.output[0], replace(value, rank=indices.ndim))
            return
    raise ctx.refuse(node, f"gathering indices of shape {list(indices.shape)} along axis {axis} of "
                           f"{describe(value)}; supported: every index in order, restoring a raveled pooled "
                           "vector to N x C (x 1 x 1)")


def axes_of(node, ctx) -> list[int] | None:
    axes = attributes(node).get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = ctx.require_const(node, 1, "axes")
    return None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]


def squeezable(ctx, name: str, value, axes: list[int]) -> bool:
    """Whether `axes` are 1 x 1 spatial axes of the pooled tensor `name` (not its batch or channels) and
    taking them leaves N x C or N x C x 1 (`squeeze(-1).squeeze(-1)`, one axis at a time)."""
    shape = ctx.shapes.get(name)
    if not shape or len(shape) != value.rank or None in shape:
        return False
    taken = {axis % value.rank for axis in axes}
    left = [size for axis, size in enumerate(shape) if axis not in taken]
    channels = ctx.channels_of(value.layer)
    return 0 not in taken and len(taken) == len(axes) and all(shape[axis] == 1 for axis in taken) and \
        len(left) >= 2 and left.count(channels) == 1 and left[0] == shape[0] and value.rank - len(axes) >= 2


@converter("Squeeze", 1, 11, 13, 21, 23, 24)
def squeeze(node, ctx) -> None:
    value = ctx.value(node, 0, softmax=True)
    axes = axes_of(node, ctx)
    scores = value.scores if isinstance(value, Probabilities) else value
    if isinstance(scores, Pooled) and scores.rank == 4 and (axes is None or len({a % 4 for a in axes} - {0}) == 2):
        squeezed = replace(scores, rank=2)
        ctx.set_value(node.output[0], Probabilities(squeezed) if isinstance(value, Probabilities) else squeezed)
        return
    if isinstance(value, Pooled) and value.rank == 4 and not value.linear and axes is not None and \
            ctx.feeds_gates_only(node.output[0]):
        gate = ctx.gap_of(node, value)  # ECA's squeeze(-1) on the way to its 1-D conv across the channels
        last = ctx.pooled_layout(node.input[0], value) == "NHWC"
        names = ("N", "1", "1", "C") if last else ("N", "C", "1", "1")
        gate_axes(node, ctx, gate, tuple(name for axis, name in enumerate(names) if axis not in {a % 4 for a in axes}))
        return
    if isinstance(scores, Pooled) and scores.rank in (3, 4) and axes is not None and \
            squeezable(ctx, node.input[0], scores, axes):
        squeezed = replace(scores, rank=scores.rank - len(axes))
        ctx.set_value(node.output[0], Probabilities(squeezed) if isinstance(value, Probabilities) else squeezed)
        return
    raise ctx.refuse(node, f"squeezing axes {axes} of {describe(value)}; supported: the 1x1 spatial axes of a "
                           "globally pooled map, together or one at a time")


@converter("Unsqueeze", 1, 11, 13, 21, 23, 24)
def unsqueeze(node, ctx) -> None:
    value = ctx.value(node, 0)
    axes = axes_of(node, ctx)
    if isinstance(value, Pooled) and axes is not None and value.rank + len(axes) in (3, 4) and value.rank >= 2 and \
            0 not in {axis % (value.rank + len(axes)) for axis in axes}:
        ctx.set_value(node.output[0], replace(value, rank=value.rank + len(axes)))
        return
    if isinstance(value, Unchanneled) and axes is not None and len(axes) == 1 and on_channels(value.layout, axes[0]):
        ctx.set_value(node.output[0], Map(value.layer, value.layout, value.version))
        return
    if isinstance(value, ImageChannels) and value.dropped and axes is not None and len(axes) == 1 and \
            on_channels(ctx.values[value.source].layout, axes[0]):
        ctx.set_value(node.output[0], replace(value, dropped=False))
        return
    if axes is not None and (isinstance(value, GateVector) or isinstance(value, Dense) and ctx.is_pooled(value.layer)):
        names = list(value.axes if isinstance(value, GateVector) else ("N", "C"))
        rank = len(names) + len(axes)
        if rank <= 4 and len({axis % rank for axis in axes}) == len(axes):
            for axis in sorted(axis % rank for axis in axes):
                names.insert(axis, "1")
            gate_axes(node, ctx, value, tuple(names))
            return
    raise ctx.refuse(node, f"unsqueezing axes {axes} of {describe(value)}; supported: back to N x C x 1 x 1")


def gate_axes(node, ctx, value, names: tuple) -> None:
    """A gate's vector with its axes named: N x C x 1 x 1 or N x 1 x 1 x C is its 1 x 1 map again, in
    that layout; other orders wait for the next Transpose or Unsqueeze. ONNX Runtime's transpose optimiser
    moves ECA's last Transpose past its Unsqueeze and gate activation (N x 1 x C x 1, then a permutation)."""
    layouts = {("N", "C", "1", "1"): "NCHW", ("N", "1", "1", "C"): "NHWC"}
    if names in layouts:
        ctx.set_value(node.output[0], Map(value.layer, layouts[names], value.version))
    elif names == ("N", "C"):
        ctx.set_value(node.output[0], Dense(value.layer, value.version))
    elif len(names) in (3, 4) and sorted(names) == ["1"] * (len(names) - 2) + ["C", "N"] and names[0] == "N":
        ctx.set_value(node.output[0], GateVector(value.layer, value.version, names))
    else:
        raise ctx.refuse(node, f"a gate's vector viewed as {' x '.join(names)}; supported: N x C x 1 x 1 or "
                               "N x 1 x 1 x C")


@converter("Expand", 8, 13)
def expand(node, ctx) -> None:
    """`x * gate.expand_as(x)` (SENet's and CBAM's reference code): a product broadcasts the gate the same
    way, so the expanded gate is the gate, where every reader is such a product."""
    value = ctx.value(node, 0)
    target = [int(v) for v in np.asarray(ctx.require_const(node, 1, "shape")).reshape(-1)]
    if isinstance(value, Map):
        channels, (height, width) = ctx.channels_of(value.layer), ctx.size_of(value.layer)
        shape = (ctx.batch, channels, height, width) if value.layout == "NCHW" else (ctx.batch, height, width, channels)
        rank = max(len(shape), len(target))
        padded = [1] * (rank - len(shape)) + list(shape)
        wanted = [1] * (rank - len(target)) + target
        if all(size == other or other == 1 for size, other in zip(padded, wanted)):
            ctx.set_value(node.output[0], value)  # the shape it already has
            return
        readers = ctx.consumers.get(node.output[0], [])
        if readers and node.output[0] not in ctx.outputs and all(ctx.is_gate_product(r) for r in readers):
            ctx.set_value(node.output[0], value)
            return
    raise ctx.refuse(node, f"expanding {describe(value)} to {target}; supported: a gate expanded to the shape of the "
                           "map it multiplies")


@converter("Pad", 2, 11, 13, 18, 19, 21, 23, 24)
def pad(node, ctx) -> None:
    attrs = attributes(node)
    mode = attrs.get("mode", "constant")
    if ctx.opset < 11:
        pads, fill = attrs.get("pads", ()), float(attrs.get("value", 0.0))
    else:
        pads = ctx.require_const(node, 1, "pads")
        constant = ctx.optional_const(node, 2, "constant value")
        fill = 0.0 if constant is None else float(np.asarray(constant).reshape(-1)[0])
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = None
    if len(node.input) > 3 and node.input[3]:
        axes = [int(a) % 4 for a in np.asarray(ctx.require_const(node, 3, "axes")).reshape(-1)]
    value = ctx.map_of(node, 0, layouts=("NCHW", "NHWC"))
    if axes is not None:
        full = [0] * 8
        for index, axis in enumerate(axes):
            full[axis], full[axis + 4] = pads[index], pads[index + len(axes)]
        pads = full
    if len(pads) == 8 and not any(pads):  # pytorchcv's PyramidNet pads each shortcut, by 0 where no channel is added
        ctx.set_value(node.output[0], value)
        return
    reflect = mode == "reflect" and not isinstance(value, Padded)
    if not (mode == "constant" and fill == 0.0 or reflect) or len(pads) != 8 or min(pads) < 0:
        raise ctx.refuse(node, f"{mode} padding with {fill:g}, pads {pads}; supported: non-negative zero padding "
                               "of the spatial axes (absorbed by the Conv after it) or of the channels, and reflect "
                               "padding of a map")
    rows, columns = (2, 3) if value.layout == "NCHW" else (1, 2)
    channel = 1 if value.layout == "NCHW" else 3
    if pads[0] or pads[4] or reflect and (pads[channel] or pads[channel + 4]):
        raise ctx.refuse(node, f"{mode} pads {pads} reach the batch axis or mirror channels; supported: spatial "
                               "padding, and zero channels before or after a map's")
    spatial = (pads[rows], pads[columns], pads[rows + 4], pads[columns + 4])
    if reflect:  # a layer of its own (anti-aliased downsampling's, before its blur): its gradient folds back
        ctx.set_value(node.output[0], ctx.padded(value, spatial, node.output[0], "reflect"))
        return
    previous = value.pads if isinstance(value, Padded) else (0, 0, 0, 0)
    total = tuple(a + b for a, b in zip(spatial, previous))
    if pads[channel] or pads[channel + 4]:  # zero channels (PyramidNet's shortcut): a layer of its own
        ctx.set_value(node.output[0], ctx.padded(value, total, node.output[0],
                                                 channel_pads=(pads[channel], pads[channel + 4])))
        return
    ctx.set_value(node.output[0], Padded(value.layer, value.layout, value.version, total))


def channel_slice(node, ctx, value, start: int, end: int, output: str) -> None:
    """Channels start..end of a map as a slice layer (Split, Slice, torch's chunk)."""
    channels = ctx.channels_of(value.layer)
    start, end = max(0, min(start, channels)), max(0, min(end, channels))
    if end <= start:
        raise ctx.refuse(node, f"it takes no channels ({start} to {end} of {channels})")
    draft = ctx.add(Draft(id=ctx.new_id(), op="slice", inputs=(value.layer,), channels=end - start,
                          size=ctx.size_of(value.layer), total_stride=ctx.total_stride_of(value.layer),
                          offset=start, source=output))
    ctx.set_value(output, Map(draft.id, value.layout, draft.version))


def image_channels(node, channels, dropped: bool = False, output: int = 0) -> ImageChannels:
    return ImageChannels(node.input[0], tuple(channels), (1.0,) * len(channels), (0.0,) * len(channels),
                         (node.output[output],), dropped)


def of_image_channels(value, axis: int) -> bool:
    """Whether a Split or Slice along `axis` takes the input image's channels apart (transform_input)."""
    return isinstance(value, Map) and value.layer == INPUT and on_channels(value.layout, axis)


def channel_axis_of(node, ctx, value, axis: int) -> None:
    if not isinstance(value, Map) or value.layer == "image":
        raise ctx.refuse(node, f"it splits {describe(value) if not isinstance(value, Map) else 'the input image'}; "
                               "supported: the channels of a feature map")
    if not on_channels(value.layout, axis):
        raise ctx.refuse(node, f"it splits axis {axis} of an {value.layout} map; supported: its channels")


@converter("Split", 2, 11, 13, 18)
def split(node, ctx) -> None:
    value = ctx.value(node, 0)
    attrs = attributes(node)
    image = of_image_channels(value, int(attrs.get("axis", 0)))
    if not image:
        channel_axis_of(node, ctx, value, int(attrs.get("axis", 0)))
    channels = ctx.channels_of(value.layer)
    sizes = attrs.get("split")
    if len(node.input) > 1 and node.input[1]:
        sizes = ctx.require_const(node, 1, "split sizes")
    if sizes is None:
        count = len(node.output)
        if channels % count:
            raise ctx.refuse(node, f"{channels} channels in {count} equal parts")
        sizes = [channels // count] * count
    sizes = [int(size) for size in np.asarray(sizes).reshape(-1)]
    if sum(sizes) != channels or len(sizes) != len(node.output):
        raise ctx.refuse(node, f"parts {sizes} of {channels} channels")
    start = 0
    for index, (size, output) in enumerate(zip(sizes, node.output)):
        if output and image:
            ctx.set_value(output, image_channels(node, range(start, start + size), output=index))
        elif output:
            channel_slice(node, ctx, value, start, start + size, output)
        start += size


@converter("SplitToSequence", 11, 24)
def split_to_sequence(node, ctx) -> None:
    value = ctx.value(node, 0)
    attrs = attributes(node)
    channel_axis_of(node, ctx, value, int(attrs.get("axis", 0)))
    channels = ctx.channels_of(value.layer)
    split = ctx.optional_const(node, 1, "split sizes")
    if split is None:
        if not int(attrs.get("keepdims", 1)):
            raise ctx.refuse(node, "it removes the channel axis (keepdims=0); supported: parts that keep it")
        sizes = [1] * channels
    elif np.ndim(split) == 0:
        step = int(split)
        if step <= 0:
            raise ctx.refuse(node, f"parts of {step} channels")
        sizes = [min(step, channels - start) for start in range(0, channels, step)]
    else:
        sizes = [int(size) for size in np.asarray(split).reshape(-1)]
        if sum(sizes) != channels or min(sizes, default=0) <= 0:
            raise ctx.refuse(node, f"parts {sizes} of {channels} channels")
    maps, start = [], 0
    for index, size in enumerate(sizes):
        channel_slice(node, ctx, value, start, start + size, f"{node.output[0]}[{index}]")
        maps.append(ctx.values[f"{node.output[0]}[{index}]"])
        start += size
    ctx.set_value(node.output[0], Parts(tuple(maps)))


@converter("SequenceAt", 11)
def sequence_at(node, ctx) -> None:
    parts = ctx.value(node, 0)
    if not isinstance(parts, Parts):
        raise ctx.refuse(node, f"it reads {describe(parts)}; supported: a part of a map's channels (SplitToSequence)")
    index = int(np.asarray(ctx.require_const(node, 1, "position")).reshape(-1)[0])
    if not -len(parts.maps) <= index < len(parts.maps):
        raise ctx.refuse(node, f"position {index} of {len(parts.maps)} parts")
    ctx.set_value(node.output[0], parts.maps[index])


@converter("Slice", 10, 11, 13)
def slice_(node, ctx) -> None:
    value = ctx.value(node, 0)
    starts, ends = (np.asarray(ctx.require_const(node, index, what)).reshape(-1)
                    for index, what in ((1, "starts"), (2, "ends")))
    axes = ctx.optional_const(node, 3, "axes")
    steps = ctx.optional_const(node, 4, "steps")
    axes = [int(a) for a in (np.arange(len(starts)) if axes is None else np.asarray(axes).reshape(-1))]
    steps = [1] * len(starts) if steps is None else [int(step) for step in np.asarray(steps).reshape(-1)]
    # tf2onnx writes a strided_slice over every axis, the untouched ones from 0 to the end
    kept = [index for index, (start, end, step) in enumerate(zip(starts, ends, steps))
            if not (int(start) == 0 and int(end) >= 2 ** 31 - 1 and step == 1)] or [0]
    starts, ends, axes, steps = ([values[index] for index in kept] for values in (starts, ends, axes, steps))
    if len(starts) != 1 or steps[0] != 1:
        raise ctx.refuse(node, f"a slice of axes {axes} (starts {[int(v) for v in starts]}, ends "
                               f"{[int(v) for v in ends]}, steps {steps}); supported: a range of channels, step 1 "
                               "(a spatial crop, as Keras' Cropping2D, is not read)")
    image = of_image_channels(value, int(axes[0]))
    if not image:
        channel_axis_of(node, ctx, value, int(axes[0]))
    channels = ctx.channels_of(value.layer)
    start, end = int(starts[0]), int(ends[0])
    start, end = (start + channels if start < 0 else start), (end + channels if end < 0 else end)
    if image:
        start, end = max(0, min(start, channels)), max(0, min(end, channels))
        if end <= start:
            raise ctx.refuse(node, f"it takes no channels of the image ({start} to {end})")
        ctx.set_value(node.output[0], image_channels(node, range(start, end)))
        return
    channel_slice(node, ctx, value, start, end, node.output[0])
