"""Fully connected layers (Gemm, MatMul) as convs, and the final Softmax (INTERACTIVE.md, "Any CNN").

After a global average pool a fully connected layer is the same linear map applied at every position
before the pool (the pool commutes with it): a 1x1 conv over the last map, whose spatial mean is the class
score. After a flatten of a k x k map it is a k x k conv, its weight rows read in the flatten's order (NCHW:
channel, row, column; NHWC: row, column, channel). After another fully connected layer it is a 1x1 conv.
"""

from __future__ import annotations

import numpy as np

from interactive_trt.exporter.networks.onnx_import.builder import (
    Dense, Flat, Map, Pooled, Probabilities, Rows, describe,
)
from interactive_trt.exporter.networks.onnx_import.converters.registry import attributes, converter


def fully_connected(node, ctx, weight: np.ndarray, bias: np.ndarray) -> None:
    """weight: out x in, applied to the rank-2 value at input 0."""
    value = ctx.value(node, 0)
    out_features, in_features = weight.shape
    if isinstance(value, Pooled) and not value.linear and ctx.feeds_gates_only(node.output[0]):
        gate_layer(node, ctx, ctx.gap_of(node, value), weight, bias)  # SENet's fc on the squeezed map
        return
    if isinstance(value, (Flat, Dense)) and ctx.is_pooled(value.layer):
        gate_layer(node, ctx, value, weight, bias)  # a later layer of the gate's branch (or CBAM's max pool's)
        return
    if isinstance(value, Flat):
        channels = ctx.channels_of(value.layer)
        height, width = ctx.size_of(value.layer)
        if in_features != channels * height * width:
            raise ctx.refuse(node, f"{in_features} inputs, the flattened {channels}x{height}x{width} map has "
                                   f"{channels * height * width}")
        if height != width:
            raise ctx.refuse(node, f"it reads a flattened {height}x{width} map; supported: square maps (a k x k conv)")
        if value.layout == "NCHW":
            kernel = weight.reshape(out_features, channels, height, width)
        else:
            kernel = weight.reshape(out_features, height, width, channels).transpose(0, 3, 1, 2)
        size = height
    elif isinstance(value, (Dense, Pooled)):
        channels = ctx.channels_of(value.layer)
        if isinstance(value, Pooled):
            ctx.after_pool(node, value)
            ctx.head_pooled = ctx.head_pooled or value.linear  # a second layer of the head
        if in_features != channels:
            raise ctx.refuse(node, f"{in_features} inputs, the layer before has {channels} channels")
        kernel, size = weight.reshape(out_features, channels, 1, 1), 1
    else:
        raise ctx.refuse(node, f"it reads {describe(value)}; supported: a fully connected layer on a flattened map, "
                               "a globally pooled vector or another fully connected layer")
    draft = ctx.windowed(node, "conv", value.layer, out_features, size, 1, (0, 0, 0, 0), in_channels=channels,
                         weight=np.ascontiguousarray(kernel, np.float64), bias=np.asarray(bias, np.float64),
                         weight_key=node.input[1], dense=True)
    if isinstance(value, Pooled):
        ctx.set_value(node.output[0], Pooled(draft.id, draft.version, rank=2, linear=True))
    else:
        ctx.set_value(node.output[0], Dense(draft.id, draft.version))


def gate_layer(node, ctx, value, weight: np.ndarray, bias: np.ndarray) -> None:
    """A fully connected layer in a gate's branch (the branch computes on a global pool alone: 1 x 1 at every
    size) is the 1x1 conv a squeeze-and-excitation block written with convs has: the same layer table, the
    same gate. Its value stays a vector (Dense) until a Reshape or Unsqueeze makes it N x C x 1 x 1 again."""
    out_features, in_features = weight.shape
    channels = ctx.channels_of(value.layer)
    if in_features != channels:
        raise ctx.refuse(node, f"{in_features} inputs, the gate's branch has {channels} channels here")
    draft = ctx.windowed(node, "conv", value.layer, out_features, 1, 1, (0, 0, 0, 0), in_channels=channels,
                         weight=np.ascontiguousarray(weight.reshape(out_features, channels, 1, 1), np.float64),
                         bias=np.asarray(bias, np.float64), weight_key=node.input[1])
    ctx.set_value(node.output[0], Dense(draft.id, draft.version))


