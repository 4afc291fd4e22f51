"""Mapping is exact or refused: an op outside the vocabulary, a dilated pool, a non-constant weight, a second
input, an activation without a derivative in the graph, a product of maps that is no gate, a norm over more
than the channels. One line naming the node, its op and what is supported; the command exits 1 and writes
nothing. What part 3 of Any CNN made importable (a Sigmoid, a BatchNorm after a pool, a product of two maps)
is imported exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from interactive_trt.common.errors import OnnxImportError
from interactive_trt.exporter.networks.onnx_import import import_onnx

import onnx_builders as build

REPO = Path(__file__).resolve().parents[4]
SUPPORTED = r"; supported: Add, AveragePool, BatchNormalization, Cast, Celu, Clip, Concat, Conv, Div, Dropout, Elu, "


def network(middle, opset: int = 13, weight_input: bool = False, second_input: bool = False):
    """image -> conv 3x3/2 + ReLU -> middle(g, x) -> conv 1x1 + ReLU -> GlobalAveragePool -> Flatten -> Gemm."""
    g = build.GraphWriter(seed=3)
    extra = []
    if weight_input:
        x = g.one("Conv", ["image", "stem_weight"], name="stem", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
        extra.append(helper.make_tensor_value_info("stem_weight", TensorProto.FLOAT, [8, 3, 3, 3]))
    else:
        x = g.conv("image", 3, 8, 3, 2, pads=(1, 1, 1, 1), name="stem")
    x = g.one("Relu", [x], name="stem_relu")
    if second_input:
        x = g.one("Add", [x, "mask"], name="masked")
        extra.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 8, 112, 112]))
    x, channels = middle(g, x)
    x = g.one("Relu", [g.conv(x, channels, 16, 1, name="last")], name="last_relu")
    x = g.one("Flatten", [g.one("GlobalAveragePool", [x], name="gap")], name="flatten")
    out = g.one("Gemm", [x, g.weight(1000, 16), g.bias(1000)], name="fc", transB=1)
    return g.model("image", [1, 3, 224, 224], out, opset, producer="test", extra_inputs=extra)


def lstm(g, x):
    pooled = g.one("Reshape", [g.one("GlobalAveragePool", [x]), g.const(np.array([1, 1, 8], np.int64))])
    y = g.node("LSTM", [pooled, g.weight(1, 32, 8), g.weight(1, 32, 8)], outputs=1, name="lstm", hidden_size=8)[0]
    return g.one("Reshape", [y, g.const(np.array([1, 8, 1, 1], np.int64))]), 8


def resize(g, x):
    scales = g.const(np.array([1, 1, 2, 2], np.float32))
    return g.one("Resize", [x, "", scales], name="upsample", mode="nearest"), 8


def dilated(g, x):
    """A max pool whose window's taps are 2 apart: a dilated conv is read, a dilated pool is not."""
    return g.one("MaxPool", [x], name="dilated", kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2]), 8


def sigmoid(g, x):
    return g.one("Sigmoid", [g.conv(x, 8, 8, 1, name="gate_conv")], name="gate"), 8


