"""Pools: max and average pools as layers (pads, ceil or floor mode, count_include_pad as stored; ONNX's
default for AveragePool is count_include_pad = 0), and the global average pool (GlobalAveragePool, a
ReduceMean over the spatial axes, or an AveragePool whose window is the whole map at the native size)."""

from __future__ import annotations

import numpy as np

from interactive_trt.exporter.networks.onnx_import.builder import Map, Pooled
from interactive_trt.exporter.networks.onnx_import.converters.conv import window
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter


@converter("MaxPool", 1, 8, 10, 11, 12, 22)
def max_pool(node, ctx) -> None:
    value = ctx.map_of(node)
    if len(node.output) > 1 and node.output[1] and (ctx.consumers.get(node.output[1]) or node.output[1] in ctx.outputs):
        raise ctx.refuse(node, "its Indices output is used; supported: max pooling alone")
    attrs = attributes(node)
    kernel, stride, pads = window(ctx, node, attrs)
    top, left, bottom, right = pads
    if (top, left) == (bottom, right) and (top > kernel[0] // 2 or left > kernel[1] // 2):
        raise ctx.refuse(node, f"pads {list(pads)} wider than half its {kernel[0]}x{kernel[1]} window")
    draft = ctx.windowed(node, "maxpool", value.layer, ctx.channels_of(value.layer), kernel, stride, pads,
                         ceil_mode=bool(attrs.get("ceil_mode", 0)))
    ctx.set_value(node.output[0], Map(draft.id, "NCHW", draft.version))


@converter("AveragePool", 7, 10, 11, 19, 22)
def average_pool(node, ctx) -> None:
    value = ctx.map_of(node)
    attrs = attributes(node)
    kernel, stride, pads = window(ctx, node, attrs)
    if not any(pads) and ctx.size_of(value.layer) == kernel:
        ctx.set_value(node.output[0], Pooled(value.layer, value.version, rank=4, linear=False))
        return
    top, left, bottom, right = pads
    if (top, left) != (bottom, right):
        raise ctx.refuse(node, f"asymmetric pads {list(pads)} on an average pool; supported: symmetric pads")
    if top > kernel[0] // 2 or left > kernel[1] // 2:
        raise ctx.refuse(node, f"pads {list(pads)} wider than half its {kernel[0]}x{kernel[1]} window")
    draft = ctx.windowed(node, "avgpool", value.layer, ctx.channels_of(value.layer), kernel, stride, pads,
                         ceil_mode=bool(attrs.get("ceil_mode", 0)),
                         count_include_pad=bool(attrs.get("count_include_pad", 0)))
    ctx.set_value(node.output[0], Map(draft.id, "NCHW", draft.version))


@converter("GlobalAveragePool", 1, 22)
def global_average_pool(node, ctx) -> None:
    value = ctx.map_of(node)
    ctx.set_value(node.output[0], Pooled(value.layer, value.version, rank=4, linear=False))


@converter("ReduceMean", 1, 11, 13, 18)
def reduce_mean(node, ctx) -> None:
    value = ctx.map_of(node, layouts=("NCHW", "NHWC"))
    attrs = attributes(node)
    axes = attrs.get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = ctx.require_const(node, 1, "axes")
    spatial = {2, 3} if value.layout == "NCHW" else {1, 2}
    if axes is None or {int(a) % 4 for a in np.asarray(axes).reshape(-1)} != spatial:
        raise ctx.refuse(node, f"a mean over axes {None if axes is None else list(np.asarray(axes).reshape(-1))} of "
                               f"an {value.layout} map; supported: the mean over its two spatial axes")
    rank = 4 if int(attrs.get("keepdims", 1)) else 2
    ctx.set_value(node.output[0], Pooled(value.layer, value.version, rank=rank, linear=False))
