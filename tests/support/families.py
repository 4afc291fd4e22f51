"""Small networks of today's CNN families, written in plain torch from their published block diagrams
(torchvision does not import beside our torch): seeded random weights and random BatchNorm statistics, at
widths a CI machine runs in seconds. Any CNN, part 3 imports them through torch.onnx."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from onnx_builders import randomise_batchnorm


def conv_bn(cin, cout, kernel=1, stride=1, groups=1, act=None):
    padding = (kernel - 1) // 2
    layers = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class SqueezeExcite(nn.Module):
    """x * gate(fc(act(fc(mean(x))))): EfficientNet's (SiLU, Sigmoid) and MobileNetV3's (ReLU, Hardsigmoid)."""

    def __init__(self, channels, squeezed, act=nn.SiLU, gate=nn.Sigmoid):
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(channels, squeezed, 1), nn.Conv2d(squeezed, channels, 1)
        self.act, self.gate = act(), gate()

    def forward(self, x):
        scale = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.expand(self.act(self.reduce(scale))))


class MBConv(nn.Module):
    def __init__(self, cin, cout, kernel, stride, expand, act=nn.SiLU, gate=nn.Sigmoid, se=True):
        super().__init__()
        wide = cin * expand
        layers = [conv_bn(cin, wide, act=act)] if expand != 1 else []
        layers.append(conv_bn(wide, wide, kernel, stride, groups=wide, act=act))
        if se:
            layers.append(SqueezeExcite(wide, max(1, cin // 4), act=act if act is nn.SiLU else nn.ReLU, gate=gate))
        layers.append(conv_bn(wide, cout))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class EfficientNetB0(nn.Module):
    """EfficientNet-B0's layout (SiLU, squeeze-and-excitation, 3x3 and 5x5 depthwise) at a quarter width and
    fewer repeats, or (full=True) at its own size: 5.3M parameters, 0.39 GFLOPs at 224x224."""

    STAGES = ((1, 4, 1, 1, 3), (6, 6, 2, 2, 3), (6, 10, 2, 2, 5), (6, 20, 2, 2, 3), (6, 28, 1, 1, 5),
              (6, 48, 1, 2, 5), (6, 80, 1, 1, 3))
    FULL = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
            (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))

    def __init__(self, classes=1000, full=False):
        super().__init__()
        stem, head = (32, 1280) if full else (8, 320)
        layers, cin = [conv_bn(3, stem, 3, 2, act=nn.SiLU)], stem
        for expand, cout, repeats, stride, kernel in self.FULL if full else self.STAGES:
            for index in range(repeats):
                layers.append(MBConv(cin, cout, kernel, stride if index == 0 else 1, expand))
                cin = cout
        layers.append(conv_bn(cin, head, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(head, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class HandHardsigmoid(nn.Module):
    """relu6(x + 3) / 6, as MobileNetV3 code from before torch had nn.Hardsigmoid writes it."""

    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


class HandHardswish(nn.Module):
    """x * relu6(x + 3) / 6 (the product first, then the division, as timm's hard_swish)."""

    def forward(self, x):
        return x * F.relu6(x + 3.0) / 6.0


class MobileNetV3(nn.Module):
    """MobileNetV3-Small's layout: Hardswish and ReLU, squeeze-and-excitation with Hardsigmoid, and its MLP
    head after the pool (Linear, Hardswish, Dropout, Linear), or a single Linear; handwritten=True spells
    both activations out with ReLU6."""

    BLOCKS = ((3, 1, 8, True, "RE", 2), (3, 4.5, 12, False, "RE", 2), (3, 3.7, 12, False, "RE", 1),
              (5, 4, 20, True, "HS", 2), (5, 6, 20, True, "HS", 1), (5, 3, 24, True, "HS", 1),
              (5, 6, 48, True, "HS", 2), (5, 6, 48, True, "HS", 1))

    def __init__(self, classes=1000, mlp_head=True, handwritten=False):
        super().__init__()
        swish, sigmoid = (HandHardswish, HandHardsigmoid) if handwritten else (nn.Hardswish, nn.Hardsigmoid)
        layers, cin = [conv_bn(3, 8, 3, 2, act=swish)], 8
        for kernel, expand, cout, se, kind, stride in self.BLOCKS:
            act = nn.ReLU if kind == "RE" else swish
            wide = int(round(cin * expand))
            block = [conv_bn(cin, wide, act=act)] if wide != cin else []
            block.append(conv_bn(wide, wide, kernel, stride, groups=wide, act=act))
            if se:
                block.append(SqueezeExcite(wide, max(4, wide // 4), act=nn.ReLU, gate=sigmoid))
            block.append(conv_bn(wide, cout))
            layers.append(Residual(nn.Sequential(*block)) if stride == 1 and cin == cout else nn.Sequential(*block))
            cin = cout
        layers.append(conv_bn(cin, 96, act=swish))
        self.features = nn.Sequential(*layers)
        head = [nn.Linear(96, 128), swish(), nn.Dropout(0.2), nn.Linear(128, classes)] if mlp_head \
            else [nn.Dropout(0.2), nn.Linear(96, classes)]
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class Residual(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class LayerNorm2d(nn.LayerNorm):
    """torchvision's: a LayerNorm over the channels of an NCHW map, through a channels-last permute."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelsFirstLayerNorm(nn.Module):
    """ConvNeXt's own LayerNorm for NCHW maps (its stem and downsampling layers): the mean and variance over
    dim 1 written out, which torch.onnx writes as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div at any opset."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.rand(channels) + 0.5), nn.Parameter(torch.randn(channels) * 0.1)
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim, gelu="none"):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm, self.gelu = nn.LayerNorm(dim, eps=1e-6), nn.GELU(approximate=gelu)
        self.pw1, self.pw2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.scale = nn.Parameter(torch.rand(dim) + 0.5)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.scale * self.pw2(self.gelu(self.pw1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN in the forms its users' code has: the authors' and Hugging Face's on a channels-last
    map (torch.norm, then gamma * (x * Nx) + beta + x), timm's on a channels-first one (x + addcmul(bias,
    weight, x * Nx)); the norm as Sqrt(ReduceSum(x * x)) with a reciprocal, or with Pow; and two look-alikes
    that are no GRN: the norms divided by their largest, not their mean, and no map added back."""

    def __init__(self, dim, form="authors"):
        super().__init__()
        self.form = form
        self.weight, self.bias = nn.Parameter(torch.randn(dim) * 0.5), nn.Parameter(torch.randn(dim) * 0.2)

    def forward(self, x):
        spatial, channel = ((2, 3), 1) if self.form == "timm" else ((1, 2), -1)
        if self.form == "sqrt_sum":
            norms = torch.sqrt((x * x).sum(dim=spatial, keepdim=True))
            gate = norms * (1.0 / (norms.mean(dim=channel, keepdim=True) + 1e-6))
        elif self.form == "pow":
            norms = x.pow(2).sum(dim=spatial, keepdim=True).sqrt()
            gate = norms / (norms.mean(dim=channel, keepdim=True) + 1e-6)
        else:
            norms = torch.norm(x, p=2, dim=spatial, keepdim=True)
            divisor = norms.amax(dim=channel, keepdim=True) if self.form == "max" else norms.mean(dim=channel,
                                                                                                  keepdim=True)
            gate = norms / (divisor + 1e-6)
        if self.form == "timm":
            return x + torch.addcmul(self.bias.view(1, -1, 1, 1), self.weight.view(1, -1, 1, 1), x * gate)
        gated = self.weight * (x * gate) + self.bias
        return gated if self.form == "no_identity" else gated + x


class ConvNeXtV2Block(nn.Module):
    """ConvNeXt V2's block: ConvNeXt's with a GRN after the GELU and no layer scale; its MLP as Linear layers
    on a channels-last map (the authors'), or as 1x1 convs on a channels-first one (timm's conv_mlp)."""

    def __init__(self, dim, form="authors"):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.channels_first = form == "timm"
        self.norm = LayerNorm2d(dim, eps=1e-6) if self.channels_first else nn.LayerNorm(dim, eps=1e-6)
        self.pw1, self.pw2 = (nn.Conv2d(dim, 4 * dim, 1), nn.Conv2d(4 * dim, dim, 1)) if self.channels_first else \
            (nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim))
        self.grn = GlobalResponseNorm(4 * dim, form)

    def forward(self, x):
        if self.channels_first:
            return x + self.pw2(self.grn(F.gelu(self.pw1(self.norm(self.dw(x))))))
        y = self.pw2(self.grn(F.gelu(self.pw1(self.norm(self.dw(x).permute(0, 2, 3, 1))))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """ConvNeXt-T's layout (patchify stem, 7x7 depthwise, LayerNorm, GELU MLP, layer scale, LayerNorm2d then
    2x2 downsampling) at 1/12 width and fewer blocks; head: global pool, LayerNorm2d, flatten, Linear.
    With `grn`, ConvNeXt V2's blocks in that form of their GRN."""

    def __init__(self, classes=1000, dims=(8, 16, 32, 64), depths=(1, 1, 2, 1), gelu="none", norm2d=LayerNorm2d,
                 grn=None):
        super().__init__()
        layers = [nn.Conv2d(3, dims[0], 4, 4), norm2d(dims[0], eps=1e-6)]
        for stage, (dim, depth) in enumerate(zip(dims, depths)):
            if stage:
                layers += [norm2d(dims[stage - 1], eps=1e-6), nn.Conv2d(dims[stage - 1], dim, 2, 2)]
            layers += [ConvNeXtV2Block(dim, grn) if grn else ConvNeXtBlock(dim, gelu) for _ in range(depth)]
        self.features = nn.Sequential(*layers)
        self.norm, self.fc = LayerNorm2d(dims[-1], eps=1e-6), nn.Linear(dims[-1], classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.norm(F.adaptive_avg_pool2d(self.features(x), 1)), 1))


class DenseLayer(nn.Module):
    """Pre-activation: BN -> ReLU -> 1x1 conv -> BN -> ReLU -> 3x3 conv, concatenated to its input."""

    def __init__(self, cin, growth):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 4 * growth, 1, bias=False),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, 1, 1,
                                                                                    bias=False))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class DenseNet(nn.Module):
    """DenseNet-121's layout (pre-activation dense layers, transitions BN-ReLU-conv-avgpool) at growth 4."""

    def __init__(self, classes=1000, growth=4, blocks=(2, 2, 2, 2)):
        super().__init__()
        layers, channels = [nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                            nn.MaxPool2d(3, 2, 1)], 16
        for index, count in enumerate(blocks):
            for _ in range(count):
                layers.append(DenseLayer(channels, growth))
                channels += growth
            if index < len(blocks) - 1:
                layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels // 2, 1, bias=False),
                           nn.AvgPool2d(2, 2)]
                channels //= 2
        layers += [nn.BatchNorm2d(channels), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def channel_shuffle(x, groups):
    """torchvision's: view, transpose the two group axes, view back."""
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    return torch.transpose(x, 1, 2).contiguous().view(batch, -1, height, width)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, half, act=nn.ReLU))
        wide = cin if stride > 1 else half
        self.branch2 = nn.Sequential(conv_bn(wide, half, act=nn.ReLU), conv_bn(half, half, 3, stride, groups=half),
                                     conv_bn(half, half, act=nn.ReLU))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 x0.5's layout (channel split, concat, channel shuffle) at a quarter of its width."""

    def __init__(self, classes=1000, widths=(12, 24, 48), repeats=(2, 2, 2)):
        super().__init__()
        layers, cin = [conv_bn(3, 8, 3, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)], 8
        for width, count in zip(widths, repeats):
            for index in range(count):
                layers.append(ShuffleUnit(cin, width, 2 if index == 0 else 1))
                cin = width
        layers.append(conv_bn(cin, 256, act=nn.ReLU))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(256, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean([2, 3]))


