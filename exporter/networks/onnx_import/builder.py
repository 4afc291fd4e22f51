"""What the converters build on: the values ONNX tensors hold, and the layer table being drawn up.

Every ONNX tensor the converters meet holds one of a few kinds of value, in terms of our layers:
`Map` (a layer's N x C x H x W output, laid out NCHW or NHWC in the file), `Padded` (a map padded with
zeros, waiting for the Conv that absorbs the pads), `Flat` (a map flattened to N x CHW in its layout's
order), `Dense` (a fully connected layer over a flattened map: a conv whose output is 1 x 1 at the native
size), `Pooled` (the spatial mean of a map: a global average pool, possibly followed by the one fully
connected layer that commutes with it, INTERACTIVE.md "Any CNN") and `Probabilities` (a final softmax of
class scores). Constants are read from the canonical graph's initializers.

A layer's weights, bias and activation are changed while later nodes fold into it (BatchNorm, a bias
Add, ReLU); each change bumps the layer's version, and a value of an older version may not be read again:
its tensor no longer exists in our network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from interactive_trt.common.errors import OnnxImportError
from interactive_trt.contracts.spec import GLOBAL_POOLS, INPUT, dilated_extent


@dataclass(frozen=True)
class Map:
    layer: str
    layout: str
    version: int


@dataclass(frozen=True)
class Padded:
    layer: str
    layout: str
    version: int
    pads: tuple[int, int, int, int]  # top, left, bottom, right


@dataclass(frozen=True)
class Flat:
    layer: str
    layout: str
    version: int


@dataclass(frozen=True)
class Dense:
    layer: str
    version: int


@dataclass(frozen=True)
class Pooled:
    layer: str
    version: int
    rank: int  # 4 (N x C x 1 x 1), 2 (N x C) or 1 (the batch's N * C values in one axis: a Reshape to [-1])
    linear: bool  # a fully connected layer already moved before the pool


@dataclass(frozen=True)
class Rows:
    """A channels-last map with its positions as the rows of a matrix (N H W x C), as ONNX Runtime's
    MatMul + Add fusion reshapes a pointwise Linear layer around its Gemm."""

    layer: str
    version: int


@dataclass(frozen=True)
class GateVector:
    """A gate branch's 1 x 1 map with axes taken away or put back one at a time (SENet's and CBAM's Linear
    gates view it as N x C, then unsqueeze it to N x C x 1 x 1 in two steps); `axes` names each axis "N",
    "C" or "1". Rank 2 is a Dense value, rank 4 a Map again."""

    layer: str
    version: int
    axes: tuple


@dataclass(frozen=True)
class Unchanneled:
    """A one-channel map (a mean or maximum over the channels) with its channel axis dropped, N x H x W, as
    `torch.max(x, 1)[0]` writes it; an Unsqueeze of that axis makes it a map again (CBAM's spatial gate)."""

    layer: str
    version: int
    layout: str


@dataclass(frozen=True)
class ImageChannels:
    """Channels of the input image taken apart (x[:, i], a slice or a split), with a per-channel affine on
    the way, as torchvision's Inception v3 and GoogLeNet write transform_input: put back together in order
    by a Concat, they are the image with that affine, which goes into the recorded preprocessing."""

    source: str  # the image tensor
    channels: tuple  # which of its channels, in order
    scale: tuple
    shift: tuple
    takers: tuple  # the outputs of the nodes that took them from the image
    dropped: bool = False  # the channel axis removed (a Gather of one index)


@dataclass(frozen=True)
class Positions:
    """An NCHW map with its positions in one axis, N x C x HW, as `x.flatten(2)` writes it on the way to a
    mean over them (a global average pool)."""

    layer: str
    version: int


@dataclass(frozen=True)
class Grouped:
    """A map's channels viewed as groups x (C / groups), N x g x C/g x H x W, on the way to ShuffleNet's
    channel shuffle (Reshape, Transpose of the two group axes, Reshape back)."""

    layer: str
    version: int
    groups: int
    transposed: bool = False


@dataclass(frozen=True)
class Parts:
    """A map's channels split into a sequence (SplitToSequence, as torch.onnx's dynamo exporter writes chunk
    without its optimiser); SequenceAt takes one part."""

    maps: tuple


@dataclass(frozen=True)
class Probabilities:
    scores: object  # Dense or Pooled


@dataclass
class Draft:
    """A layer while it is drawn up; becomes a spec Layer (and weights) at the end."""

    id: str
    op: str
    inputs: tuple[str, ...]
    channels: int
    size: tuple[int, int]  # output height and width at the native size
    total_stride: tuple[int, int]  # (height, width): the product of the strides from the image
    kernel: int = 1
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    activation: str = ""
    ceil_mode: bool = False
    count_include_pad: bool = True
    weight: np.ndarray | None = None  # float64 while folding
    bias: np.ndarray | None = None
    weight_key: str = ""
    in_channels: int = 0
    source: str = ""
    version: int = 0
    dense: bool = False  # a fully connected layer (its output tensor is N x D)
    alpha: float = 0.0  # an activation's parameters as ONNX stores them (HardSigmoid, LeakyRelu, Elu)
    beta: float = 0.0
    eps: float = 1e-5  # a LayerNormalization's epsilon
    offset: int = 0  # a slice's first channel
    kernel_w: int = 0  # a non-square window's width (0: square)
    pad_mode: str = "constant"  # a pad layer's: zeros, or "reflect"
    channel_window: int = 0  # an lrn layer's window across the channels
    dilation: int = 1  # a conv's (square)


def node_label(node) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


@dataclass
class GraphContext:
    """The canonical graph, the value of every tensor met so far, and the layers drawn up."""

    model: object
    path: str
    opset: int
    batch: int
    native_size: tuple[int, int]
    values: dict = field(default_factory=dict)
    drafts: dict = field(default_factory=dict)
    order: list = field(default_factory=list)
    input_scale: np.ndarray | None = None  # a per-channel affine on the image inside the file (x * a + b)
    input_shift: np.ndarray | None = None
    softmax_input: str = ""  # the class scores, where the file ends in a softmax
    gaps: dict = field(default_factory=dict)  # (layer, version) -> the gap layer made for it
    head_map: str = ""  # the map the file pools before its head (T)
    head_pooled: bool = False  # the head after the pool is more than one linear layer (spec.head_pooled)

    def __post_init__(self):
        graph = self.model.graph
        self.constants = {tensor.name: tensor for tensor in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.constants[node.output[0]] = node
        self.consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = {output.name for output in graph.output}
        self.shapes = {}
        for info in [*graph.value_info, *graph.output, *graph.input]:
            dims = info.type.tensor_type.shape.dim
            if info.type.tensor_type.HasField("shape"):
                self.shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)

    # ------------------------------------------------------------------ refusals
    def refuse(self, node, reason: str) -> OnnxImportError:
        return OnnxImportError(f"{self.path}: {node_label(node)}: {reason}")

    # ------------------------------------------------------------------ constants
    def const(self, name: str) -> np.ndarray | None:
        from onnx import helper, numpy_helper

        if not name or name not in self.constants:
            return None
        item = self.constants[name]
        if hasattr(item, "op_type"):  # a Constant node
            attribute = item.attribute[0]
            value = helper.get_attribute_value(attribute)
            return numpy_helper.to_array(value) if hasattr(value, "dims") else np.asarray(value)
        return numpy_helper.to_array(item)

    def require_const(self, node, index: int, what: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        value = self.const(name)
        if value is None:
            raise self.refuse(node, f"its {what} {name!r} is computed in the graph, not a constant; supported: "
                                    "weights stored in the file (initializers)")
        return value

    def optional_const(self, node, index: int, what: str) -> np.ndarray | None:
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.require_const(node, index, what)

    # ------------------------------------------------------------------ values
    def value(self, node, index: int = 0, softmax: bool = False, raveled: bool = False):
        """The value of input `index`; a softmax only where `softmax` (ops that pass it on unchanged), a
        pooled vector raveled over the batch only where `raveled` (the Gather that restores its shape)."""
        name = node.input[index]
        if name not in self.values:
            if self.const(name) is not None:
                raise self.refuse(node, f"input {name!r} is a constant where a feature map is expected")
            raise self.refuse(node, f"input {name!r} is not produced by any node this importer understood")
        value = self.values[name]
        layer = getattr(value, "layer", None) or getattr(getattr(value, "scores", None), "layer", None)
        version = getattr(value, "version", None) if not isinstance(value, Probabilities) else value.scores.version
        if layer and layer != INPUT and version != self.drafts[layer].version:
            raise self.refuse(node, f"it reads {name!r}, a value that a later node changed in place (an activation "
                                    "or a folded BatchNorm/bias): only the final value of a layer can be read")
        if isinstance(value, Probabilities) and not softmax:
            raise self.refuse(node, "it reads the softmax; supported: a softmax as the graph's last node only")
        if isinstance(value, Unchanneled) and node.op_type != "Unsqueeze":
            raise self.refuse(node, f"it reads {name!r}, a map reduced over its channels with the axis dropped; "
                                    "supported: an Unsqueeze that puts the axis back (torch.max(x, 1)[0].unsqueeze(1))")
        if isinstance(value, Pooled) and value.rank == 1 and not raveled:
            raise self.refuse(node, "it reads a pooled vector raveled over the batch (a Reshape to [-1]); supported: "
                                    "a Gather of every index in order that restores N x C (torch.onnx's as_strided)")
        return value

    def sole_reader(self, node, name: str) -> bool:
        """True when `node` is the only reader of tensor `name` and it is no graph output."""
        readers = self.consumers.get(name, [])
        return name not in self.outputs and len(readers) == 1 and readers[0] is node

    def set_value(self, name: str, value) -> None:
        self.values[name] = value

    def map_of(self, node, index: int = 0, layouts=("NCHW",), padded: bool = False):
        value = self.value(node, index)
        if isinstance(value, Padded) and not padded:
            raise self.refuse(node, "it reads a zero-padded map (a Pad node); supported: a Pad read by a Conv")
        if not isinstance(value, (Map, Padded)):
            raise self.refuse(node, f"it reads {describe(value)} where a feature map is expected")
        if value.layout not in layouts:
            raise self.refuse(node, f"it reads a map laid out {value.layout}; supported here: {', '.join(layouts)}")
        return value

    # ------------------------------------------------------------------ layers
    def size_of(self, layer: str) -> tuple[int, int]:
        return self.native_size if layer == INPUT else self.drafts[layer].size

    def channels_of(self, layer: str) -> int:
        return 3 if layer == INPUT else self.drafts[layer].channels

    def total_stride_of(self, *layers: str) -> tuple[int, int]:
        """(height, width); of several layers (the inputs of a sum or a product), the larger on each axis."""
        strides = [(1, 1) if layer == INPUT else self.drafts[layer].total_stride for layer in layers]
        return (max(s[0] for s in strides), max(s[1] for s in strides))

    def add(self, draft: Draft) -> Draft:
        self.drafts[draft.id] = draft
        self.order.append(draft.id)
        return draft

    def new_id(self) -> str:
        return f"L{len(self.order)}"

    def padded(self, value, pads: tuple[int, int, int, int], source: str, mode: str = "constant",
               channel_pads: tuple[int, int] = (0, 0)) -> "Map":
        """`value`'s map padded by `pads` (top, left, bottom, right), and by `channel_pads` zero channels
        (before, after), as a "pad" layer of its own."""
        height, width = self.size_of(value.layer)
        top, left, bottom, right = pads
        channels = self.channels_of(value.layer)
        widened = dict(in_channels=channels, offset=channel_pads[0]) if any(channel_pads) else {}
        draft = self.add(Draft(id=self.new_id(), op="pad", inputs=(value.layer,), channels=channels + sum(channel_pads),
                               size=(height + top + bottom, width + left + right),
                               total_stride=self.total_stride_of(value.layer), pads=tuple(pads), pad_mode=mode,
                               source=source, **widened))
        return Map(draft.id, value.layout, draft.version)

    def windowed(self, node, op: str, source: str, channels: int, kernel, strides,
                 pads: tuple[int, int, int, int], ceil_mode: bool = False, **fields) -> Draft:
        """A conv or pool layer, with its output size at the native size; `kernel` and `strides` are each a
        side or (height, width)."""
        height, width = self.size_of(source)
        k_h, k_w = (kernel, kernel) if isinstance(kernel, int) else kernel
        strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
        dilation = fields.get("dilation", 1)
        out = []
        extents = (dilated_extent(k_h, dilation), dilated_extent(k_w, dilation))
        for side, before, after, extent, step in zip((height, width), pads[:2], pads[2:], extents, strides):
            span = side + before + after - extent
            if span < 0:
                raise self.refuse(node, f"its {k_h}x{k_w} window does not fit the {height}x{width} map")
            out.append(-(-span // step) + 1 if ceil_mode else span // step + 1)
        below = self.total_stride_of(source)
        return self.add(Draft(id=self.new_id(), op=op, inputs=(source,), channels=channels, size=(out[0], out[1]),
                              total_stride=(below[0] * strides[0], below[1] * strides[1]), kernel=k_h,
                              kernel_w=k_w if k_w != k_h else 0, strides=strides,
                              pads=tuple(int(p) for p in pads), ceil_mode=ceil_mode, source=node.output[0], **fields))

    def follow(self, layer: str, node, op: str, **fields) -> Draft:
        """A layer of the same channels and size as `layer` that reads it (act, affine, layernorm, mul)."""
        return self.add(Draft(id=self.new_id(), op=op, inputs=(layer,), channels=self.channels_of(layer),
                              size=self.size_of(layer), total_stride=self.total_stride_of(layer),
                              source=node.output[0], **fields))

    def gap_of(self, node, value) -> Map:
        """A squeeze-and-excitation branch's global average pool as a layer (N x C x 1 x 1), made once."""
        key = (value.layer, value.version)
        if key not in self.gaps:
            draft = self.add(Draft(id=self.new_id(), op="gap", inputs=(value.layer,),
                                   channels=self.channels_of(value.layer), size=(1, 1),
                                   total_stride=self.total_stride_of(value.layer), source=node.input[0]))
            self.gaps[key] = draft.id
        return Map(self.gaps[key], "NCHW", 0)

    def pooled_layout(self, name: str, value) -> str:
        """The layout of the globally pooled tensor `name` of rank 4: "NHWC" where its last axis holds the
        channels (N x 1 x 1 x C), else "NCHW"."""
        shape, channels = self.shapes.get(name), self.channels_of(value.layer)
        return "NHWC" if shape and len(shape) == 4 and shape[3] == channels != shape[1] else "NCHW"

    def is_pooled(self, layer: str) -> bool:
        """Whether `layer` computes on a global average pool alone (a gate's branch: 1 x 1 at every size):
        every way back from it meets a gap layer before the image or a windowed pool."""
        stack, seen = [layer], set()
        while stack:
            name = stack.pop()
            if name == INPUT:
                return False
            if name in seen:
                continue
            seen.add(name)
            draft = self.drafts[name]
            if draft.op in ("maxpool", "avgpool"):
                return False
            if draft.op not in GLOBAL_POOLS:
                stack.extend(draft.inputs)
        return True

    def feeds_gates_only(self, name: str) -> bool:
        """Whether every way from tensor `name` to the graph output passes a product of two computed tensors
        (a gate's branch, as CBAM's global max pool or SENet's Linear layers) rather than reaching the
        classifier; a Mul by a constant is a scale on the way, not a gate."""
        stack, seen = [name], set()
        while stack:
            name = stack.pop()
            if name in self.outputs:
                return False
            if name in seen:
                continue
            seen.add(name)
            stack.extend(output for reader in self.consumers.get(name, []) if not self.is_gate_product(reader)
                         for output in reader.output if output)
        return True

    def is_gate_product(self, node) -> bool:
        return node.op_type == "Mul" and all(self.const(name) is None for name in node.input)

    def after_pool(self, node, value: Pooled) -> None:
        """A head layer reads the pooled map: that map (T) is recorded as the head's input, once."""
        if not value.linear:
            if self.head_map and self.head_map != value.layer:
                raise self.refuse(node, "a second global average pool feeds the head; supported: one")
            self.head_map = value.layer

    def modify(self, layer: str, output: str) -> Draft:
        """A node folds into `layer`: the layer's value is now the tensor `output`."""
        draft = self.drafts[layer]
        draft.version += 1
        draft.source = output
        return draft


def on_channels(layout: str, axis: int) -> bool:
    """Whether `axis` of a 4-D tensor laid out `layout` is its channel axis."""
    return axis % 4 == (1 if layout == "NCHW" else 3)


def describe(value) -> str:
    kinds = {Map: "a feature map", Padded: "a zero-padded map", Flat: "a flattened map",
             Dense: "the output of a fully connected layer", Pooled: "a globally pooled vector",
             Rows: "a map's positions as rows", Grouped: "a map's channels in groups",
             Probabilities: "a softmax", Parts: "a sequence of a map's channel parts",
             GateVector: "a gate's vector", Unchanneled: "a map reduced over its channels, the axis dropped",
             Positions: "a map with its positions in one axis", ImageChannels: "channels of the input image"}
    return kinds.get(type(value), "a constant")


def auto_pads(mode: str, size: tuple[int, int], kernel: tuple[int, int],
              strides: tuple[int, int]) -> tuple[int, int, int, int]:
    """ONNX auto_pad at the native size: SAME_UPPER puts the odd pixel at the end (TensorFlow's 'same')."""
    if mode in ("NOTSET", "VALID"):
        return (0, 0, 0, 0)
    before, after = [], []
    for side, extent, step in zip(size, kernel, strides):
        total = max((-(-side // step) - 1) * step + extent - side, 0)
        small, large = total // 2, total - total // 2
        before.append(small if mode == "SAME_UPPER" else large)
        after.append(large if mode == "SAME_UPPER" else small)
    return (before[0], before[1], after[0], after[1])
