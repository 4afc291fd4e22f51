"""ConvNeXt V2's Global Response Normalization, written out in any form, recognised by what it computes.

GRN is x + bias + weight * x * n / (mean_c(n) + eps), n each channel's L2 norm over the positions: a gate
computed from the map, plus the map. No exporter has an op for it; torch.onnx writes ReduceL2, ReduceMean,
Add, Div, Mul and the affine in the order the model's code has them (timm's addcmul, the authors' and
Hugging Face's sums), and other code writes the norm as Sqrt(ReduceSum(x * x)). Read node by node, the
Div of two computed tensors would be refused. As for written-out LayerNorms (written_norms.py), the nodes
that compute from x alone with this arithmetic are taken as one region, and accepted where they compute
GRN(x) along the channel axis the ReduceMean reduces: in float64 on probes, with the weight and bias fitted
per channel and the residual at rounding level.
"""

from __future__ import annotations

import numpy as np

from interactive_trt.exporter.networks.onnx_import.patterns import reduced_axes
from interactive_trt.exporter.networks.onnx_import.written_norms import (
    affine_fit, closed_region, evaluate, layouts, region_from,
)

# with the Transposes ONNX Runtime's optimiser moves into a GRN written on a channels-last view of an NCHW map
OPS = {"ReduceL2", "ReduceSum", "ReduceSumSquare", "ReduceMean", "Add", "Mul", "Div", "Pow", "Sqrt", "Reciprocal",
       "Transpose"}


def squared_input(g, node) -> str | None:
    """x, where `node` starts a norm of x: ReduceL2(x), ReduceSumSquare(x), or x * x or x ** 2 read by a
    ReduceSum."""
    if node.op_type in ("ReduceL2", "ReduceSumSquare"):
        return node.input[0]
    if node.op_type == "Mul" and len(node.input) == 2 and node.input[0] == node.input[1] or \
            node.op_type == "Pow" and g.scalar(node.input[1]) == 2.0:
        readers = g.readers.get(node.output[0], [])
        return node.input[0] if len(readers) == 1 and readers[0].op_type == "ReduceSum" else None
    return None


def grn_of(x: np.ndarray, channel: int, spatial: tuple[int, int], epsilon: float) -> np.ndarray:
    """x * n / (mean_c(n) + eps): the gated map before its weight."""
    norms = np.sqrt((x * x).sum(axis=spatial, keepdims=True))
    return x * norms / (norms.mean(axis=channel, keepdims=True) + epsilon)


def probes(shape: list[int], channel: int, seed: int = 0) -> list[np.ndarray]:
    """Noise; noise scaled per channel over four decades (the channels' mean norm must be the divisor); and
    noise with one channel all zeros (a norm of zero)."""
    rng = np.random.default_rng(seed)
    reduced = [1] * len(shape)
    reduced[channel] = shape[channel]
    scaled = rng.standard_normal(shape) * np.exp(rng.uniform(np.log(1e-2), np.log(1e2), reduced))
    silent = rng.standard_normal(shape)
    np.moveaxis(silent, channel, 0)[0] = 0.0
    return [rng.standard_normal(shape), scaled, silent]


def fitted(outputs, inputs, channel: int, spatial: tuple[int, int], epsilon: float):
    """The per-channel weight and bias that make the region x + bias + weight * grn_of(x), or None."""
    return affine_fit([grn_of(x, channel, spatial, epsilon) for x in inputs],
                      [y - x for x, y in zip(inputs, outputs)], channel, reference=outputs)


def response_norm_by_value(g, start):
    """A written-out GRN whose norm starts at `start` (squared_input): (members, "grn", options) as
    patterns.py's matchers return, or None."""
    x = squared_input(g, start)
    shape = g.shapes.get(x or "")
    if x is None or not shape or None in shape[1:] or len(shape) != 4:
        return None
    region = region_from(g, x, OPS)[:22]  # GRN's own nodes come first; what follows may compute from x too
    order = layouts(region, x, 4)
    if len(region) < 5 or region[0] is not start or order is None:
        return None

    def axes_of_x(node):  # the axes a reduction takes, as axes of x
        axes = reduced_axes(g, node)
        return None if axes is None else {order[node.input[0]][axis % 4] for axis in axes}

    norm = start if start.op_type in ("ReduceL2", "ReduceSumSquare") else g.readers[start.output[0]][0]
    spatial = axes_of_x(norm)
    if spatial is None or len(spatial) != 2 or 0 in spatial:
        return None
    # the mean over the channels: the first ReduceMean over the third axis (a gate on GRN's output may follow)
    means = [node for node in region if node.op_type == "ReduceMean" and axes_of_x(node) == {1, 2, 3} - spatial]
    if not means:
        return None
    channel, spatial = min({1, 2, 3} - spatial), tuple(sorted(spatial))
    shape = [2 if index == 0 else size if index == channel else min(size, 4) for index, size in enumerate(shape)]
    inputs = probes(shape, channel)
    epsilons = sorted({value for node in region if node.op_type == "Add"
                       for name in node.input if (value := g.scalar(name)) is not None and 0 < value < 0.1})
    views = {x}  # x and its Transposes: GRN ends adding the map back, in the layout it ends in
    for node in region:
        if node.op_type == "Transpose" and node.input[0] in views:
            views.add(node.output[0])
    for last in reversed(region):
        if last.op_type != "Add" or not views & set(last.input):
            continue
        members = closed_region(g, region, last.output[0])
        if members is None or members[0] is not start or means[0] not in members:
            continue
        perm = order[last.output[0]]
        try:
            with np.errstate(all="ignore"):
                outputs = [evaluate(g, members, x, value).get(last.output[0]) for value in inputs]
        except ValueError:  # a constant that does not broadcast per channel
            continue
        outputs = [None if output is None or output.ndim != 4 else np.transpose(output, np.argsort(perm))
                   for output in outputs]  # back in x's order
        if any(output is None or output.shape != value.shape for output, value in zip(outputs, inputs)):
            continue
        for epsilon in epsilons or [0.0]:
            found = fitted(outputs, inputs, channel, spatial, epsilon)
            if found is not None:
                weight, bias = found
                return members, "grn", {"x": x, "axis": channel - 4, "epsilon": epsilon, "scale": weight,
                                        "bias": bias, "perm": None if perm == sorted(perm) else perm}
    return None
