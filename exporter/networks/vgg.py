"""VGG-19 as a table (torchvision's configuration 'E'), run fully convolutionally.

The table is the single source of layer names, channels, torchvision state-dict keys and the nine
paper layers (Table 1: pool1, pool2, conv3_3, pool3, conv4_3, pool4, conv5_3, pool5, fc6).
`width_divisor` gives the width-reduced twin used by fast tests: same depth, same layer names.
"""

from __future__ import annotations

from interactive_trt.common.errors import SpecError
from interactive_trt.contracts.spec import INPUT, Layer, ModelSpec

# channels per conv; "M" is a 2x2 stride-2 max-pool
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
             512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

PAPER_LAYERS = ("pool1", "pool2", "conv3_3", "pool3", "conv4_3", "pool4", "conv5_3", "pool5", "fc6")


def vgg19_spec(width_divisor: int = 1, num_classes: int = 1000) -> ModelSpec:
    if width_divisor < 1 or any(c % width_divisor for c in VGG19_CFG if c != "M") or 4096 % width_divisor:
        raise SpecError(f"width divisor {width_divisor} must divide every VGG-19 channel count")
    layers: list[Layer] = []
    previous, stage, index_in_stage, torch_index = INPUT, 1, 1, 0
    in_channels = 3
    for item in VGG19_CFG:
        if item == "M":
            name = f"pool{stage}"
            layers.append(Layer(name, "maxpool", (previous,), in_channels, kernel=2, stride=2))
            stage, index_in_stage = stage + 1, 1
            torch_index += 1
        else:
            channels = item // width_divisor
            name = f"conv{stage}_{index_in_stage}"
            layers.append(Layer(name, "conv", (previous,), channels, kernel=3, stride=1, padding=1,
                                weight_key=f"features.{torch_index}", in_channels=in_channels))
            in_channels = channels
            index_in_stage += 1
            torch_index += 2
        previous = name
    fc = 4096 // width_divisor
    layers += [
        Layer("fc6", "conv", ("pool5",), fc, kernel=7, weight_key="classifier.0", in_channels=in_channels),
        Layer("fc7", "conv", ("fc6",), fc, kernel=1, weight_key="classifier.3", in_channels=fc),
        Layer("fc8", "conv", ("fc7",), num_classes, kernel=1, relu=False, weight_key="classifier.6",
              in_channels=fc),
    ]
    name = "vgg19" if width_divisor == 1 else f"vgg19-w{width_divisor}"
    return ModelSpec(name=name, layers=tuple(layers), feature_layers=PAPER_LAYERS,
                     last_layer="fc7", head_logits="fc8")