def bn_after_pool(g, x):
    pooled = g.one("MaxPool", [x], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    ones, zeros = g.const(np.ones(8, np.float32)), g.const(np.zeros(8, np.float32))
    return g.one("BatchNormalization", [pooled, ones, zeros, zeros, ones], name="bn"), 8


def product(g, x):
    return g.one("Mul", [x, g.conv(x, 8, 8, 1, name="other")], name="gating"), 8


def nothing(g, x):
    return x, 8


def shrink(g, x):
    return g.one("Shrink", [x], name="shrink", lambd=0.5), 8


def mismatched_product(g, x):
    """A map times a 1 x 1 map that no global pool made (a conv whose window is the whole map)."""
    return g.one("Mul", [g.conv(x, 8, 8, 1, name="map"), g.conv(x, 8, 8, 112, name="other")], name="gating"), 8


def norm_over_everything(g, x):
    ones, zeros = g.const(np.ones((8, 112, 112), np.float32)), g.const(np.zeros((8, 112, 112), np.float32))
    return g.one("LayerNormalization", [x, ones, zeros], name="norm", axis=1), 8


def erf(g, x):
    return g.one("Erf", [x], name="erf"), 8


def expanded_into_a_conv(g, x):
    """A gate expanded to the map's shape and read by a conv: no longer a broadcast the product would make."""
    gate = g.one("Sigmoid", [g.conv(g.one("GlobalAveragePool", [x]), 8, 8, 1, name="gate_conv")], name="gate")
    wide = g.one("Expand", [gate, g.const(np.array([1, 8, 112, 112], np.int64))], name="expand")
    return g.one("Add", [x, g.conv(wide, 8, 8, 3, pads=(1, 1, 1, 1), name="reads_expanded")], name="sum"), 8


def dilated_channel_conv(g, x):
    """ECA's 1-D conv along the channels, dilated: a band matrix too, but refused as dilated convs are."""
    vector = g.one("Squeeze", [g.one("GlobalAveragePool", [x]), g.const(np.array([3], np.int64))], name="squeeze")
    across = g.one("Transpose", [vector], perm=[0, 2, 1])
    across = g.one("Conv", [across, g.weight(1, 1, 3)], name="eca_conv", kernel_shape=[3], dilations=[2], pads=[2, 2])
    gate = g.one("Sigmoid", [g.one("Unsqueeze", [g.one("Transpose", [across], perm=[0, 2, 1]),
                                                 g.const(np.array([3], np.int64))])])
    return g.one("Mul", [x, gate], name="gating"), 8


def group_norm(g, x):
    """GroupNorm as torch.onnx writes it: a Reshape to N x G x -1, InstanceNormalization, back, an affine."""
    grouped = g.one("Reshape", [x, g.const(np.array([1, 2, -1], np.int64))])
    ones, zeros = g.const(np.ones(2, np.float32)), g.const(np.zeros(2, np.float32))
    normed = g.one("InstanceNormalization", [grouped, ones, zeros], name="group_norm", epsilon=1e-5)
    return g.one("Reshape", [normed, g.const(np.array([1, 8, 112, 112], np.int64))]), 8


def instance_norm(g, x):
    """InstanceNormalization of the map viewed as 16 rows of half a channel each: each half normalised over its
    positions (an InstanceNorm of the map itself is GroupNorm of one group per channel, and read)."""
    halves = g.one("Reshape", [x, g.const(np.array([1, 16, -1], np.int64))])
    scale, shift = g.const(np.ones(16, np.float32)), g.const(np.zeros(16, np.float32))
    normed = g.one("InstanceNormalization", [halves, scale, shift], name="instance_norm", epsilon=1e-5)
    return g.one("Reshape", [normed, g.const(np.array([1, 8, 112, 112], np.int64))]), 8


def ceil_average_pool(g, x):
    """timm's avg_down (AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)) where a window runs past
    the map: here a 3x3 window, stride 2, on the 112x112 map."""
    return g.one("AveragePool", [x], name="avg_down", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
                 count_include_pad=0), 8


def split_dropping_the_axis(g, x):
    parts = g.one("SplitToSequence", [x], name="split", axis=1, keepdims=0)
    return g.one("Unsqueeze", [g.one("SequenceAt", [parts, g.const(np.array(0, np.int64))]),
                               g.const(np.array([1], np.int64))]), 1


@pytest.mark.parametrize("middle, weight_input, second_input, pattern", [
    (lstm, False, False, r"node 'lstm' \(LSTM\): a recurrent layer, not a CNN layer" + SUPPORTED),
    (resize, False, False, r"node 'upsample' \(Resize\): resampling has no connection sets" + ".*" + SUPPORTED),
    (dilated, False, False, r"node 'dilated' \(MaxPool\): dilation 2x2; supported: dilation 1 \(a dilated "
                           r"convolution is read, a dilated pool is not\)"),
    (shrink, False, False, r"node 'shrink' \(Shrink\): an activation without a derivative in the InterActive graph"
                         + ".*" + SUPPORTED),
    (mismatched_product, False, False, r"node 'gating' \(Mul\): a product of maps of shapes \[\(8, 112, 112\), "
                                       r"\(8, 1, 1\)\]; supported: equal shapes, a map times a per-channel "
                                       r"gate .*, or times a one-channel map of its size"),
    (norm_over_everything, False, False, r"node 'norm' \(LayerNormalization\): a LayerNormalization from axis 1 of an "
                                         r"NCHW map: over more than its channels"),
    (erf, False, False, r"node 'erf' \(Erf\): op not in the InterActive vocabulary" + SUPPORTED),
    (nothing, True, False, r"graph input 'stem_weight' \[8, 3, 3, 3\] is a second input; supported: one input, "
                           r"the image \('image'\), with every weight stored as an initializer"),
    (nothing, False, True, r"graph input 'mask' \[1, 8, 112, 112\] is a second input"),
    (expanded_into_a_conv, False, False, r"node 'expand' \(Expand\): expanding a globally pooled vector to \[1, 8, 112, 112\]; "
                                         r"supported: a gate expanded to the shape of the map it multiplies"),
    (dilated_channel_conv, False, False, r"node 'eca_conv' \(Conv\): a convolution with weight \[1, 1, 3\] of a "
                                         r"gate's vector viewed as N x 1 x C; supported: one 1-D filter along the "
                                         r"channels, N x 1 x C, stride and dilation 1"),
    (instance_norm, False, False, r"node 'instance_norm' \(InstanceNormalization\): a normalisation over space of "
                                  r"neither a feature map .* nor GroupNorm as torch.onnx writes it"),
    (ceil_average_pool, False, False, r"node 'avg_down' \(AveragePool\): a ceil-mode average pool whose last window "
                                      r"runs past its 112x112 map at the native size 224x224"),
    (split_dropping_the_axis, False, False, r"node 'split' \(SplitToSequence\): it removes the channel axis "
                                            r"\(keepdims=0\); supported: parts that keep it"),
], ids=["lstm", "resize", "dilation", "shrink", "mismatched-product", "norm-over-everything", "erf", "weights-as-inputs",
        "second-input", "expanded-gate-into-a-conv", "dilated-channel-conv", "instance-norm", "ceil-average-pool",
        "split-dropping-the-axis"])
def test_refusals_name_the_node_its_op_and_what_is_supported(tmp_path, middle, weight_input, second_input, pattern):
    opset = 17 if middle is norm_over_everything else 13
    path = build.save(network(middle, opset, weight_input, second_input), tmp_path / "net.onnx")
    with pytest.raises(OnnxImportError, match=pattern) as caught:
        import_onnx(path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))