class BasicConv(nn.Sequential):
    """Inception's conv + BN + ReLU, kernels and pads as (height, width)."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class InceptionA(nn.Module):
    def __init__(self, cin, pool):
        super().__init__()
        self.b1 = BasicConv(cin, 8, 1)
        self.b5 = nn.Sequential(BasicConv(cin, 6, 1), BasicConv(6, 8, 5, padding=2))
        self.b3 = nn.Sequential(BasicConv(cin, 8, 1), BasicConv(8, 12, 3, padding=1), BasicConv(12, 12, 3, padding=1))
        self.bp = BasicConv(cin, pool, 1)

    def forward(self, x):
        pooled = self.bp(F.avg_pool2d(x, 3, 1, 1))
        return torch.cat([self.b1(x), self.b5(x), self.b3(x), pooled], 1)


class InceptionC(nn.Module):
    """The factorised 7x7: 1x7 then 7x1 convolutions (non-square kernels)."""

    def __init__(self, cin, mid):
        super().__init__()
        self.b1 = BasicConv(cin, 16, 1)
        self.b7 = nn.Sequential(BasicConv(cin, mid, 1), BasicConv(mid, mid, (1, 7), padding=(0, 3)),
                                BasicConv(mid, 16, (7, 1), padding=(3, 0)))
        self.b7d = nn.Sequential(BasicConv(cin, mid, 1), BasicConv(mid, mid, (7, 1), padding=(3, 0)),
                                 BasicConv(mid, 16, (1, 7), padding=(0, 3)))
        self.bp = BasicConv(cin, 16, 1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b7(x), self.b7d(x), self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class InceptionV3(nn.Module):
    """Inception-v3's blocks (mixed branches, factorised 1x7 / 7x1 kernels, average-pool branches) on a
    short stem, at a small width; transform_input=True renormalises the image channel by channel first, as
    torchvision's inception_v3 and googlenet do with their pretrained weights."""

    def __init__(self, classes=1000, transform_input=False):
        super().__init__()
        self.transform_input = transform_input
        self.features = nn.Sequential(
            BasicConv(3, 8, 3, 2, 1), nn.MaxPool2d(3, 2, 1), BasicConv(8, 16, 3, 1, 1), nn.MaxPool2d(3, 2, 1),
            InceptionA(16, 4), nn.MaxPool2d(3, 2, 1), InceptionC(32, 8), nn.MaxPool2d(3, 2, 1), InceptionC(64, 8))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        if self.transform_input:  # torchvision's code, word for word
            x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
            x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
            x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
            x = torch.cat((x_ch0, x_ch1, x_ch2), 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class SpatialGateNet(nn.Module):
    """Mish and SELU activations and scSE's gates (a per-channel squeeze-and-excitation gate and a spatial
    one, x * sigmoid(conv1x1(x)) with one output channel, added), in a small plain network."""

    def __init__(self, classes=1000):
        super().__init__()
        self.stem = conv_bn(3, 8, 3, 2, act=nn.Mish)
        self.body = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.SELU())
        self.channel_gate = SqueezeExcite(16, 4, act=nn.ReLU)
        self.spatial_gate = nn.Conv2d(16, 1, 1)
        self.top = conv_bn(16, 32, 3, 2, act=nn.Mish)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.body(self.stem(x))
        x = self.channel_gate(x) + x * torch.sigmoid(self.spatial_gate(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.top(x), 1), 1))


