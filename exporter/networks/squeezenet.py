"""SqueezeNet 1.1 as a table: the same machinery as VGG-19, with what VGG lacks.

A squeeze conv feeds two expand convs (gamma sums both connection sets), a fire output is a channel
concatenation (the backward pass splits it), and pools are 3x3 stride 2 in ceil mode (overlapping
windows: a position can be the arg-max of several). The last fire output plays fc7, conv25 plays fc8.
"""

from __future__ import annotations

from interactive_trt.contracts.spec import INPUT, Layer, ModelSpec

# (squeeze, expand) channels of the eight fire modules; "M" is a 3x3 stride-2 ceil-mode max-pool
FIRES = ((16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192), (64, 256), (64, 256))


def squeezenet11_spec(num_classes: int = 1000) -> ModelSpec:
    layers = [Layer("conv0", "conv", (INPUT,), 64, kernel=3, stride=2, weight_key="features.0", in_channels=3),
              Layer("pool1", "maxpool", ("conv0",), 64, kernel=3, stride=2, ceil_mode=True)]
    previous, channels, fire, pool, torch_index = "pool1", 64, 0, 1, 3
    for item in FIRES:
        if item == "M":
            pool += 1
            layers.append(Layer(f"pool{pool}", "maxpool", (previous,), channels, kernel=3, stride=2, ceil_mode=True))
            previous = f"pool{pool}"
            torch_index += 1
            continue
        squeeze, expand = item
        fire += 1
        key = f"features.{torch_index}"
        layers += [
            Layer(f"fire{fire}_squeeze", "conv", (previous,), squeeze, weight_key=f"{key}.squeeze",
                  in_channels=channels),
            Layer(f"fire{fire}_expand1x1", "conv", (f"fire{fire}_squeeze",), expand,
                  weight_key=f"{key}.expand1x1", in_channels=squeeze),
            Layer(f"fire{fire}_expand3x3", "conv", (f"fire{fire}_squeeze",), expand, kernel=3, padding=1,
                  weight_key=f"{key}.expand3x3", in_channels=squeeze),
            Layer(f"fire{fire}", "concat", (f"fire{fire}_expand1x1", f"fire{fire}_expand3x3"), 2 * expand),
        ]
        previous, channels = f"fire{fire}", 2 * expand
        torch_index += 1
    layers.append(Layer("conv25", "conv", (previous,), num_classes, weight_key="classifier.1", in_channels=channels))
    feature_layers = ("pool1", "fire1", "pool2", "fire3", "pool3", "fire5", "fire6", "fire7")
    return ModelSpec(name="squeezenet1.1", layers=tuple(layers), feature_layers=feature_layers,
                     last_layer="fire8", head_logits="conv25")
