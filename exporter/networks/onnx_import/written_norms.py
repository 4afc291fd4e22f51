"""LayerNorms written out in any algebraic form, recognised by what they compute.

The forms are many and each exporter has its own: (x - m) / sqrt(v + eps) (torch.onnx, patterns.py), the
same with Reciprocal and Mul, TensorFlow's moments through tf.nn.batch_normalization (x * inv + (beta -
m * inv), inv = rsqrt(v + eps) * gamma) as tf2onnx writes Keras 2, and Keras 3's variance E[x^2] - E[x]^2
with a Neg. Matching each spelling node by node would never end; instead the nodes that compute from x
alone with the arithmetic of a norm are taken as one region, and the region is accepted when it computes
LayerNorm(x) * scale + bias along the one axis its first ReduceMean reduces: evaluated in float64 on
inputs built to tell a norm from anything else (rows of small variance against eps, large offsets), the
scale and bias fitted per channel, the residual at rounding level. Anything else stays as it was, and the
converters refuse its nodes by name as before.
"""

from __future__ import annotations

import numpy as np

from interactive_trt.exporter.networks.onnx_import.patterns import reduced_axes

# the arithmetic a written-out norm uses; any other op ends the region (a Reshape joins it only where it
# keeps its input's shape: tf2onnx writes a Transpose that moves a size-1 axis as a Reshape to the fixed
# shape, as in Keras ConvNeXt's LayerNorms)
OPS = {"ReduceMean", "Sub", "Add", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Transpose", "Reshape"}
REDUCTIONS = {"ReduceMean": lambda x, axes: x.mean(axis=axes, keepdims=True),
              "ReduceSum": lambda x, axes: x.sum(axis=axes, keepdims=True),
              "ReduceSumSquare": lambda x, axes: (x * x).sum(axis=axes, keepdims=True),
              "ReduceL2": lambda x, axes: np.sqrt((x * x).sum(axis=axes, keepdims=True))}
TOLERANCE = 1e-9  # float64 residual, relative to the output's scale: a norm or not, never in between


def region_from(g, x: str, ops=OPS):
    """The nodes that compute from x and constants alone, with the arithmetic `ops`, in the graph's order
    (topological), as far as they go."""
    known, region = {x}, []
    for node in g.graph.node:
        if node.op_type not in ops or node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Reshape" and not keeps_shape(g, node):
            continue
        inputs = [name for name in node.input if name]
        if any(name in known for name in inputs) and all(name in known or g.array(name) is not None
                                                          for name in inputs):
            region.append(node)
            known.update(node.output)
    return region


def keeps_shape(g, node) -> bool:
    """A Reshape whose output has its input's shape (the batch dynamic or not, the rest known)."""
    before, after = g.shapes.get(node.input[0]), g.shapes.get(node.output[0])
    return before is not None and before == after and None not in before[1:]


def closed_region(g, region, exit_name: str):
    """The part of `region` that `exit_name` depends on, when nothing outside it reads any tensor inside it
    but `exit_name`; else None."""
    made = {output: node for node in region for output in node.output}
    needed, stack = set(), [exit_name]
    while stack:
        node = made.get(stack.pop())
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(node.input)
    members = [node for node in region if id(node) in needed]
    inside = {id(node) for node in members}
    for node in members:
        for output in node.output:
            if output == exit_name:
                continue
            if output in g.outputs or any(id(reader) not in inside for reader in g.readers.get(output, [])):
                return None
    return members


def permutation(node) -> list[int]:
    from onnx import helper

    return [int(axis) for axis in helper.get_attribute_value(node.attribute[0])]


def layouts(members, x: str, rank: int) -> dict | None:
    """Each tensor's axes as axes of x (ONNX Runtime's optimiser moves Transposes into a written-out norm):
    a Transpose permutes them, any other op keeps them and must not mix two orders; None where one does."""
    order = {x: list(range(rank))}
    for node in members:
        if node.op_type == "Transpose":
            source = order[node.input[0]]
            order[node.output[0]] = [source[axis] for axis in permutation(node)]
            continue
        if node.op_type == "Reshape":
            order[node.output[0]] = order[node.input[0]]
            continue
        seen = [order[name] for name in node.input if name in order]
        if any(axes != seen[0] for axes in seen):
            return None
        order[node.output[0]] = seen[0]
    return order


def evaluate(g, members, x: str, value: np.ndarray) -> dict:
    tensors = {x: value}

    def read(name):
        if name in tensors:
            return tensors[name]
        return np.asarray(g.array(name), np.float64)

    for node in members:
        args = [read(name) for name in node.input if name]
        op = node.op_type
        if op in REDUCTIONS:
            axes = reduced_axes(g, node)
            if axes is None:
                raise ValueError(f"{op} over unknown axes")
            tensors[node.output[0]] = REDUCTIONS[op](args[0], tuple(axes))
            continue
        if op == "Transpose":
            tensors[node.output[0]] = np.transpose(args[0], permutation(node))
            continue
        if op == "Reshape":  # one that keeps the shape (keeps_shape), as the probes' smaller one
            tensors[node.output[0]] = args[0]
            continue
        result = {"Sub": lambda: args[0] - args[1], "Add": lambda: args[0] + args[1],
                  "Mul": lambda: args[0] * args[1], "Div": lambda: args[0] / args[1],
                  "Pow": lambda: np.power(args[0], args[1]), "Sqrt": lambda: np.sqrt(args[0]),
                  "Reciprocal": lambda: 1.0 / args[0], "Neg": lambda: -args[0]}[op]()
        tensors[node.output[0]] = result
    return tensors


def probes(shape: list[int], axis: int, seed: int = 0) -> list[np.ndarray]:
    """Inputs that tell a norm from a look-alike: plain noise; rows with large offsets and scales (the mean
    must be subtracted, the deviation divided out); rows whose variance is near or under eps."""
    rng = np.random.default_rng(seed)
    plain = rng.standard_normal(shape)
    reduced = list(shape)
    reduced[axis] = 1
    offsets = rng.uniform(-5, 5, reduced)  # large enough to see, small enough for E[x^2] - E[x]^2 in float64
    scales = np.exp(rng.uniform(np.log(1e-2), np.log(30), reduced))
    return [plain, plain * scales + offsets, rng.standard_normal(shape) * 1e-3]


def layer_norm_of(x: np.ndarray, axis: int, epsilon: float) -> np.ndarray:
    centred = x - x.mean(axis=axis, keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(axis=axis, keepdims=True) + epsilon)


def fitted(outputs: list[np.ndarray], inputs: list[np.ndarray], axis: int, epsilon: float):
    """The per-channel scale and bias that make the region LayerNorm(x) * scale + bias, or None."""
    return affine_fit([layer_norm_of(value, axis, epsilon) for value in inputs], outputs, axis)


def affine_fit(known: list[np.ndarray], found: list[np.ndarray], axis: int, reference=None):
    """The per-channel scale and bias (least squares over every position of every probe) that make `found`
    known * scale + bias along `axis`, float32, or None where the residual is over TOLERANCE of
    `reference`'s norm (`found`'s by default)."""
    channels = known[0].shape[axis]

    def rows(arrays):
        return np.concatenate([np.moveaxis(a, axis, -1).reshape(-1, channels) for a in arrays])

    n, f = rows(known), rows(found)
    if not np.all(np.isfinite(f)):
        return None
    n_mean, f_mean = n.mean(axis=0), f.mean(axis=0)
    spread = ((n - n_mean) ** 2).sum(axis=0)
    if np.any(spread <= 0):
        return None
    scale = ((n - n_mean) * (f - f_mean)).sum(axis=0) / spread
    bias = f_mean - scale * n_mean
    residual = np.linalg.norm(f - (n * scale + bias))
    if residual > TOLERANCE * max(np.linalg.norm(rows(reference) if reference is not None else f), 1.0):
        return None
    return scale.astype(np.float32), bias.astype(np.float32)


def layer_norm_by_value(g, mean):
    """A written-out LayerNorm starting at the ReduceMean `mean`, in whatever form (see the docstring above):
    (members, "layernorm", options) as patterns.py's matchers return, or None."""
    axes = reduced_axes(g, mean)
    x = mean.input[0]
    shape = g.shapes.get(x)
    if axes is None or len(axes) != 1 or not shape or None in shape or len(shape) < 2:
        return None
    axis = axes[0] % len(shape)
    region = region_from(g, x)
    if len(region) < 5 or len(region) > 40:
        return None
    # a few positions are enough to fit and check a per-channel affine map (its constants are per channel;
    # one that is not fails to broadcast and is no norm), and keep the float64 probes small on large maps
    shape = [size if index == axis else min(size, 4) for index, size in enumerate(shape)]
    rows = int(np.prod(shape)) // shape[axis]
    shape[0] = shape[0] if rows >= 16 or axis == 0 else 16
    inputs = probes(shape, axis)
    epsilons = sorted({value for node in region if node.op_type == "Add"
                       for name in node.input if (value := g.scalar(name)) is not None and 0 < value < 0.1})
    for last in reversed(region):
        exit_name = last.output[0]
        members = closed_region(g, region, exit_name)
        if members is None or mean not in members or not any(node.op_type in ("Sqrt", "Pow", "Reciprocal", "Div")
                                                              for node in members):
            continue
        order = layouts(members, x, len(shape))
        if order is None:
            continue
        perm = order[exit_name]
        try:
            with np.errstate(all="ignore"):
                outputs = [evaluate(g, members, x, value).get(exit_name) for value in inputs]
        except ValueError:  # a constant that does not broadcast per channel
            continue
        outputs = [None if output is None or output.ndim != len(shape) else np.transpose(output, np.argsort(perm))
                   for output in outputs]  # back in x's order
        if any(output is None or output.shape != value.shape for output, value in zip(outputs, inputs)):
            continue
        for epsilon in epsilons or [0.0]:
            found = fitted(outputs, inputs, axis, epsilon)
            if found is not None:
                scale, bias = found
                members = [mean, *(node for node in members if node is not mean)]  # x is the first's input
                return members, "layernorm", {"axis": axis - len(shape), "epsilon": epsilon, "scale": scale,
                                              "bias": bias,
                                              "perm": None if perm == sorted(perm) else perm}
    return None