class PooledSelfGate(nn.Module):
    """A map times its own pooled vector, with no layer between (a gate whose branch is the pool alone), in the
    forms user code writes it: the mean kept 4-D or unsqueezed back, adaptive pooling, channels last, a
    sigmoid on the pooled vector, the pool as the first factor."""

    def __init__(self, form, classes=1000):
        super().__init__()
        self.form = form
        self.stem = conv_bn(3, 8, 3, 2, act=nn.ReLU)
        self.body = conv_bn(8, 16, 3, 2, act=nn.SiLU)
        self.top = conv_bn(16, 32, 3, 2, act=nn.ReLU)
        self.fc = nn.Linear(32, classes)

    def gated(self, x):
        form = self.form
        if form == "mean":
            return x * x.mean((2, 3), keepdim=True)
        if form == "adaptive_first":
            return F.adaptive_avg_pool2d(x, 1) * x
        if form == "vector":
            return x * x.mean((2, 3))[:, :, None, None]
        if form == "sigmoid":
            return x * torch.sigmoid(x.mean((2, 3), keepdim=True))
        if form == "sigmoid_vector":
            return x * torch.sigmoid(x.mean((2, 3)))[:, :, None, None]
        last = x.permute(0, 2, 3, 1)  # "channels_last": the product on N x H x W x C
        return (last * torch.sigmoid(last.mean((1, 2), keepdim=True))).permute(0, 3, 1, 2)

    def forward(self, x):
        x = self.gated(self.body(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.top(x), 1), 1))


