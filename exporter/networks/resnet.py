"""ResNet-18 and ResNet-50 as tables over torchvision's state-dict keys (`conv1`, `bn1`,
`layer1.0.conv1`, `layer1.0.downsample.0`, `fc`), the files users already have.

They bring strided successors (the first conv of a stage and its 1x1 downsample both read the previous
stage's output: gamma sums two connection sets, one at stride 2), a floor-mode stem pool that does not
tile its input, residual adds with a ReLU after them, and BatchNorm folded into every conv.
"""

from __future__ import annotations

from interactive_trt.common.errors import SpecError
from interactive_trt.contracts.spec import INPUT, Layer, ModelSpec

DEPTHS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet50": ("bottleneck", (3, 4, 6, 3))}


def conv(name: str, source: str, in_channels: int, channels: int, key: str, bn: str, kernel: int = 1,
         stride: int = 1, relu: bool = True) -> Layer:
    return Layer(name, "conv", (source,), channels, kernel=kernel, stride=stride, padding=kernel // 2, relu=relu,
                 weight_key=f"{key}", in_channels=in_channels, bn_key=bn)


def resnet_spec(depth: str = "resnet18", num_classes: int = 1000, width_divisor: int = 1) -> ModelSpec:
    if depth not in DEPTHS:
        raise SpecError(f"unknown ResNet {depth!r}; known: {', '.join(DEPTHS)}")
    kind, repeats = DEPTHS[depth]
    width = 64 // width_divisor
    layers = [conv("conv1", INPUT, 3, width, "conv1", "bn1", kernel=7, stride=2),
              Layer("pool1", "maxpool", ("conv1",), width, kernel=3, stride=2, padding=1)]
    previous, channels, stage_ends = "pool1", width, []
    expansion = 4 if kind == "bottleneck" else 1
    for stage, count in enumerate(repeats, start=1):
        planes = width * 2 ** (stage - 1)
        for block in range(count):
            stride = 2 if stage > 1 and block == 0 else 1
            key, name = f"layer{stage}.{block}", f"layer{stage}_{block}"
            if kind == "basic":
                layers += [conv(f"{name}_conv1", previous, channels, planes, f"{key}.conv1", f"{key}.bn1", 3, stride),
                           conv(f"{name}_conv2", f"{name}_conv1", planes, planes, f"{key}.conv2", f"{key}.bn2", 3,
                                relu=False)]
                last = f"{name}_conv2"
            else:
                layers += [conv(f"{name}_conv1", previous, channels, planes, f"{key}.conv1", f"{key}.bn1"),
                           conv(f"{name}_conv2", f"{name}_conv1", planes, planes, f"{key}.conv2", f"{key}.bn2", 3,
                                stride),
                           conv(f"{name}_conv3", f"{name}_conv2", planes, planes * 4, f"{key}.conv3", f"{key}.bn3",
                                relu=False)]
                last = f"{name}_conv3"
            out = planes * expansion
            skip = previous
            if stride != 1 or channels != out:
                layers.append(conv(f"{name}_downsample", previous, channels, out, f"{key}.downsample.0",
                                   f"{key}.downsample.1", stride=stride, relu=False))
                skip = f"{name}_downsample"
            layers.append(Layer(name, "add", (last, skip), out))
            previous, channels = name, out
        stage_ends.append(previous)
    layers.append(Layer("fc", "conv", (previous,), num_classes, relu=False, weight_key="fc", in_channels=channels))
    # the ends of the stages at 56, 28 and 14, and the first 7x7 block: the last map below T (layer4's end)
    last_below = f"layer4_{repeats[3] - 2}" if repeats[3] > 1 else "layer3_" + str(repeats[2] - 1)
    feature_layers = (*stage_ends[:3], last_below)
    name = depth if width_divisor == 1 else f"{depth}-w{width_divisor}"
    return ModelSpec(name=name, layers=tuple(layers), feature_layers=feature_layers, last_layer=stage_ends[3],
                     head_logits="fc")