def prelu(g, x):
    return g.one("PRelu", [x, g.const(np.linspace(0.05, 0.4, 8, dtype=np.float32).reshape(8, 1, 1))], name="prelu"), 8


@pytest.mark.parametrize("middle", [sigmoid, bn_after_pool, product, prelu, group_norm],
                         ids=["sigmoid", "bn-after-pool", "product", "prelu", "group-norm"])
def test_what_part3_made_importable_is_imported_exactly(tmp_path, middle):
    from interactive_trt.exporter.networks.onnx_import import verify_against_source

    imported = import_onnx(build.save(network(middle), tmp_path / "net.onnx"))
    ops = {layer.op for layer in imported.spec.layers} | {layer.activation for layer in imported.spec.layers}
    assert {"sigmoid": "sigmoid", "bn_after_pool": "affine", "product": "mul", "prelu": "prelu",
            "group_norm": "groupnorm"}[middle.__name__] in ops
    assert all(report.passed for report in verify_against_source(imported, ()))


def test_a_batchnorm_on_the_image_is_refused(tmp_path):
    g = build.GraphWriter()
    ones, zeros = g.const(np.ones(3, np.float32)), g.const(np.zeros(3, np.float32))
    x = g.one("BatchNormalization", ["image", ones, zeros, zeros, ones], name="input_bn")
    x = g.one("Relu", [g.conv(x, 3, 8, 3, 2, pads=(1, 1, 1, 1))])
    x = g.one("Flatten", [g.one("GlobalAveragePool", [g.one("Relu", [g.conv(x, 8, 8, 1)])])])
    out = g.one("Gemm", [x, g.weight(1000, 8), g.bias(1000)], transB=1)
    path = build.save(g.model("image", [1, 3, 224, 224], out, 13), tmp_path / "bn.onnx")
    with pytest.raises(OnnxImportError, match=r"node 'input_bn' \(BatchNormalization\): a BatchNormalization of the "
                                              r"input image, not preceded by a Conv"):
        import_onnx(path)


