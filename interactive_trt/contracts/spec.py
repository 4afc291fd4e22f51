"""A network described as data, so that one machinery serves VGG-19 and any other plain CNN.

The InterActive method (paper section 3) needs, for every layer t whose features we take, the
layers t+1 that consume it through weights (its *successors*), their kernel, stride and padding
(the connection sets U of equations 8-9), and the order of layers for the backward pass. All of that
is derived here from one table of layers; nothing is written twice.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from interactive_trt.common.errors import SpecError

INPUT = "image"


@dataclass(frozen=True)
class Layer:
    """One node of the network.

    op: "conv" (with optional ReLU), "maxpool", or "concat" (channel concatenation of its inputs).
    For convs and pools, kernel/stride/padding are square; `ceil_mode` only for pools.
    `weight_key` names the weights of a conv in the source checkpoint (e.g. "features.0").
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


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become the network input; travels with the weights (torchvision's convention)."""

    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"


@dataclass(frozen=True)
class ResizeRule:
    """Paper section 3.1: H*W about target_side^2, sides multiples of `multiple`, none under `min_side`."""

    target_side: int = 512
    multiple: int = 32
    min_side: int = 224


@dataclass(frozen=True)
class ModelSpec:
    """A whole network plus the choices InterActive needs.

    feature_layers: the layers t whose InterActive features are exported (Table 1's rows).
    last_layer: T of the 'last' configuration (fc7 for VGG).
    head_logits: the layer that plays fc8 in the ImageNet head; its input plays fc7.
    """

    name: str
    layers: tuple[Layer, ...]
    feature_layers: tuple[str, ...]
    last_layer: str
    head_logits: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    resize: ResizeRule = field(default_factory=ResizeRule)

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

    def successors(self, name: str) -> list[Layer]:
        """The layers t+1 with weights that take layer `name` directly as input (paper: U^(t))."""
        return [layer for layer in self.consumers(name) if layer.op == "conv"]

    @property
    def head_penultimate(self) -> str:
        inputs = self.layer(self.head_logits).inputs
        return inputs[0]

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
            if layer.op not in ("conv", "maxpool", "concat"):
                raise SpecError(f"model {self.name!r}: layer {layer.name!r} has unknown op {layer.op!r}")
            for source in layer.inputs:
                if source not in seen:
                    raise SpecError(
                        f"model {self.name!r}: layer {layer.name!r} reads {source!r}, "
                        "which is not defined before it (layers must be in topological order)"
                    )
            if layer.op != "concat" and len(layer.inputs) != 1:
                raise SpecError(f"model {self.name!r}: layer {layer.name!r} ({layer.op}) needs exactly one input")
            seen.add(layer.name)
        for name in (*self.feature_layers, self.last_layer, self.head_logits):
            self.layer(name)
        for name in self.feature_layers:
            successors = self.successors(name)
            if not successors:
                raise SpecError(
                    f"model {self.name!r}: feature layer {name!r} feeds no layer with weights, "
                    "so it has no successor t+1 and no InterActive weight map"
                )
            for successor in successors:
                if successor.stride != 1:
                    raise SpecError(
                        f"model {self.name!r}: successor {successor.name!r} of {name!r} has stride "
                        f"{successor.stride}; only stride-1 successors are supported"
                    )
        if self.layer(self.head_logits).op != "conv":
            raise SpecError(f"model {self.name!r}: head layer {self.head_logits!r} must be a conv")

    # ------------------------------------------------------------------ shapes
    def spatial_sizes(self, height: int, width: int) -> dict[str, tuple[int, int]]:
        """Every layer's output size for one input size; refuses sizes the graph cannot serve.

        Pools must tile their input exactly (no ceil-mode padding needed), because the exported
        max-pool routing slices windows with fixed offsets; the input size rule guarantees it for
        the sizes we produce, and this check says so when a forced size does not.
        """
        rule = self.resize
        if height % rule.multiple or width % rule.multiple:
            raise SpecError(
                f"input size {height}x{width} for {self.name}: sides must be multiples of {rule.multiple}"
            )
        if min(height, width) < rule.min_side:
            raise SpecError(
                f"input size {height}x{width} for {self.name}: sides must be at least {rule.min_side}"
            )
        sizes = {INPUT: (height, width)}
        for layer in self.layers:
            h, w = sizes[layer.inputs[0]]
            if layer.op == "concat":
                for other in layer.inputs[1:]:
                    if sizes[other] != (h, w):
                        raise SpecError(f"{self.name}: inputs of concat {layer.name!r} differ in size")
                sizes[layer.name] = (h, w)
                continue
            out = []
            for side in (h, w):
                span = side + 2 * layer.padding - layer.kernel
                if span < 0:
                    raise SpecError(
                        f"input size {height}x{width} is too small for {self.name} at layer {layer.name!r}"
                    )
                if layer.op == "maxpool" and span % layer.stride:
                    raise SpecError(
                        f"input size {height}x{width} for {self.name}: pool {layer.name!r} does not tile "
                        f"its {h}x{w} input exactly"
                    )
                out.append(span // layer.stride + 1)
            sizes[layer.name] = (out[0], out[1])
        return sizes

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        try:
            layers = tuple(Layer(**{**item, "inputs": tuple(item["inputs"])}) for item in data["layers"])
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
            )
        except (KeyError, TypeError) as exc:
            raise SpecError(f"model description is malformed: {exc}") from None

    def conv_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.op == "conv"]