@converter("Gemm", 7, 9, 11, 13)
def gemm(node, ctx) -> None:
    attrs = attributes(node)
    if int(attrs.get("transA", 0)):
        raise ctx.refuse(node, "transA = 1; supported: Gemm(x, W) with the batch on the rows of x")
    matrix = np.asarray(ctx.require_const(node, 1, "weight"), np.float64)
    if matrix.ndim != 2:
        raise ctx.refuse(node, f"weight of shape {list(matrix.shape)}; supported: a matrix")
    weight = (matrix if int(attrs.get("transB", 0)) else matrix.T) * float(attrs.get("alpha", 1.0))
    bias = np.zeros(weight.shape[0])
    c = ctx.optional_const(node, 2, "bias")
    if c is not None:
        c = np.asarray(c, np.float64)
        if c.size not in (1, weight.shape[0]) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
            raise ctx.refuse(node, f"bias of shape {list(c.shape)}; supported: one number per output")
        bias = np.broadcast_to(c.reshape(-1), (weight.shape[0],)) * float(attrs.get("beta", 1.0))
    value = ctx.value(node, 0)
    if isinstance(value, Rows):
        pointwise(node, ctx, value, weight.T, bias)
        return
    fully_connected(node, ctx, weight, bias)


@converter("MatMul", 1, 9, 13)
def matmul(node, ctx) -> None:
    matrix = ctx.const(node.input[1])
    if matrix is None:
        raise ctx.refuse(node, f"its second input {node.input[1]!r} is computed in the graph; supported: x times a "
                               "constant weight matrix (a fully connected layer)")
    matrix = np.asarray(matrix, np.float64)
    if matrix.ndim != 2:
        raise ctx.refuse(node, f"weight of shape {list(matrix.shape)}; supported: a matrix")
    value = ctx.value(node, 0)
    if isinstance(value, (Map, Rows)):
        pointwise(node, ctx, value, matrix, np.zeros(matrix.shape[1]))
        return
    fully_connected(node, ctx, matrix.T, np.zeros(matrix.shape[1]))


def pointwise(node, ctx, value, matrix: np.ndarray, bias: np.ndarray) -> None:
    """A Linear layer (in x out `matrix`) applied at every position of a channels-last map (ConvNeXt's MLP):
    a 1x1 conv. The map comes as it is or as rows (Rows)."""
    channels = ctx.channels_of(value.layer)
    if isinstance(value, Map) and value.layout != "NHWC" or matrix.shape[0] != channels:
        layout = getattr(value, "layout", "NHWC")
        raise ctx.refuse(node, f"a product of an {layout} map of {channels} channels with a "
                               f"{matrix.shape[0]}x{matrix.shape[1]} matrix; supported: a Linear layer over the "
                               "channels of a channels-last map")
    draft = ctx.windowed(node, "conv", value.layer, matrix.shape[1], 1, 1, (0, 0, 0, 0), in_channels=channels,
                         weight=np.ascontiguousarray(matrix.T[:, :, None, None]), bias=np.asarray(bias, np.float64),
                         weight_key=node.input[1])
    ctx.set_value(node.output[0], Map(draft.id, "NHWC", draft.version) if isinstance(value, Map)
                  else Rows(draft.id, draft.version))


@converter("Softmax", 1, 11, 13)
def softmax(node, ctx) -> None:
    value = ctx.value(node, 0)
    axis = int(attributes(node).get("axis", 1 if ctx.opset < 13 else -1))
    rank = value.rank if isinstance(value, Pooled) else 2
    if not isinstance(value, (Dense, Pooled)) or axis % rank != 1:
        raise ctx.refuse(node, f"a softmax over axis {axis} of {describe(value)}; supported: a final softmax over "
                               "the class scores")
    ctx.softmax_input = node.input[0]
    ctx.set_value(node.output[0], Probabilities(value))