class RegNetBlock(nn.Module):
    """RegNetY's (and, without the gate, RegNetX's and ResNeXt's) bottleneck: 1x1, a grouped 3x3 (width per
    group fixed), squeeze-and-excitation with ReLU and Sigmoid (Y), 1x1, projection shortcut at stride 2."""

    def __init__(self, cin, cout, stride, group_width, se=True, bottleneck=1.0):
        super().__init__()
        wide = int(cout * bottleneck)
        layers = [conv_bn(cin, wide, act=nn.ReLU), conv_bn(wide, wide, 3, stride, groups=wide // group_width,
                                                           act=nn.ReLU)]
        if se:
            layers.append(SqueezeExcite(wide, max(1, cin // 4), act=nn.ReLU))
        layers.append(conv_bn(wide, cout))
        self.body = nn.Sequential(*layers)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.shortcut(x) + self.body(x))


class RegNet(nn.Module):
    """RegNetY-400MF's layout at a small width (se=True), or RegNetX's (se=False); with `bottleneck` 0.5 and
    groups of 4 channels it is ResNeXt's block, with wide 1x1s a Wide ResNet's."""

    def __init__(self, classes=1000, se=True, widths=(16, 32, 64), group_width=8, bottleneck=1.0):
        super().__init__()
        layers, cin = [conv_bn(3, 16, 3, 2, act=nn.ReLU)], 16
        for width in widths:
            layers += [RegNetBlock(cin, width, 2, group_width, se, bottleneck),
                       RegNetBlock(width, width, 1, group_width, se, bottleneck)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class GoogLeNetInception(nn.Module):
    """GoogLeNet's Inception module as torchvision writes it: 1x1; 1x1 then 3x3; 1x1 then 3x3 (torchvision's
    stand-in for the paper's 5x5); a 3x3 max pool at stride 1 (ceil mode) then 1x1."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, pool):
        super().__init__()
        self.b1 = BasicConv(cin, c1, 1)
        self.b3 = nn.Sequential(BasicConv(cin, c3r, 1), BasicConv(c3r, c3, 3, padding=1))
        self.b5 = nn.Sequential(BasicConv(cin, c5r, 1), BasicConv(c5r, c5, 3, padding=1))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv(cin, pool, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1) in eval form (no auxiliary heads): 7x7/2 stem, ceil-mode max pools,
    Inception modules, global pool, dropout, Linear; at a small width."""

    def __init__(self, classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            BasicConv(3, 8, 7, 2, 3), nn.MaxPool2d(3, 2, ceil_mode=True), BasicConv(8, 8, 1),
            BasicConv(8, 24, 3, padding=1), nn.MaxPool2d(3, 2, ceil_mode=True),
            GoogLeNetInception(24, 8, 12, 16, 4, 4, 4), GoogLeNetInception(32, 16, 16, 24, 4, 12, 8),
            nn.MaxPool2d(3, 2, ceil_mode=True), GoogLeNetInception(60, 24, 12, 26, 4, 6, 8),
            nn.MaxPool2d(2, 2, ceil_mode=True), GoogLeNetInception(64, 32, 20, 40, 4, 16, 16))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(104, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class MNASNet(nn.Module):
    """MNASNet-A1's layout: a separable first block, then inverted residuals with ReLU, 3x3 and 5x5
    depthwise kernels, squeeze-and-excitation in some stages; 1x1 to 1280 (here 160), pool, Linear."""

    def __init__(self, classes=1000):
        super().__init__()
        layers = [conv_bn(3, 8, 3, 2, act=nn.ReLU), conv_bn(8, 8, 3, groups=8, act=nn.ReLU), conv_bn(8, 4)]
        cin = 4
        for expand, cout, stride, kernel, se in ((6, 8, 2, 3, False), (3, 12, 2, 5, True), (6, 24, 2, 3, False),
                                                 (6, 32, 1, 3, True), (6, 48, 2, 5, True)):
            layers.append(MBConv(cin, cout, kernel, stride, expand, act=nn.ReLU, se=se))
            cin = cout
        layers.append(conv_bn(cin, 160, act=nn.ReLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(160, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class FusedMBConv(nn.Module):
    """EfficientNetV2's early block: a full 3x3 conv expands (SiLU), a 1x1 projects; residual at stride 1."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        wide = cin * expand
        self.block = nn.Sequential(conv_bn(cin, wide, 3, stride, act=nn.SiLU), conv_bn(wide, cout)) if expand != 1 \
            else conv_bn(cin, cout, 3, stride, act=nn.SiLU)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class EfficientNetV2(nn.Module):
    """EfficientNetV2-S's layout: Fused-MBConv stages, then MBConv stages with squeeze-and-excitation (SiLU);
    1x1 head conv, pool, Linear; at a small width."""

    def __init__(self, classes=1000):
        super().__init__()
        layers = [conv_bn(3, 8, 3, 2, act=nn.SiLU), FusedMBConv(8, 8, 1, 1), FusedMBConv(8, 16, 2, 4),
                  FusedMBConv(16, 16, 1, 4), FusedMBConv(16, 24, 2, 4)]
        layers += [MBConv(24, 32, 3, 2, 4), MBConv(32, 32, 3, 1, 4), MBConv(32, 48, 3, 2, 6)]
        layers.append(conv_bn(48, 160, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(160, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class CBAM(nn.Module):
    """CBAM (Woo et al., 2018): a channel gate, sigmoid(mlp(avgpool(x)) + mlp(maxpool(x))) with one shared
    MLP, then a spatial gate, sigmoid(conv7x7([mean_c(x), max_c(x)])). linear=False writes the MLP as 1x1
    convs on the pooled maps (timm's form); linear=True as its reference code does: Flatten, Linear, ReLU,
    Linear, the gate unsqueezed twice and expanded to the map, the channel maximum without its axis and
    unsqueezed back."""

    def __init__(self, channels, reduction=4, linear=False):
        super().__init__()
        hidden = channels // reduction
        self.linear = linear
        if linear:
            self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        else:
            self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        logits = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        if self.linear:
            x = x * torch.sigmoid(logits).unsqueeze(2).unsqueeze(3).expand_as(x)
            pooled = torch.cat([torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)], dim=1)
        else:
            x = x * torch.sigmoid(logits)
            pooled = torch.cat([x.mean(dim=1, keepdim=True), torch.max(x, dim=1, keepdim=True)[0]], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class SqueezeExciteLinear(nn.Module):
    """Squeeze-and-excitation as the widely copied PyTorch SE layer writes it: the pooled map viewed as
    N x C, Linear, ReLU, Linear, Sigmoid, viewed back as N x C x 1 x 1 and expanded to the map."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Sigmoid())

    def forward(self, x):
        n, c = x.shape[:2]
        return x * self.fc(F.adaptive_avg_pool2d(x, 1).view(n, c)).view(n, c, 1, 1).expand_as(x)


class EfficientChannelAttention(nn.Module):
    """ECA (Wang et al., 2020), as its reference code writes it: a 1-D conv of k taps along the channels of
    the pooled map (squeeze(-1), transpose), back to N x C x 1 x 1, a sigmoid gate expanded to the map."""

    def __init__(self, k=3, form="reference"):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)
        self.form = form

    def forward(self, x):
        if self.form == "timm":  # timm's EcaModule: views instead of squeeze and transpose, the gate before the view
            y = self.conv(x.mean((2, 3)).view(x.shape[0], 1, -1))
            return x * torch.sigmoid(y).view(x.shape[0], -1, 1, 1).expand_as(x)
        if self.form == "mean":  # the pool as a mean, the product broadcasting the gate (no expand_as)
            y = self.conv(x.mean((2, 3), keepdim=True).squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
            return x * torch.sigmoid(y)
        y = self.conv(F.adaptive_avg_pool2d(x, 1).squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * torch.sigmoid(y).expand_as(x)


class GatedResNet(nn.Module):
    """A small ResNet with a gate in its residual blocks: CBAM (ResNet-CBAM's layout), SE (SE-ResNet's) or
    ECA (ECA-ResNet's)."""

    def __init__(self, classes=1000, gate=None):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1))
        self.block = nn.Sequential(conv_bn(16, 16, 3, act=nn.ReLU), conv_bn(16, 16, 3), gate or CBAM(16))
        self.top = conv_bn(16, 32, 3, 2, act=nn.ReLU)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(x + self.block(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.top(x), 1), 1))


class PoolWrittenOut(nn.Module):
    """A small CNN whose global average pool is written as user code writes it: `adaptive_avg_pool2d(x, 1)
    .squeeze(-1).squeeze(-1)` (one axis at a time) or `x.flatten(2).mean(-1)`."""

    def __init__(self, form, classes=1000):
        super().__init__()
        self.form = form
        self.features = nn.Sequential(conv_bn(3, 16, 3, 2, act=nn.ReLU), conv_bn(16, 32, 3, 2, act=nn.ReLU))
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.features(x)
        if self.form == "squeeze_twice":
            return self.fc(F.adaptive_avg_pool2d(x, 1).squeeze(-1).squeeze(-1))
        return self.fc(x.flatten(2).mean(-1))


class RepMixer(nn.Module):
    """FastViT's token mixer before reparameterisation: x + scale * (BN(depthwise conv(x)) - BN(x))."""

    def __init__(self, dim):
        super().__init__()
        self.mixer = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False), nn.BatchNorm2d(dim))
        self.norm = nn.BatchNorm2d(dim)
        self.scale = nn.Parameter(torch.rand(dim, 1, 1) + 0.5)

    def forward(self, x):
        return x + self.scale * (self.mixer(x) - self.norm(x))


class StarReLU(nn.Module):
    """MetaFormer's activation, s * relu(x) ** 2 + b (learnt scalars), or with relu(x) * relu(x)."""

    def __init__(self, squared="pow"):
        super().__init__()
        self.squared = squared
        self.scale, self.bias = nn.Parameter(torch.tensor([0.8])), nn.Parameter(torch.tensor([-0.1]))

    def forward(self, x):
        r = F.relu(x)
        return self.scale * (r ** 2 if self.squared == "pow" else r * r) + self.bias


class GatedConvBlock(nn.Module):
    """MambaOut's block on a channels-last map: LayerNorm, one Linear split three ways, a depthwise 7x7 conv of
    one part, GELU of another gating the rest and the conv's output, Linear, residual."""

    def __init__(self, dim):
        super().__init__()
        self.norm, hidden, self.conv_channels = nn.LayerNorm(dim), 2 * dim, dim // 2
        self.fc1, self.fc2 = nn.Linear(dim, 2 * hidden), nn.Linear(hidden, dim)
        self.conv = nn.Conv2d(self.conv_channels, self.conv_channels, 7, padding=3, groups=self.conv_channels)
        self.split = [hidden, hidden - self.conv_channels, self.conv_channels]

    def forward(self, x):
        g, i, c = torch.split(self.fc1(self.norm(x)), self.split, dim=-1)
        c = self.conv(c.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.fc2(F.gelu(g) * torch.cat((i, c), dim=-1))


class MobileMix(nn.Module):
    """Today's mobile CNNs beyond part 3's list, at toy width: FastViT's RepMixer (a difference of two maps),
    MetaFormer's StarReLU (Squared ReLU), MambaOut's gated conv blocks after a downsampling conv then
    LayerNorm (whose input has a weight map of 0 in 'last', ModelSpec.cancelled_by_norm), and RepViT's
    distillation head (two BatchNorm-Linear classifiers of the pooled map, averaged)."""

    def __init__(self, classes=1000, squared="pow"):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2), StarReLU(squared), RepMixer(16), conv_bn(16, 16, 3, 2),
                                  nn.GELU(), RepMixer(16))
        self.down, self.down_norm = nn.Conv2d(16, 24, 3, 2, 1), nn.LayerNorm(24)
        self.blocks = nn.Sequential(GatedConvBlock(24), GatedConvBlock(24))
        self.head = nn.Sequential(nn.BatchNorm1d(24), nn.Linear(24, classes))
        self.head_dist = nn.Sequential(nn.BatchNorm1d(24), nn.Linear(24, classes))

    def forward(self, x):
        x = self.down_norm(self.down(self.stem(x)).permute(0, 2, 3, 1))
        x = self.blocks(x).mean((1, 2))
        return (self.head(x) + self.head_dist(x)) / 2


class PoolMixer(nn.Module):
    """PoolFormer's block: x + s1 * (pool(GN(x)) - GN(x)), x + s2 * MLP(GN(x)); GroupNorm of one group."""

    def __init__(self, dim):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(1, dim), nn.GroupNorm(1, dim)
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 4 * dim, 1), nn.GELU(), nn.Conv2d(4 * dim, dim, 1))
        self.scale1, self.scale2 = (nn.Parameter(torch.rand(dim, 1, 1) + 0.5) for _ in range(2))

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.scale1 * (self.pool(y) - y)
        return x + self.scale2 * self.mlp(self.norm2(x))


class PreActGroupNormBlock(nn.Module):
    """BiT's (ResNetV2's) pre-activation block with GroupNorm: GN, ReLU, conv, GN, ReLU, conv, residual."""

    def __init__(self, dim, groups=4):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(groups, dim), nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1, bias=False),
                                  nn.GroupNorm(groups, dim), nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1, bias=False))

    def forward(self, x):
        return x + self.body(x)