@pytest.mark.parametrize("case, pattern", [
    ("reordered", r"node 'joined' \(Concat\): channels \[2, 1, 0\] of the image along axis 1; supported: the "
                  r"image's channels taken apart, each scaled and shifted by constants, and put back in their order"),
    ("bypassed", r"node 'joined' \(Concat\): other nodes read the image as it is; supported: the image's channels"),
    ("mixed", r"node 'joined' \(Concat\): a concatenation of channels of the input image, channels of the input "
              r"image, a feature map; supported: the image's channels"),
])
def test_image_channels_come_back_in_order_or_are_refused(tmp_path, case, pattern):
    """torchvision's transform_input (x[:, i] rescaled, concatenated) folds into the preprocessing; channels
    put back in another order, or an image other nodes also read, cannot."""
    g = build.GraphWriter()
    order = [2, 1, 0] if case == "reordered" else [0, 1, 2]
    parts = [g.one("Unsqueeze", [g.one("Gather", ["image", g.const(np.array(i, np.int64))], axis=1),
                                 g.const(np.array([1], np.int64))]) for i in order]
    parts = [g.one("Mul", [part, g.const(np.float32(0.5))]) for part in parts]
    if case == "mixed":  # the third channel replaced by a feature map of the image
        parts[2] = g.one("Relu", [g.conv("image", 3, 1, 3, 1, pads=(1, 1, 1, 1))])
    x = g.one("Concat", parts, name="joined", axis=1)
    x = g.one("Relu", [g.conv(x, 3, 8, 3, 2, pads=(1, 1, 1, 1))])
    if case == "bypassed":
        x = g.one("Add", [x, g.one("Relu", [g.conv("image", 3, 8, 3, 2, pads=(1, 1, 1, 1))])])
    x = g.one("Flatten", [g.one("GlobalAveragePool", [x])])
    out = g.one("Gemm", [x, g.weight(1000, 8), g.bias(1000)], transB=1)
    with pytest.raises(OnnxImportError, match=pattern):
        import_onnx(build.save(g.model("image", [1, 3, 224, 224], out, 13), tmp_path / "channels.onnx"))


def classifier_graph(tmp_path, head):
    g = build.GraphWriter()
    x = g.one("Relu", [g.conv("image", 3, 8, 3, 2, pads=(1, 1, 1, 1))])
    for _ in range(4):
        x = g.one("MaxPool", [g.one("Relu", [g.conv(x, 8, 8, 3, pads=(1, 1, 1, 1))])], kernel_shape=[2, 2],
                  strides=[2, 2])
    out = head(g, x)
    return build.save(g.model("image", [1, 3, 224, 224], out, 13), tmp_path / "head.onnx")


def test_an_mlp_head_after_the_pool_is_imported_as_a_pooled_head(tmp_path):
    from interactive_trt.exporter.networks.onnx_import import verify_against_source

    def head(g, x):
        x = g.one("Flatten", [g.one("GlobalAveragePool", [x])])
        x = g.one("Relu", [g.one("Gemm", [x, g.weight(32, 8), g.bias(32)], transB=1)], name="fc1_relu")
        return g.one("Gemm", [x, g.weight(1000, 32), g.bias(1000)], transB=1)

    imported = import_onnx(classifier_graph(tmp_path, head))
    assert imported.spec.head_pooled and len(imported.spec.head_chain()) == 2
    assert all(report.passed for report in verify_against_source(imported, ()))


def test_an_activation_of_the_pooled_vector_itself_is_refused(tmp_path):
    def head(g, x):
        x = g.one("Relu", [g.one("Flatten", [g.one("GlobalAveragePool", [x])])], name="pooled_relu")
        return g.one("Gemm", [x, g.weight(1000, 8), g.bias(1000)], transB=1)

    with pytest.raises(OnnxImportError, match=r"node 'pooled_relu' \(Relu\): relu of a globally pooled vector; "
                                              r"supported: an activation of a feature map"):
        import_onnx(classifier_graph(tmp_path, head))


