"""A space-to-depth rearrangement read only by convolutions, folded into them.

TResNet's stem, YOLOv5's Focus and `pixel_unshuffle` move each b x b block of a map's positions into
channels before a convolution. That is no layer of the InterActive vocabulary (no weights, positions
moved across channels), but a convolution of the rearranged map is a convolution of the map itself: for
output channel c' = the map's channel c at offset (dy, dx) in each block, a k x k kernel with stride s and
pads p over the rearranged map is a bk x bk kernel with stride bs and pads bp over the map, with
w'[o, c, b ky + dy, b kx + dx] = w[o, c', ky, kx]. So the rearrangement and its convolutions become those
convolutions, exactly, and the network is read as any other.

The rearrangement is recognised by what it does, not by its ops: ONNX Runtime writes Focus's four strided
slices as SpaceToDepth and a Gather of the channels; torch.onnx writes `pixel_unshuffle` as a Reshape to six
axes, a Transpose and a Reshape back. The chain of such nodes is run on the map's element indices, and
accepted where every output channel is one channel of the map at one offset of every b x b block.
"""

from __future__ import annotations

import numpy as np

CHAIN = {"SpaceToDepth", "Gather", "Reshape", "Transpose"}


def run_chain(g, chain, value: np.ndarray) -> np.ndarray | None:
    """The chain's nodes on `value` (element indices of the map); None for a form it does not take."""
    from onnx import helper

    for node in chain:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "SpaceToDepth":
            b = int(attrs["blocksize"])
            n, c, h, w = value.shape
            value = value.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4).reshape(
                n, c * b * b, h // b, w // b)
        elif node.op_type == "Gather":
            indices = g.array(node.input[1])
            if indices is None or int(attrs.get("axis", 0)) != 1 or np.ndim(indices) != 1:
                return None
            value = np.take(value, np.asarray(indices, np.int64), axis=1)
        elif node.op_type == "Reshape":
            shape = g.array(node.input[1])
            if shape is None or attrs.get("allowzero", 0) and 0 in np.asarray(shape):
                return None
            shape = [value.shape[i] if size == 0 else int(size) for i, size in enumerate(np.asarray(shape))]
            value = value.reshape(shape)
        else:
            value = value.transpose(attrs.get("perm", list(range(value.ndim))[::-1]))
    return value


def block_offsets(x_shape, y: np.ndarray):
    """(b, [(c, dy, dx) per output channel]) where y (the chain's output on x's element indices) is a
    space-to-depth of x with block b, else None."""
    if y is None or y.ndim != 4 or y.shape[0] != x_shape[0]:
        return None
    _, channels, height, width = x_shape
    b = height // y.shape[2]
    if b < 2 or height != b * y.shape[2] or width != b * y.shape[3] or y.shape[1] != channels * b * b:
        return None
    n, c, h, w = np.unravel_index(y, x_shape)
    rows, columns = np.arange(y.shape[2])[:, None], np.arange(y.shape[3])[None, :]
    offsets = []
    for index in range(y.shape[1]):
        dy, dx = h[0, index, 0, 0] % b, w[0, index, 0, 0] % b
        if np.any(n != np.arange(y.shape[0])[:, None, None, None]) or np.any(c[:, index] != c[0, index, 0, 0]) or \
                np.any(h[:, index] != rows * b + dy) or np.any(w[:, index] != columns * b + dx):
            return None
        offsets.append((int(c[0, index, 0, 0]), int(dy), int(dx)))
    return b, offsets


def folded_weight(weight: np.ndarray, b: int, offsets, channels: int) -> np.ndarray:
    out, _, k_h, k_w = weight.shape
    folded = np.zeros((out, channels, b * k_h, b * k_w), weight.dtype)
    for index, (c, dy, dx) in enumerate(offsets):
        folded[:, c, dy::b, dx::b] += weight[:, index]
    return folded


def space_to_depth_into_convs(model, g) -> int:
    """Rewrites `model` in place (g: patterns.Graph over it, with shapes); returns how many chains were
    folded."""
    from onnx import helper, numpy_helper

    folded, dropped = 0, set()
    for start in list(model.graph.node):
        if start.op_type not in ("SpaceToDepth", "Reshape") or start.domain not in ("", "ai.onnx"):
            continue
        x, shape = start.input[0], g.shapes.get(start.input[0])
        if not shape or len(shape) != 4 or None in shape or (start.op_type == "Reshape" and
                                                             len(g.shapes.get(start.output[0]) or []) != 6):
            continue
        chain, name = [start], start.output[0]
        while True:
            readers = g.readers.get(name, [])
            if name in g.outputs or not readers:
                break
            if all(reader.op_type == "Conv" for reader in readers):
                break
            if len(readers) != 1 or readers[0].op_type not in CHAIN:
                chain = None
                break
            chain.append(readers[0])
            name = readers[0].output[0]
        convs = g.readers.get(name, []) if chain else []
        if not convs or any(id(node) in dropped for node in chain) or not all(convertible(g, conv) for conv in convs):
            continue
        indices = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
        try:
            found = block_offsets(shape, run_chain(g, chain, indices))
        except (ValueError, KeyError, IndexError):
            found = None
        if found is None:
            continue
        b, offsets = found
        for conv in convs:
            attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
            weight = folded_weight(g.array(conv.input[1]), b, offsets, shape[1])
            weight_name = f"{conv.name or conv.output[0]}::space_to_depth_weight"
            model.graph.initializer.append(numpy_helper.from_array(weight.astype(np.float32), weight_name))
            pads = [int(p) * b for p in attrs.get("pads", [0, 0, 0, 0])]
            strides = [int(s) * b for s in attrs.get("strides", [1, 1])]
            conv.input[0], conv.input[1] = x, weight_name
            del conv.attribute[:]
            conv.attribute.extend([helper.make_attribute("kernel_shape", list(weight.shape[2:])),
                                   helper.make_attribute("strides", strides), helper.make_attribute("pads", pads),
                                   helper.make_attribute("dilations", [1, 1]), helper.make_attribute("group", 1)])
        dropped.update(id(node) for node in chain)
        folded += 1
    if dropped:
        kept = [node for node in model.graph.node if id(node) not in dropped]
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return folded


def convertible(g, conv) -> bool:
    """A plain 2-D convolution with a constant weight: group 1, no dilation, explicit pads."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    weight = g.array(conv.input[1]) if len(conv.input) > 1 else None
    return weight is not None and np.ndim(weight) == 4 and int(attrs.get("group", 1)) == 1 and \
        all(int(d) == 1 for d in attrs.get("dilations", [1, 1])) and \
        attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