class GroupNormNet(nn.Module):
    """PoolFormer's and BiT's GroupNorm layouts at toy width: a PoolFormer stage, a strided conv, a BiT block,
    then GroupNorm, the pool and a Linear classifier. `shuffled`: a channel shuffle just before that last
    GroupNorm, whose first view ONNX Runtime's ReshapeFusion used to merge with the shuffle's last one."""

    def __init__(self, classes=1000, shuffled=False):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 7, 4, 2), PoolMixer(16), PoolMixer(16),
                                      nn.Conv2d(16, 32, 3, 2, 1), PreActGroupNormBlock(32))
        self.shuffled = shuffled
        self.norm = nn.Sequential(nn.GroupNorm(4, 32), nn.ReLU())
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(self.norm(channel_shuffle(x, 4) if self.shuffled else x).mean((2, 3)))


class AntiAliasDownsample(nn.Module):
    """TResNet's and antialiased-cnns' downsampling: reflect padding, then a fixed binomial blur with stride 2."""

    def __init__(self, channels):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur", (taps[:, None] * taps[None, :] / 16).expand(channels, 1, 3, 3).contiguous())

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.blur, stride=2, groups=x.shape[1])


class TResNetBlock(nn.Module):
    """TResNet's basic block: a 3x3 conv (LeakyReLU), anti-aliased where it downsamples, a 3x3 conv, a
    squeeze-and-excitation gate, and a shortcut that average-pools before its 1x1 conv."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        leaky = lambda: nn.LeakyReLU(1e-3)
        self.conv1 = nn.Sequential(conv_bn(cin, cout, 3, act=leaky), *([AntiAliasDownsample(cout)] if stride == 2 else []))
        self.conv2 = conv_bn(cout, cout, 3)
        self.se = SqueezeExcite(cout, max(8, cout // 4), act=nn.ReLU)
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            *([nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)] if stride == 2 else []), conv_bn(cin, cout, 1))

    def forward(self, x):
        return F.relu(self.se(self.conv2(self.conv1(x))) + self.short(x))


class TResNet(nn.Module):
    """TResNet's layout at a reduced width: a space-to-depth stem (view, permute, view), LeakyReLU blocks with
    anti-aliased downsampling (reflect padding and a blur), SE gates, a linear classifier."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(48, 16, 3, act=lambda: nn.LeakyReLU(1e-2))
        self.blocks = nn.Sequential(TResNetBlock(16, 16, 1), TResNetBlock(16, 32, 2), TResNetBlock(32, 48, 2))
        self.fc = nn.Linear(48, 1000)

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, c, h // 4, 4, w // 4, 4).permute(0, 3, 5, 1, 2, 4).contiguous().view(n, c * 16, h // 4, w // 4)
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


