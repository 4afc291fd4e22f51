"""The ONNX-level rewrite of same-padded stride-1 ConvTransposes into Convs with flipped kernels: the
same numbers (ONNX Runtime, rtol 1e-5), and only the ConvTransposes it is meant for."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from interactive_trt.exporter.onnx.verification import run_onnxruntime
from interactive_trt.forms.rewrite import transposed_as_convolutions


def backward_graph(channels_in: int, channels_out: int, kernel: int, padding: int, strides: int = 1, groups: int = 1):
    """A Conv and the ConvTranspose that reads its kernel, as the exported backward pass has them."""
    weight = np.random.default_rng(kernel).standard_normal(
        (channels_out, channels_in // groups, kernel, kernel)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "weight"], ["response"], pads=[padding] * 4, strides=[strides] * 2,
                          group=groups),
         helper.make_node("ConvTranspose", ["response", "weight"], ["gradient"], pads=[padding] * 4,
                          strides=[strides] * 2, group=groups)],
        "backward", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels_in, 16, 16])],
        [helper.make_tensor_value_info("gradient", TensorProto.FLOAT, ["batch", channels_in, "height", "width"])],
        [numpy_helper.from_array(weight, "weight")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("channels_in, channels_out, kernel, padding, groups, rewritten", [
    (8, 16, 3, 1, 1, True), (4, 4, 5, 2, 1, True),  # same padding: the flipped-kernel Conv
    (8, 8, 3, 1, 8, True), (6, 6, 5, 2, 6, True),  # depthwise (EfficientNet-Lite0)
    (8, 12, 3, 1, 4, True), (6, 4, 3, 1, 2, True),  # grouped: channels swap within each group
    (8, 16, 7, 0, 1, False),  # fc6: its Conv form would mostly multiply padding
    (8, 16, 1, 0, 1, False),  # 1x1 (fc7): a GEMM either way
])
def test_same_padded_transposes_become_convolutions_with_the_same_numbers(tmp_path, channels_in, channels_out,
                                                                         kernel, padding, groups, rewritten):
    model = backward_graph(channels_in, channels_out, kernel, padding, groups=groups)
    onnx.save(model, str(tmp_path / "before.onnx"))
    assert transposed_as_convolutions(model) == int(rewritten)
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "after.onnx"))
    assert [node.op_type for node in model.graph.node] == ["Conv", "Conv" if rewritten else "ConvTranspose"]
    image = np.random.default_rng(0).standard_normal((2, channels_in, 16, 16), dtype=np.float32)
    before = run_onnxruntime(tmp_path / "before.onnx", image, ["gradient"])["gradient"]
    after = run_onnxruntime(tmp_path / "after.onnx", image, ["gradient"])["gradient"]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-4)


def test_a_kernel_read_through_an_identity_is_rewritten_and_the_identity_dropped(tmp_path):
    """torch.onnx gives the second reader of a shared weight an Identity of the initializer."""
    model = backward_graph(6, 6, 3, 1, groups=6)
    model.graph.node.insert(1, helper.make_node("Identity", ["weight"], ["weight_again"]))
    model.graph.node[2].input[1] = "weight_again"
    onnx.save(model, str(tmp_path / "before.onnx"))
    assert transposed_as_convolutions(model) == 1
    assert [node.op_type for node in model.graph.node] == ["Conv", "Conv"]
    onnx.save(model, str(tmp_path / "after.onnx"))
    image = np.random.default_rng(1).standard_normal((1, 6, 16, 16), dtype=np.float32)
    np.testing.assert_allclose(run_onnxruntime(tmp_path / "after.onnx", image, ["gradient"])["gradient"],
                               run_onnxruntime(tmp_path / "before.onnx", image, ["gradient"])["gradient"],
                               rtol=1e-5, atol=1e-4)


def test_strided_transposes_are_left_alone():
    model = backward_graph(8, 8, 3, 1, strides=2)
    assert transposed_as_convolutions(model) == 0
    assert model.graph.node[1].op_type == "ConvTranspose"



def test_small_1x1_transposes_become_convolutions_at_load_and_large_ones_stay(tmp_path):
    """The CPU form's `pointwise` step: a 1x1 stride-1 transposed convolution is the 1x1 Conv with the
    kernel's channels swapped, taken up to POINTWISE_LIMIT weights (VGG's fc7 stays a product)."""
    import onnxruntime as ort

    from interactive_trt.forms.cpu import cpu_model
    from interactive_trt.forms.rewrite import POINTWISE_LIMIT

    for channels_in, channels_out, expected in ((32, 24, 1), (2048, 1024, 0)):
        model = backward_graph(channels_in, channels_out, 1, 0)
        path = tmp_path / f"pointwise_{channels_in}.onnx"
        onnx.save(model, str(path))
        with cpu_model(path, "onnxruntime") as (source, counts):
            assert counts["pointwise"] == expected and (channels_in * channels_out <= POINTWISE_LIMIT) == bool(expected)
            feed = {"image": np.random.default_rng(0).standard_normal((2, channels_in, 16, 16), dtype=np.float32)}
            got = ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, feed)[0]
        want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("kernel, padding, extra, strides, side, rewritten", [
    (3, 1, 1, (2, 2), 16, True),  # EfficientNet's stride-2 3x3 depthwise layers
    (5, 2, 1, (2, 2), 16, True),  # and its 5x5 ones
    (3, 1, 0, (2, 2), 15, True),  # an odd map: no output padding
    (3, 0, 1, (2, 2), 16, True),  # unpadded
    (3, 1, 1, (2, 1), 16, True),  # strided along one axis only
    (3, 1, 2, (3, 3), 16, True),  # stride 3
    (2, 1, 0, (2, 2), 16, False),  # the spread would need cropping: left as it is
])
def test_strided_depthwise_transposes_become_spreads_with_the_same_numbers(tmp_path, kernel, padding, extra, strides,
                                                                          side, rewritten):
    """The CPU form's `spread` step: a strided depthwise transposed convolution is the depthwise Conv of its
    input spread with zeros; ONNX Runtime's grouped ConvTranspose is one small product per channel."""
    import onnxruntime as ort

    from interactive_trt.forms.cpu import cpu_model

    channels = 8
    weight = np.random.default_rng(kernel).standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
    bias = np.random.default_rng(1).standard_normal(channels).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["image"], ["response"]),
         helper.make_node("ConvTranspose", ["response", "weight", "bias"], ["gradient"], pads=[padding] * 4,
                          strides=list(strides), output_padding=[min(extra, s - 1) for s in strides],
                          group=channels, kernel_shape=[kernel, kernel])],
        "backward", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels, "h", "w"])],
        [helper.make_tensor_value_info("gradient", TensorProto.FLOAT, ["batch", channels, "height", "width"])],
        [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")])
    path = tmp_path / "strided.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    feed = {"image": np.random.default_rng(0).standard_normal((2, channels, side, side + 2), dtype=np.float32)}
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    with cpu_model(path, "onnxruntime") as (source, counts):
        assert counts["spread"] == int(rewritten)
        if rewritten:
            ops = [node.op_type for node in onnx.load(source, load_external_data=False).graph.node]
            assert "ConvTranspose" not in ops and ops.count("Conv") == 1
        got = ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
