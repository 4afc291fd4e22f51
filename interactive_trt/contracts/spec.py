"""A network described as data, so that one machinery serves VGG-19, SqueezeNet, ResNets and
EfficientNet-Lite (INTERACTIVE.md, "Any CNN": the vocabulary below is the whole of it).

The InterActive method (paper section 3) needs, for every layer t whose features we take, the
layers t+1 that consume it through weights (its *successors*), their kernel, stride, pads and groups
(the connection sets U of equations 8-9), and the order of layers for the backward pass. All of that
is derived here from one table of layers; nothing is written twice.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field

from interactive_trt.common.errors import SpecError

INPUT = "image"
OPS = ("conv", "maxpool", "avgpool", "add", "concat", "act", "gap", "mul", "affine", "layernorm", "slice", "shuffle",
       "prelu", "gmp", "channel_mean", "channel_max", "pad", "grn", "groupnorm", "lrn")
GLOBAL_POOLS = ("gap", "gmp")  # N x C x 1 x 1 at every input size: what a gate's branch starts from
# Activations whose gradient is a mask read off the layer's output; every other one needs its input z
# (INTERACTIVE.md, "Any CNN, part 3": SiLU's derivative cannot be read from its output).
MASK_ACTIVATIONS = ("relu", "relu6")
SMOOTH_ACTIVATIONS = ("sigmoid", "silu", "hardsigmoid", "hardswish", "gelu", "gelu_tanh", "leakyrelu", "elu",
                      "selu", "tanh", "softplus", "mish", "swish", "softsign", "celu", "thresholdedrelu",
                      "squaredrelu")
# Ops a layer t reaches its successors through (they enter the layer score G, not gamma); the bookkeeping
# among them (BOOKKEEPING: channels, and a padding's border) also maps the successor's connection sums back
# onto t's channels and positions.
BOOKKEEPING = ("slice", "shuffle", "concat", "pad")
WEIGHT_FREE = ("act", "prelu", "mul", "affine", "layernorm", "grn", "groupnorm", "lrn", *BOOKKEEPING)
# Layers with parameters: (weight, bias) arrays, OIHW for convs, per channel for the others (a PReLU's
# weight is its slopes, its bias unused).
PARAMETRIC = ("conv", "affine", "layernorm", "prelu", "grn", "groupnorm")


def dilated_extent(side: int, dilation: int) -> int:
    """The rows (or columns) of input a window of `side` taps spans when they are `dilation` apart."""
    return dilation * (side - 1) + 1


@dataclass(frozen=True)
class Layer:
    """One node of the network.

    op: "conv", "maxpool", "avgpool", "add" (residual sum of equal-shaped inputs) or "concat"
    (channel concatenation); and, for the blocks of today's CNNs (INTERACTIVE.md, "Any CNN, part 3"):
    "act" (an elementwise activation alone), "gap" (global average pool to N x C x 1 x 1, as a
    squeeze-and-excitation branch reads it), "gmp" (global max pool, CBAM's channel gate; its gradient goes
    to the first arg-max), "channel_mean" and "channel_max" (the mean and the maximum over the channels at
    each position, N x 1 x H x W: CBAM's spatial gate; the maximum's gradient goes to the first arg-max),
    "mul" (a map times a factor computed in the network: a gate,
    per channel when the factor is 1 x 1, per position when it has one channel, or a map of the same shape), "affine" (a per-channel scale and
    shift that no conv absorbs: pre-activation BatchNorm, layer scale), "layernorm" (over the channels
    at each position, with per-channel weight and bias; `bn_eps` is its epsilon), "grn" (ConvNeXt V2's
    Global Response Normalization, x + bias + weight * x * n / (mean_c(n) + bn_eps) with n each channel's L2
    norm over the positions: a per-channel gate computed from the map, plus the map), "groupnorm" (GroupNorm:
    `groups` groups of channels, each normalised over its channels and positions, then a per-channel weight
    and bias; `bn_eps` its epsilon), "lrn" (local response normalisation across channels, as AlexNet and
    GoogLeNet have it: x / (bn_eps + alpha / n * S(x^2))^beta, S the sum over the n = `channel_window`
    channels centred on each, an odd number), "prelu" (LeakyReLU with
    a learnt slope per channel: its weight), "slice" (`channels` channels of its input from `offset` on:
    Split, Slice, Chunk) and "shuffle" (ShuffleNet's channel shuffle of `groups` groups: output channel
    j * groups + i is input channel i * (C / groups) + j); "pad" (around the map by `pads`: zeros where a
    max pool reads it, Keras' ResNetV2 pools its first conv's output through ZeroPadding2D, and there the
    zeros can be a window's maximum, which a pool's own -inf padding would not give; or, `pad_mode`
    "reflect", the map mirrored at its border, as anti-aliased downsampling pads before its blur; with
    `in_channels` set, zero channels too: `offset` of them before the input's, the rest of `channels` after,
    as PyramidNet widens its shortcut to the wider block it joins).
    Kernels and strides are square unless `kernel_w` and `stride_w` give a width (Inception's 1x7, text
    recognisers' 2x1 strides that keep a line's width), and a conv's taps are `dilation` apart; `pads`
    (top, left, bottom, right) are asymmetric where a network needs it (TensorFlow's 'same'), else
    `padding` on every side.
    Activation after a conv or an add: `relu`, or `relu6` (Clip 0..6), or neither (linear); `act` names
    any other (SMOOTH_ACTIVATIONS, with `alpha` and `beta` as ONNX stores them: HardSigmoid's slope and
    offset, LeakyReLU's, ELU's, CELU's and Swish's alpha, ThresholdedReLU's threshold, SELU's alpha and its
    scale gamma as `beta`) and is the whole point of an "act" layer.
    `groups` > 1 for grouped and depthwise convs; `ceil_mode` and `count_include_pad` for pools.
    `weight_key` names the conv's weights in the source checkpoint (e.g. "features.0"), `bn_key` a
    BatchNormalization after it that is folded into those weights at load (with `bn_eps`).
    `source` names the tensor of an imported ONNX file that holds this layer's output (layer names
    may not contain '.', ONNX tensor names often do).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    channels: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    relu: bool = True
    ceil_mode: bool = False
    weight_key: str = ""
    in_channels: int = 0
    groups: int = 1
    pads: tuple[int, ...] = ()
    relu6: bool = False
    count_include_pad: bool = True
    bn_key: str = ""
    bn_eps: float = 1e-5
    source: str = ""
    act: str = ""
    alpha: float = 0.0
    beta: float = 0.0
    offset: int = 0
    kernel_w: int = 0  # a non-square window's width (Inception's 1x7 and 7x1); 0: square, `kernel` wide
    pad_mode: str = "constant"  # a "pad" layer's: "constant" (zeros) or "reflect"
    channel_window: int = 0  # an "lrn" layer's window across the channels (odd, centred on each)
    dilation: int = 1  # a conv's, square: its taps `dilation` apart (DRN's and DeepLab's atrous convolutions)
    stride_w: int = 0  # a non-square stride's width (PaddleOCR's and CRNN's 2x1); 0: square, `stride` wide

    @property
    def window(self) -> tuple[int, int]:
        """(height, width) of the kernel or pooling window."""
        return (self.kernel, self.kernel_w or self.kernel)

    @property
    def strides(self) -> tuple[int, int]:
        """(height, width) of the step between windows."""
        return (self.stride, self.stride_w or self.stride)

    @property
    def channel_pads(self) -> tuple[int, int]:
        """A "pad" layer's zero channels (before, after) its input's; (0, 0) for every other layer."""
        if self.op != "pad" or not self.in_channels:
            return (0, 0)
        return (self.offset, self.channels - self.offset - self.in_channels)

    @property
    def extent(self) -> tuple[int, int]:
        """(height, width) of the input a window spans: the window, its taps spread by the dilation."""
        return tuple(dilated_extent(side, self.dilation) for side in self.window)

    @property
    def pad4(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right)."""
        return tuple(self.pads) if self.pads else (self.padding,) * 4

    @property
    def commutes_with_mean(self) -> bool:
        """A 1x1, stride-1, unpadded convolution with no activation: the spatial mean of its output is the
        layer applied to the mean of its input, so class scores can be taken at one position, not at H x W
        (EfficientNet-B0's classifier at 512x512 costs 0.65 GFLOP as a score map, 15% of its forward pass)."""
        return (self.op == "conv" and self.window == (1, 1) and self.strides == (1, 1) and not any(self.pad4)
                and not self.activation)

    @property
    def activation(self) -> str:
        """'relu6', 'relu', a smooth activation's name or '' (linear); pools, concats and gates have none."""
        if self.op == "act":
            return self.act
        if self.op not in ("conv", "add"):
            return ""
        if self.act:
            return self.act
        return "relu6" if self.relu6 else ("relu" if self.relu else "")


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become the network input; travels with the weights (torchvision's convention)."""

    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"


@dataclass(frozen=True)
class ResizeRule:
    """Paper section 3.1: H*W about target_side^2, sides multiples of `multiple`, none under `min_side`.

    `offset`: sides are `offset` plus a multiple instead, for a network imported at a native size that is
    not a multiple of its total stride (Inception's 299, with unpadded convolutions): every size of that
    class leaves each layer the same uncovered rows and columns as the native one. `multiple_w` and
    `offset_w` are the width's where they differ from the height's: a network whose strides are not square
    (a text line's 2x1) has a total stride per axis, and its native width may sit elsewhere in its class
    (PaddleOCR's 48x192 with total strides 64 and 4)."""

    target_side: int = 512
    multiple: int = 32
    min_side: int = 224
    offset: int = 0
    multiple_w: int = 0  # 0: `multiple`
    offset_w: int = -1  # -1: `offset`

    def axis(self, axis: int) -> tuple[int, int]:
        """(multiple, offset) of the height (axis 0) or the width (axis 1)."""
        if axis == 0:
            return self.multiple, self.offset
        return self.multiple_w or self.multiple, self.offset if self.offset_w < 0 else self.offset_w

    @property
    def square(self) -> bool:
        """One class of sides for both axes (every built-in, and most imports)."""
        return self.axis(0) == self.axis(1)

    def side(self, value: float, axis: int = 0) -> int:
        """The side of this rule nearest to `value` on that axis, at least `min_side`."""
        multiple, offset = self.axis(axis)
        side = offset + int(round((value - offset) / multiple)) * multiple
        if side < self.min_side:  # the smallest of the axis' class from min_side on (the offset itself, for
            # a native side shorter than the total stride: PaddleOCR's 48 rows at 64)
            side = offset + -(-(self.min_side - offset) // multiple) * multiple
        return side

    @property
    def smallest(self) -> tuple[int, int]:
        """The smallest input of the rule, (height, width): square unless the axes' classes differ."""
        return self.side(self.min_side, 0), self.side(self.min_side, 1)

    def fits(self, side: int, axis: int = 0) -> bool:
        multiple, offset = self.axis(axis)
        return (side - offset) % multiple == 0

    def describe(self) -> str:
        def one(axis):
            multiple, offset = self.axis(axis)
            return f"multiples of {multiple}" + (f" plus {offset}" if offset else "")
        return one(0) if self.square else f"{one(0)} in height and {one(1)} in width"


def upstream(targets, inputs_of) -> set[str]:
    """Every layer that `targets` depend on, themselves included; `inputs_of(name)` gives a layer's inputs."""
    found, stack = set(), list(targets)
    while stack:
        name = stack.pop()
        if name == INPUT or name in found:
            continue
        found.add(name)
        stack.extend(inputs_of(name))
    return found


# ops whose input gradient sums to 0 over the channels at each position wherever their output gradient does:
# a residual sum, average pooling and zero padding (the same spatial weights for every channel), a channel
# shuffle (a permutation) and a channel slice (the rest is 0). A max pool routes each channel its own way,
# and zero channels padded on drop theirs.
CHANNEL_BLIND = frozenset({"add", "avgpool", "pad", "shuffle", "slice"})


@dataclass(frozen=True)
class ModelSpec:
    """A whole network plus the choices InterActive needs.

    feature_layers: the layers t whose InterActive features are exported (Table 1's rows).
    last_layer: T of the 'last' configuration (fc7 for VGG).
    head_logits: the layer that plays fc8 in the ImageNet head; its input plays fc7.
    head_pooled: the network pools T before a head of more than one linear layer (MobileNetV3's MLP,
    ConvNeXt's LayerNorm then Linear; INTERACTIVE.md, "Any CNN, part 3"). The head's layers, from T to
    head_logits, are then applied at every position of T for the score map that plays fc8, T plays fc7, and
    the class scores are the head of the pooled map, as trained.
    """

    name: str
    layers: tuple[Layer, ...]
    feature_layers: tuple[str, ...]
    last_layer: str
    head_logits: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    resize: ResizeRule = field(default_factory=ResizeRule)
    head_pooled: bool = False

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ lookups
    @property
    def by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}

    def layer(self, name: str) -> Layer:
        try:
            return self.by_name[name]
        except KeyError:
            raise SpecError(
                f"model {self.name!r} has no layer {name!r}; layers are: "
                + ", ".join(layer.name for layer in self.layers)
            ) from None

    def consumers(self, name: str) -> list[Layer]:
        return [layer for layer in self.layers if name in layer.inputs]

    def successor_routes(self, name: str) -> list[tuple[Layer, tuple[tuple[str, str], ...]]]:
        """The layers t+1 with weights that read layer `name` (paper: U^(t)), directly or through weight-free
        ops (INTERACTIVE.md, "Any CNN, part 3"), each with the channel bookkeeping on its way: the (layer,
        the input it was entered from) of every slice, shuffle and concat between. A gate's factor is not
        such a way (it passes a global pool); a mul is passed from an input of its own full size only."""
        found, seen, stack = [], set(), [(name, ())]
        while stack:
            source, steps = stack.pop()
            for layer in self.consumers(source):
                gate = layer.op == "mul" and not self.is_full_input(layer, source)
                if layer.op not in ("conv", *WEIGHT_FREE) or gate:
                    continue
                route = steps + ((layer.name, source),) if layer.op in BOOKKEEPING else steps
                if (layer.name, route) in seen:
                    continue
                seen.add((layer.name, route))
                if layer.op == "conv":
                    found.append((layer, route))
                else:
                    stack.append((layer.name, route))
        order = {layer.name: index for index, layer in enumerate(self.layers)}
        return sorted(found, key=lambda item: (order[item[0].name], item[1]))

    def successors(self, name: str) -> list[Layer]:
        """The successors of `successor_routes`, each once."""
        return list({layer.name: layer for layer, _ in self.successor_routes(name)}.values())

    def cancelled_by_norm(self, name: str) -> str:
        """A LayerNorm that makes gamma^(name) identically 0 in the 'last' configuration, or ''.

        LayerNorm's vector-Jacobian product sums to 0 over the channels at every position, and so does a
        sum of such gradients, and what average pools, zero padding and channel permutations make of them
        (CHANNEL_BLIND). Where every successor of `name` is dense (the connection sum runs over all its
        output channels) and linear, and all the gradient that reaches it comes through LayerNorms over
        the channels and such ops (MambaOut's downsampling conv, read only by its norm; a
        MetaFormer stage whose residual stream is read only by its blocks' norms and the next stage's
        pre-norm), every connection sum is 0: the graph would give rounding noise for a weight map."""
        sums = self.zero_sum_gradients
        norms = []
        for successor, route in self.successor_routes(name):
            if successor.groups != 1 or successor.activation or \
                    any(self.layer(step).op == "slice" for step, _ in route) or not sums.get(successor.name):
                return ""
            norms.append(sorted(sums[successor.name])[0])
        return norms[0] if norms else ""

    @functools.cached_property
    def zero_sum_gradients(self) -> dict[str, frozenset]:
        """Layers whose output gradient in 'last' sums to 0 over the channels, each with the LayerNorms that
        make it so (see cancelled_by_norm), through the readers of CHANNEL_BLIND; computed once per spec."""
        by_name = self.by_name
        reaching = upstream([self.last_layer], lambda layer: by_name[layer].inputs)
        readers: dict[str, list[Layer]] = {}
        for layer in self.layers:
            for source in layer.inputs:
                readers.setdefault(source, []).append(layer)
        sums: dict[str, frozenset | None] = {}
        for layer in reversed(self.layers):
            if layer.name == self.last_layer or layer.name not in reaching:
                sums[layer.name] = None  # the seed; or no gradient at all (not this rule's case)
                continue
            norms = set()
            for reader in readers.get(layer.name, []):
                if reader.name not in reaching:
                    continue
                if reader.op == "layernorm":
                    norms.add(reader.name)
                elif reader.op in CHANNEL_BLIND and not reader.activation and not any(reader.channel_pads) \
                        and sums.get(reader.name) is not None:
                    norms |= sums[reader.name]
                else:
                    norms = None
                    break
            sums[layer.name] = frozenset(norms) if norms else None
        return {name: value for name, value in sums.items() if value}

    def is_full_input(self, mul: Layer, source: str) -> bool:
        """Whether `source` is a full-size operand of `mul` (not the broadcast gate factor)."""
        return self.gate_input(mul) != source

    def gate_input(self, mul: Layer) -> str:
        """The operand of a mul that is broadcast (a squeeze-and-excitation factor: read through a global
        pool; or a spatial gate: one channel for all), or '' when both are maps of the mul's own shape."""
        for source in mul.inputs:
            if source != INPUT and (self.reads_pooled(source) or self.channels_of(source) == 1 < mul.channels):
                return source
        return ""

    def reads_pooled(self, name: str) -> bool:
        """True when layer `name` is 1 x 1 at every input size: it computes on a global average pool only."""
        return name in self.pooled_layers()

    def pooled_layers(self) -> set[str]:
        pooled = set()
        for layer in self.layers:
            if layer.op in GLOBAL_POOLS or (layer.op not in ("maxpool", "avgpool") and all(
                    source in pooled for source in layer.inputs)):
                pooled.add(layer.name)
        return pooled

    @property
    def head_penultimate(self) -> str:
        inputs = self.layer(self.head_logits).inputs
        return inputs[0]

    @property
    def head_input(self) -> str:
        """The map the ImageNet head re-weights (section 4.4): fc7's role, T for a pooled head."""
        return self.last_layer if self.head_pooled else self.head_penultimate

    def head_chain(self) -> list[Layer]:
        """The head's layers after its input, in order, up to and including head_logits."""
        chain, name = [], self.head_logits
        while name != self.head_input:
            layer = self.layer(name)
            chain.append(layer)
            name = layer.inputs[0]
        return chain[::-1]

    def head_successor(self) -> Layer:
        """The head's first weighted layer: the successor of its input, reached through weight-free ops."""
        return next(layer for layer in self.head_chain() if layer.op == "conv")

    def channels_of(self, name: str) -> int:
        if name == INPUT:
            return 3
        return self.layer(name).channels

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        seen = {INPUT}
        names = set()
        for layer in self.layers:
            if layer.name in names or layer.name == INPUT:
                raise SpecError(f"model {self.name!r}: layer name {layer.name!r} is used twice")
            names.add(layer.name)
            if layer.op not in OPS:
                raise SpecError(f"model {self.name!r}: layer {layer.name!r} has unknown op {layer.op!r}; "
                                f"known: {', '.join(OPS)}")
            if "." in layer.name:
                raise SpecError(f"model {self.name!r}: layer name {layer.name!r} may not contain '.' "
                                "(output names are '<layer>.<kind>')")
            for source in layer.inputs:
                if source not in seen:
                    raise SpecError(
                        f"model {self.name!r}: layer {layer.name!r} reads {source!r}, "
                        "which is not defined before it (layers must be in topological order)"
                    )
            if layer.op == "add" and len(layer.inputs) < 2:
                raise SpecError(f"model {self.name!r}: add {layer.name!r} needs at least two inputs")
            if layer.op == "mul" and len(layer.inputs) != 2:
                raise SpecError(f"model {self.name!r}: mul {layer.name!r} needs exactly two inputs")
            if layer.op not in ("concat", "add", "mul") and len(layer.inputs) != 1:
                raise SpecError(f"model {self.name!r}: layer {layer.name!r} ({layer.op}) needs exactly one input")
            if layer.act and layer.act not in MASK_ACTIVATIONS + SMOOTH_ACTIVATIONS:
                raise SpecError(f"model {self.name!r}: layer {layer.name!r}: unknown activation {layer.act!r}; "
                                f"known: {', '.join(MASK_ACTIVATIONS + SMOOTH_ACTIVATIONS)}")
            if layer.op == "slice" and (layer.offset < 0 or layer.offset + layer.channels
                                        > self.channels_of(layer.inputs[0])):
                raise SpecError(f"model {self.name!r}: slice {layer.name!r} takes channels {layer.offset} to "
                                f"{layer.offset + layer.channels} of {self.channels_of(layer.inputs[0])}")
            if layer.op == "pad" and layer.in_channels and (
                    layer.in_channels != self.channels_of(layer.inputs[0]) or min(layer.channel_pads) < 0
                    or layer.pad_mode != "constant"):
                raise SpecError(f"model {self.name!r}: pad {layer.name!r} puts {layer.in_channels} channels at "
                                f"{layer.offset} of {layer.channels} ({layer.pad_mode}); its input has "
                                f"{self.channels_of(layer.inputs[0])}, and only zeros widen a map")
            if layer.op == "groupnorm" and (layer.groups < 1 or layer.channels % layer.groups):
                raise SpecError(f"model {self.name!r}: groupnorm {layer.name!r} of {layer.channels} channels in "
                                f"{layer.groups} groups")
            if layer.op == "lrn" and (layer.channel_window < 1 or layer.channel_window % 2 == 0 or layer.alpha < 0
                                      or layer.bn_eps <= 0):
                raise SpecError(f"model {self.name!r}: lrn {layer.name!r} of size {layer.channel_window}, alpha "
                                f"{layer.alpha}, bias {layer.bn_eps}: expected an odd size, alpha >= 0 and bias > 0")
            if layer.op == "shuffle" and (layer.channels != self.channels_of(layer.inputs[0])
                                          or layer.groups < 1 or layer.channels % layer.groups):
                raise SpecError(f"model {self.name!r}: shuffle {layer.name!r} of {layer.channels} channels in "
                                f"{layer.groups} groups")
            if layer.op == "act" and not layer.act:
                raise SpecError(f"model {self.name!r}: act layer {layer.name!r} names no activation")
            if layer.op == "conv" and (layer.groups < 1 or layer.in_channels % layer.groups
                                       or layer.channels % layer.groups):
                raise SpecError(f"model {self.name!r}: conv {layer.name!r} has {layer.groups} groups, which do not "
                                f"divide its {layer.in_channels} input and {layer.channels} output channels")
            if layer.dilation < 1 or layer.dilation > 1 and layer.op != "conv":
                raise SpecError(f"model {self.name!r}: layer {layer.name!r} ({layer.op}) has dilation "
                                f"{layer.dilation}; only convs are dilated, by 1 or more")
            if min(layer.strides) < 1:
                raise SpecError(f"model {self.name!r}: layer {layer.name!r} has strides {layer.strides}; expected "
                                "1 or more")
            if len(layer.pads) not in (0, 4) or min(layer.pad4) < 0:
                raise SpecError(f"model {self.name!r}: layer {layer.name!r} pads {layer.pads}: expected "
                                "(top, left, bottom, right), none negative")
            if layer.op == "avgpool" and (layer.pad4[0] != layer.pad4[2] or layer.pad4[1] != layer.pad4[3]):
                raise SpecError(f"model {self.name!r}: avgpool {layer.name!r}: asymmetric pads are not supported")
            seen.add(layer.name)
        for name in (*self.feature_layers, self.last_layer, self.head_logits):
            self.layer(name)
        pooled = self.pooled_layers()
        for name in self.feature_layers:
            if name in pooled:
                raise SpecError(f"model {self.name!r}: feature layer {name!r} lies in a gate's branch (1 x 1 after a "
                                "global average pool): it has no map for InterActive to weight")
            successors = self.successors(name)
            if not successors:
                raise SpecError(
                    f"model {self.name!r}: feature layer {name!r} feeds no layer with weights, "
                    "so it has no successor t+1 and no InterActive weight map"
                )
        head = self.layer(self.head_logits)
        if head.op != "conv" or head.window != (1, 1) or head.groups != 1 or head.strides != (1, 1) \
                or any(head.pad4):
            raise SpecError(f"model {self.name!r}: head layer {self.head_logits!r} must be a dense 1x1 conv "
                            "(a fully connected classifier applied at every position)")
        if self.head_pooled:
            self.check_pooled_head()

    def check_pooled_head(self) -> None:
        """A pooled head is a chain of per-position layers from T: one input each, windows of one."""
        name = self.head_logits
        while name != self.last_layer:
            if name == INPUT:
                raise SpecError(f"model {self.name!r}: head layer {self.head_logits!r} does not read T "
                                f"({self.last_layer!r}) through a chain of layers")
            layer = self.layer(name)
            if len(layer.inputs) != 1 or layer.op not in ("conv", "act", "affine", "layernorm") or \
                    layer.window != (1, 1) or layer.strides != (1, 1) or layer.groups != 1 or any(layer.pad4):
                raise SpecError(f"model {self.name!r}: head layer {name!r} ({layer.op}) is not a per-position layer "
                                "of one input (1x1 conv, activation, affine map, LayerNorm)")
            name = layer.inputs[0]

    # ------------------------------------------------------------------ shapes
    def gamma_channels(self, name: str) -> int:
        """1 when every successor of `name` is dense (one spatial map), else the channels of `name`:
        a grouped or depthwise successor connects each channel to its own group only (eq. 8-9), and a
        slice on the way connects only the channels it takes."""
        if all(successor.groups == 1 and all(self.layer(step).op != "slice" for step, _ in route)
               for successor, route in self.successor_routes(name)):
            return 1
        return self.channels_of(name)

    def concat_offset(self, concat: Layer, source: str) -> int:
        """Where `source` starts among the channels of `concat`."""
        return sum(self.channels_of(name) for name in concat.inputs[:concat.inputs.index(source)])

    def _walk(self, height: int, width: int):
        """Every layer's output size and, for windowed layers, the residue (rows, columns) of the
        padded input that no window reaches (zero for inputs a window grid tiles exactly)."""
        sizes, residues = {INPUT: (height, width)}, {}
        for layer in self.layers:
            h, w = sizes[layer.inputs[0]]
            if layer.op in GLOBAL_POOLS:
                sizes[layer.name] = (1, 1)
                continue
            if layer.op == "mul":
                full = [source for source in layer.inputs if source not in self.pooled_layers()]
                h, w = sizes[full[0]] if full else (1, 1)
                if any(sizes[source] not in ((h, w), (1, 1)) for source in layer.inputs):
                    raise SpecError(f"{self.name}: inputs of mul {layer.name!r} are neither of one size nor a "
                                    f"1 x 1 gate at input {height}x{width}")
                sizes[layer.name] = (h, w)
                continue
            if layer.op == "pad":
                top, left, bottom, right = layer.pad4
                if layer.pad_mode == "reflect" and (h <= max(top, bottom) or w <= max(left, right)):
                    # a mirror needs rows to mirror: more of them than it pads, as torch and ONNX require
                    raise SpecError(f"input size {height}x{width} is too small for {self.name} at layer "
                                    f"{layer.name!r}: it reflect-pads a {h}x{w} map by {list(layer.pad4)}")
                sizes[layer.name] = (h + top + bottom, w + left + right)
                continue
            if layer.op in ("concat", "add"):
                for other in layer.inputs[1:]:
                    if sizes[other] != (h, w):
                        raise SpecError(f"{self.name}: inputs of {layer.op} {layer.name!r} differ in size "
                                        f"at input {height}x{width}")
                sizes[layer.name] = (h, w)
                continue
            top, left, bottom, right = layer.pad4
            out, rest = [], []
            for side, before, after, kernel, step in zip((h, w), (top, left), (bottom, right), layer.extent,
                                                         layer.strides):
                span = side + before + after - kernel
                if span < 0:
                    raise SpecError(
                        f"input size {height}x{width} is too small for {self.name} at layer {layer.name!r}"
                    )
                if layer.ceil_mode and span % step:
                    raise SpecError(
                        f"input size {height}x{width} for {self.name}: ceil-mode pool {layer.name!r} does not "
                        f"tile its {h}x{w} input exactly"
                    )
                out.append(span // step + 1)
                rest.append(span % step)
            sizes[layer.name] = (out[0], out[1])
            residues[layer.name] = (rest[0], rest[1])
        return sizes, residues

    @property
    def reference_residues(self) -> dict[str, tuple[int, int]]:
        """Residues at the rule's smallest input; the exported graph is built for these."""
        return self._walk(*self.resize.smallest)[1]

    def spatial_sizes(self, height: int, width: int) -> dict[str, tuple[int, int]]:
        """Every layer's output size for one input size; refuses sizes the graph cannot serve.

        The backward pass restores each windowed layer's exact input size with static output padding
        (ONNX attributes), so every served size must leave the same uncovered rows and columns as the
        sizes the graph was built for; the input size rule (multiples of 32, plus the rule's offset; each
        axis' own where they differ) guarantees it.
        """
        rule = self.resize
        if not (rule.fits(height, 0) and rule.fits(width, 1)):
            raise SpecError(f"input size {height}x{width} for {self.name}: sides must be {rule.describe()}")
        if min(height, width) < rule.min_side:
            raise SpecError(
                f"input size {height}x{width} for {self.name}: sides must be at least {rule.min_side}"
            )
        sizes, residues = self._walk(height, width)
        expected = self.reference_residues
        for name, residue in residues.items():
            if residue != expected[name]:
                raise SpecError(f"input size {height}x{width} for {self.name}: layer {name!r} would leave "
                                f"{residue} uncovered rows/columns, the graph serves {expected[name]}")
        return sizes

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        try:
            layers = tuple(Layer(**{**item, "inputs": tuple(item["inputs"]), "pads": tuple(item.get("pads", ()))})
                           for item in data["layers"])
            return cls(
                name=data["name"],
                layers=layers,
                feature_layers=tuple(data["feature_layers"]),
                last_layer=data["last_layer"],
                head_logits=data["head_logits"],
                preprocessing=Preprocessing(
                    **{**data["preprocessing"], "mean": tuple(data["preprocessing"]["mean"]),
                       "std": tuple(data["preprocessing"]["std"])}
                ),
                resize=ResizeRule(**data["resize"]),
                head_pooled=bool(data.get("head_pooled", False)),
            )
        except (KeyError, TypeError) as exc:
            raise SpecError(f"model description is malformed: {exc}") from None

    def conv_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.op == "conv"]

    def parameter_layers(self) -> list[Layer]:
        """Layers with (weight, bias) arrays: convs, and the per-channel affine maps and LayerNorms."""
        return [layer for layer in self.layers if layer.op in PARAMETRIC]