class InstanceBatchNorm(nn.Module):
    """IBN-Net's IBN-a: InstanceNorm with an affine on the first half of the channels, BatchNorm on the rest."""

    def __init__(self, channels):
        super().__init__()
        self.half = channels // 2
        self.instance, self.batch = nn.InstanceNorm2d(self.half, affine=True), nn.BatchNorm2d(channels - self.half)

    def forward(self, x):
        first, rest = torch.split(x, [self.half, x.shape[1] - self.half], 1)
        return torch.cat((self.instance(first), self.batch(rest)), 1)


class IBNBlock(nn.Module):
    """IBN-ResNet's bottleneck: IBN-a after its first conv; IBN-b's InstanceNorm without an affine after the
    residual sum, before the ReLU, where `after_sum`."""

    def __init__(self, cin, cout, stride, after_sum=False):
        super().__init__()
        middle = cout // 2
        self.body = nn.Sequential(nn.Conv2d(cin, middle, 1, bias=False), InstanceBatchNorm(middle), nn.ReLU(),
                                  conv_bn(middle, middle, 3, stride, act=nn.ReLU), conv_bn(middle, cout, 1))
        self.short = nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride)
        self.norm = nn.InstanceNorm2d(cout) if after_sum else nn.Identity()

    def forward(self, x):
        return torch.relu(self.norm(self.body(x) + self.short(x)))