@pytest.mark.parametrize("order, pattern", [
    ("reversed", r"node 'as_strided' \(Gather\): gathering indices of shape \[1, 8\] along axis 0 of a globally pooled "
                 r"vector; supported: every index in order"),
    ("read", r"node 'pooled_relu' \(Relu\): it reads a pooled vector raveled over the batch \(a Reshape to \[-1\]\)"),
])
def test_a_raveled_pooled_vector_is_read_only_back_in_order(tmp_path, order, pattern):
    """torch.onnx's dynamo exporter writes flatten(adaptive_avg_pool2d(x, 1)) as a Reshape to [-1] and a
    Gather of every index (as_strided); any other gather, or another reader of the raveled vector, is refused."""
    def head(g, x):
        x = g.one("Reshape", [g.one("GlobalAveragePool", [x]), g.const(np.array([-1], np.int64))])
        if order == "read":
            x = g.one("Relu", [x], name="pooled_relu")
        x = g.one("Gather", [x, g.const(np.arange(8, dtype=np.int64)[::-1].reshape(1, 8).copy())], name="as_strided")
        return g.one("Gemm", [x, g.weight(1000, 8), g.bias(1000)], transB=1)

    with pytest.raises(OnnxImportError, match=pattern):
        import_onnx(classifier_graph(tmp_path, head))


@pytest.mark.parametrize("op, pattern", [
    ("GlobalMaxPool", r"node 'pool' \(GlobalMaxPool\): a global max pool does not commute with the classifier "
                      r"\(use a global average pool\); supported: a global max pool in a gate's branch"),
    ("ReduceMax", r"node 'flat' \(Flatten\): it reads 'pool:0', a map reduced over its channels with the axis "
                  r"dropped; supported: an Unsqueeze that puts the axis back"),
])
def test_a_global_max_pool_is_read_in_gates_only(tmp_path, op, pattern):
    """CBAM's global max pool and channel maximum are gate branches; before the classifier a max pool does
    not commute with it, and a reduction that drops the channel axis is a map only once an Unsqueeze puts
    the axis back."""
    def head(g, x):
        if op == "GlobalMaxPool":
            x = g.one("Flatten", [g.one("GlobalMaxPool", [x], name="pool")])
        else:
            x = g.one("Flatten", [g.one("ReduceMax", [x], name="pool", axes=[1], keepdims=0)], name="flat")
        return g.one("Gemm", [x, g.weight(1000, 8 if op == "GlobalMaxPool" else 49), g.bias(1000)], transB=1)

    with pytest.raises(OnnxImportError, match=pattern):
        import_onnx(classifier_graph(tmp_path, head))


def test_a_final_log_softmax_is_refused_with_what_to_do(tmp_path):
    def head(g, x):
        scores = g.one("Gemm", [g.one("Flatten", [g.one("GlobalAveragePool", [x])]), g.weight(1000, 8), g.bias(1000)],
                       transB=1)
        return g.one("LogSoftmax", [scores], name="log_probabilities", axis=1)

    with pytest.raises(OnnxImportError, match=r"node 'log_probabilities' \(LogSoftmax\): a log-softmax of the class "
                                              r"scores .*export the model without its final log_softmax\); supported"):
        import_onnx(classifier_graph(tmp_path, head))


def test_a_classifier_reading_a_flattened_map_directly_is_refused(tmp_path):
    def head(g, x):
        return g.one("Gemm", [g.one("Flatten", [x]), g.weight(1000, 8 * 7 * 7), g.bias(1000)], transB=1,
                     name="fc")

    with pytest.raises(OnnxImportError, match=r"the classifier 'fc:0' reads a flattened 7x7 map directly; supported: "
                                              r"a classifier that is a 1x1 conv over a map"):
        import_onnx(classifier_graph(tmp_path, head))


def test_the_command_refuses_in_one_line_and_writes_nothing(tmp_path):
    path = build.save(network(lstm), tmp_path / "lstm.onnx")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "interactive_trt.exporter.cli", "onnx", str(path), "--out", str(out)],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "node 'lstm' (LSTM): a recurrent layer" in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()