class IBNResNet(nn.Module):
    """IBN-ResNet's layout at a reduced width: a conv stem, IBN-a bottlenecks, one IBN-b sum, a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1))
        self.blocks = nn.Sequential(IBNBlock(16, 32, 1), IBNBlock(32, 48, 2, after_sum=True), IBNBlock(48, 64, 2))
        self.fc = nn.Linear(64, 1000)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


class PyramidBlock(nn.Module):
    """PyramidNet's basic block: BN, conv, BN, ReLU, conv, BN and no ReLU after the sum. Its shortcut
    average-pools where the block strides and widens the map with zero channels to the block's width:
    F.pad over the channels (pytorchcv), or torch.cat with zeros after the map (the authors' code) or,
    `zeros` "before", ahead of it."""

    def __init__(self, cin, cout, stride, zeros="pad"):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                  nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.pool = nn.AvgPool2d(2) if stride == 2 else nn.Identity()
        self.extra, self.zeros = cout - cin, zeros

    def forward(self, x):
        short = self.pool(x)
        if self.zeros == "pad":
            short = F.pad(short, (0, 0, 0, 0, 0, self.extra))
        else:
            n, _, height, width = short.shape
            zeros = short.new_zeros(n, self.extra, height, width)
            short = torch.cat((zeros, short) if self.zeros == "before" else (short, zeros), 1)
        return self.body(x) + short


class PyramidNet(nn.Module):
    """PyramidNet's layout at a reduced width: most blocks a few channels wider than the last, the zero
    channels padded onto each shortcut in the three ways `PyramidBlock` reads (and a Pad of no channels,
    where a block is as wide as the last, as pytorchcv writes it); BN and ReLU before the pool."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2)
        self.blocks = nn.Sequential(PyramidBlock(16, 20, 1), PyramidBlock(20, 20, 1),
                                    PyramidBlock(20, 24, 2, zeros="after"),
                                    PyramidBlock(24, 28, 1, zeros="before"), PyramidBlock(28, 32, 2))
        self.top = nn.Sequential(nn.BatchNorm2d(32), nn.ReLU())
        self.fc = nn.Linear(32, 1000)

    def forward(self, x):
        return self.fc(self.top(self.blocks(self.stem(x))).mean((2, 3)))


class DilatedBlock(nn.Module):
    """DRN's residual block: two 3x3 convs whose taps are `dilation` apart (padded by as much, so the map keeps
    its size), the first maybe strided as well (a dilated conv with stride 2); a 1x1 shortcut where the
    shape changes."""

    def __init__(self, cin, cout, dilation, stride=1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(cout))
        self.short = nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride)

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


class DilatedPyramid(nn.Module):
    """ESPNet's and DeepLab's spatial pyramid: a 1x1 reduction, then depthwise and dense 3x3 convs dilated by
    1, 2 and 4 on it side by side, concatenated (ASPP without its image pool, which needs a Resize)."""

    def __init__(self, cin, branch):
        super().__init__()
        self.reduce = conv_bn(cin, branch, 1, act=nn.ReLU)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(branch, branch, 3, 1, rate, dilation=rate, groups=branch if rate == 2 else 1,
                                    bias=False), nn.BatchNorm2d(branch), nn.ReLU()) for rate in (1, 2, 4))

    def forward(self, x):
        x = self.reduce(x)
        return torch.cat([branch(x) for branch in self.branches], 1)


class DilatedResNet(nn.Module):
    """DRN-C's layout at a reduced width: a strided stem and stage, then stages that dilate instead of
    striding (by 2, by 4, one of them strided too), a dilated pyramid, a classifier on the pooled map."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 7, 2, act=nn.ReLU), DilatedBlock(16, 16, 1))
        self.stages = nn.Sequential(DilatedBlock(16, 24, 1, stride=2), DilatedBlock(24, 32, 2, stride=2),
                                    DilatedBlock(32, 32, 2), DilatedBlock(32, 48, 4))
        self.pyramid = DilatedPyramid(48, 16)
        self.fc = nn.Linear(48, 1000)

    def forward(self, x):
        return self.fc(self.pyramid(self.stages(self.stem(x))).mean((2, 3)))


class TextLineBlock(nn.Module):
    """PaddleOCR's ResNet-vd block where a text recogniser halves the height only: a 3x3 conv at stride 2x1,
    then a 3x3; the shortcut an average pool of a 2x1 window at stride 2x1 (ceil mode) and a 1x1 conv."""

    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, (2, 1), 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = nn.Sequential(nn.AvgPool2d((2, 1), (2, 1), ceil_mode=True), conv_bn(cin, cout, 1))

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


class TextLineNet(nn.Module):
    """The strides of text-line networks (PaddleOCR's direction classifier and recognisers, CRNN), which keep
    a line's width: a strided stem, a depthwise conv at stride 2x1 (PaddleOCR's MobileNetV3), CRNN's 2x2 max
    pool at stride 2x1 with a column of padding each side, a ResNet-vd block at 2x1, and a 1x3 conv at
    stride 1x2; a classifier on the pooled map."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2, act=nn.Hardswish)
        self.depthwise = nn.Sequential(nn.Conv2d(16, 16, 3, (2, 1), 1, groups=16, bias=False), nn.BatchNorm2d(16),
                                       nn.Hardswish(), conv_bn(16, 24, 1, act=nn.Hardswish))
        self.crnn = nn.Sequential(nn.Conv2d(24, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, (2, 1), (0, 1)))
        self.block = TextLineBlock(32, 48)
        self.wide = nn.Sequential(nn.Conv2d(48, 48, (1, 3), (1, 2), (0, 1), bias=False), nn.BatchNorm2d(48),
                                  nn.ReLU())
        self.fc = nn.Linear(48, 1000)

    def forward(self, x):
        return self.fc(self.wide(self.block(self.crnn(self.depthwise(self.stem(x))))).mean((2, 3)))


def randomise_with_1d(model):
    """randomise, and the BatchNorm1d layers of a head too."""
    model = randomise(model)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model


randomise = randomise_batchnorm  # seeded weights, random BatchNorm statistics and LayerNorm affines


def seeded(make, seed: int):
    """A network whose weights come from their own seed rather than from whatever the global generator holds
    after the tests before it (left as it was). On random weights some outputs are near-cancelling means
    (an interactive_avg of 1e-6 from terms of 1e-4), which bfloat16 verification meets or misses by the draw."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return randomise(make())


FAMILIES = {
    "efficientnet_b0": lambda: randomise(EfficientNetB0()),
    "mobilenetv3": lambda: randomise(MobileNetV3()),
    "convnext": lambda: randomise(ConvNeXt()),
    "densenet": lambda: randomise(DenseNet()),
    "shufflenetv2": lambda: randomise(ShuffleNetV2()),
    "inceptionv3": lambda: randomise(InceptionV3()),
    "convnext_channels_first": lambda: randomise(ConvNeXt(norm2d=ChannelsFirstLayerNorm)),
    "spatial_gates": lambda: randomise(SpatialGateNet()),
    "cbam": lambda: randomise(GatedResNet()),
    "cbam_reference": lambda: seeded(lambda: GatedResNet(gate=CBAM(16, linear=True)), 100),
    "se_linear": lambda: seeded(lambda: GatedResNet(gate=SqueezeExciteLinear(16)), 100),
    "eca": lambda: seeded(lambda: GatedResNet(gate=EfficientChannelAttention(5)), 100),
    "mobilenetv3_handwritten": lambda: seeded(lambda: MobileNetV3(handwritten=True), 100),
    "regnety": lambda: randomise(RegNet()),
    "resnext": lambda: randomise(RegNet(se=False, widths=(32, 64, 128), group_width=4, bottleneck=0.5)),
    "googlenet": lambda: randomise(GoogLeNet()),
    "mnasnet": lambda: randomise(MNASNet()),
    "efficientnetv2": lambda: randomise(EfficientNetV2()),
    "convnextv2": lambda: randomise(ConvNeXt(grn="authors")),
    "convnextv2_timm": lambda: randomise(ConvNeXt(grn="timm")),
    "eca_timm": lambda: seeded(lambda: GatedResNet(gate=EfficientChannelAttention(5, form="timm")), 100),
    # two gates in a row: ONNX Runtime's transpose optimiser moves the first ECA's last Transpose past its
    # Unsqueeze and Sigmoid (found by scripts/fuzz_import.py, 2026-12-07)
    "eca_twice": lambda: seeded(lambda: GatedResNet(gate=nn.Sequential(
        EfficientChannelAttention(5, form="mean"), EfficientChannelAttention(3, form="mean"))), 101),
    "mobile_mix": lambda: seeded(lambda: randomise_with_1d(MobileMix()), 7),
    "mobile_mix_mul": lambda: seeded(lambda: randomise_with_1d(MobileMix(squared="mul")), 8),
    "groupnorm": lambda: seeded(GroupNormNet, 9),
    "groupnorm_shuffled": lambda: seeded(lambda: GroupNormNet(shuffled=True), 9),
    "tresnet": lambda: seeded(TResNet, 10),
    "ibn": lambda: seeded(IBNResNet, 11),
    "pyramidnet": lambda: seeded(PyramidNet, 12),
    "dilated": lambda: seeded(DilatedResNet, 13),
    "textline": lambda: seeded(TextLineNet, 14),
}
# at their published sizes, for the benchmark (benchmarks/part3_models.py)
FULL_SIZE = {
    "efficientnet_b0": lambda: randomise(EfficientNetB0(full=True)),
    "convnext_t": lambda: randomise(ConvNeXt(dims=(96, 192, 384, 768), depths=(3, 3, 9, 3))),
}
