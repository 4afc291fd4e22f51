"""The exporter's OpenVINO loader: the rewrite that makes OpenVINO compute our graphs right, its
precision checks, and its refusal without OpenVINO. Skipped with a reason where OpenVINO is missing."""

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from interactive_trt.common.errors import BackendUnavailable
from interactive_trt.forms import openvino as ov_runtime
from interactive_trt.exporter.onnx.verification import run_onnxruntime
from interactive_trt.exporter.onnx.verify import cosine

needs_openvino = pytest.mark.skipif(not ov_runtime.is_installed(),
                                    reason="openvino is not installed (pip install 'interactive-trt[openvino]')")
OPENVINO_MIN_COSINE = 0.9999  # the export's ONNX Runtime bound


def shared_kernel_graph(path, channels: int, kernel: int, padding: int, strides: int = 1):
    """The pattern of our backward pass in three nodes: a Conv, its ReLU, and a ConvTranspose reading
    the Conv's own (square) initializer."""
    weight = np.random.default_rng(channels).standard_normal((channels, channels, kernel, kernel)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "weight"], ["response"], pads=[padding] * 4),
         helper.make_node("Relu", ["response"], ["activation"]),
         helper.make_node("ConvTranspose", ["activation", "weight"], ["gradient"], pads=[padding] * 4,
                          strides=[strides] * 2)],
        "shared", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels, 12, 12])],
        [helper.make_tensor_value_info("response", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("gradient", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "weight")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@needs_openvino
@pytest.mark.parametrize("channels, kernel, padding, strides", [(8, 1, 0, 1), (16, 3, 1, 1), (64, 3, 1, 1),
                                                                (16, 7, 0, 1), (16, 2, 0, 2)])
def test_transposed_convolution_sharing_its_kernel_equals_onnxruntime(tmp_path, channels, kernel, padding, strides):
    """OpenVINO as it reads the file gives cosines near 0 here (the CPU plugin applies the forward
    conv's prepared kernel); through our loader it must equal ONNX Runtime."""
    path = shared_kernel_graph(tmp_path / "shared.onnx", channels, kernel, padding, strides)
    image = np.random.default_rng(0).standard_normal((2, channels, 12, 12), dtype=np.float32)
    expected = run_onnxruntime(path, image, ["response", "gradient"])
    got = ov_runtime.run_openvino(path, image, ["response", "gradient"])
    for name in expected:
        assert got[name].shape == expected[name].shape
        assert cosine(got[name], expected[name]) >= OPENVINO_MIN_COSINE, name


@needs_openvino
def test_rewrite_reexpresses_stride_one_transposed_convolutions(tmp_path):
    ov = ov_runtime.openvino()
    model = ov.Core().read_model(str(shared_kernel_graph(tmp_path / "s1.onnx", 8, 3, 1)))
    assert ov_runtime.rewrite_backward_convolutions(model) == {"reexpressed": 1, "copied": 0}
    kinds = [node.get_type_name() for node in model.get_ordered_ops()]
    assert "ConvolutionBackpropData" not in kinds and kinds.count("Convolution") == 2
    full = ov.Core().read_model(str(shared_kernel_graph(tmp_path / "k7.onnx", 8, 7, 0)))  # fc6's form
    assert ov_runtime.rewrite_backward_convolutions(full) == {"reexpressed": 1, "copied": 0}
    assert {"MatMul", "Col2Im"} <= {node.get_type_name() for node in full.get_ordered_ops()}
    strided = ov.Core().read_model(str(shared_kernel_graph(tmp_path / "s2.onnx", 8, 2, 0, strides=2)))
    assert ov_runtime.rewrite_backward_convolutions(strided) == {"reexpressed": 0, "copied": 1}
    assert [output.get_any_name() for output in model.outputs] == ["response", "gradient"]


def test_bf16_is_refused_in_one_line_where_it_cannot_be_had():
    with pytest.raises(ov_runtime.PrecisionUnavailable, match=r"this CPU has no bfloat16 support .*FP32, INT8\)"):
        ov_runtime.check_inference_precision("bf16", "fp32", ["FP32", "INT8"])
    with pytest.raises(ov_runtime.PrecisionUnavailable, match="computes in fp16 already"):
        ov_runtime.check_inference_precision("bf16", "fp16", ["BF16", "FP32"])
    with pytest.raises(ov_runtime.PrecisionUnavailable, match="choose one of exported, bf16"):
        ov_runtime.check_inference_precision("fp8", "fp32", ["BF16"])
    assert ov_runtime.check_inference_precision("bf16", "fp32", ["BF16", "FP32"]) == "bf16"
    assert ov_runtime.check_inference_precision("exported", "fp16", ["FP32"]) == "f32"


def test_missing_openvino_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(BackendUnavailable, match=r"^OpenVINO is not installed: install the openvino extra: pip install '\.\[openvino\]' in the "
                                                 r"interactive-trt checkout$"):
        ov_runtime.openvino()


@needs_openvino
def test_bf16_reaches_only_products_no_decision_reads(tmp_path):
    """The forward conv feeds a ReLU (a decision): float32. The backward one feeds nothing that decides:
    bfloat16, with float32 in and out."""
    ov = ov_runtime.openvino()
    model = ov.Core().read_model(str(shared_kernel_graph(tmp_path / "s.onnx", 16, 3, 1)))
    ov_runtime.rewrite_backward_convolutions(model)
    assert ov_runtime.reduce_precision(model, "bf16") == 1
    convolutions = [node for node in model.get_ordered_ops() if node.get_type_name() == "Convolution"]
    assert sorted(str(node.get_output_element_type(0)) for node in convolutions) == ["<Type: 'bfloat16'>",
                                                                                   "<Type: 'float32'>"]
    assert [str(output.get_element_type()) for output in model.outputs] == ["<Type: 'float32'>"] * 2


def gelu_graph(path, dtype=TensorProto.FLOAT):
    """GELU as torch.onnx writes F.gelu (x = z (1 + erf(z / sqrt 2)) / 2) and the derivative our backward pass
    writes (Phi(z) + z phi(z), Phi with an Erf of its own)."""
    numpy_type = helper.tensor_dtype_to_np_dtype(dtype)

    def const(name, value):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, numpy_type), name))

    steps = [("Identity", ["image"], "z"),
             ("Div", ["z", "root2"], "scaled"), ("Erf", ["scaled"], "erf"), ("Add", ["erf", "one"], "twice_phi"),
             ("Mul", ["z", "twice_phi"], "zx2"), ("Mul", ["zx2", "half"], "x"),  # the forward pass
             ("Mul", ["z", "root_half"], "scaled_b"), ("Erf", ["scaled_b"], "erf_b"),
             ("Add", ["erf_b", "one"], "twice_phi_b"), ("Mul", ["twice_phi_b", "half"], "phi"),
             ("Mul", ["z", "z"], "square"), ("Mul", ["square", "minus_half"], "exponent"), ("Exp", ["exponent"], "bell"),
             ("Mul", ["z", "bell"], "z_bell"), ("Mul", ["z_bell", "density"], "z_phi"), ("Add", ["phi", "z_phi"], "slope")]
    nodes = [const("root2", np.sqrt(2)), const("one", 1), const("half", 0.5), const("root_half", np.sqrt(0.5)),
             const("minus_half", -0.5), const("density", 1 / np.sqrt(2 * np.pi))]
    nodes += [helper.make_node(kind, inputs, [output]) for kind, inputs, output in steps]
    graph = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("image", dtype, [1, 1, 4, 8])],
                              [helper.make_tensor_value_info("x", dtype, None),
                               helper.make_tensor_value_info("slope", dtype, None)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@needs_openvino
def test_gelus_derivative_reads_phi_off_the_forward_output(tmp_path):
    """The backward pass's Erf goes; Phi comes from x = z Phi(z) as (x z + t / 2) / (z^2 + t), which stays
    finite and right at z = 0, at tiny and large |z|, where x / z would not."""
    import math

    ov = ov_runtime.openvino()
    path = gelu_graph(tmp_path / "gelu.onnx")
    model = ov.Core().read_model(str(path))
    assert ov_runtime.gelu_slopes_from_outputs(model) == 1
    erfs = [node for node in model.get_ordered_ops() if node.get_type_name() == "Erf"]
    assert len(erfs) == 1  # the forward pass's
    half_precision = ov.Core().read_model(str(gelu_graph(tmp_path / "gelu16.onnx", TensorProto.FLOAT16)))
    assert ov_runtime.gelu_slopes_from_outputs(half_precision) == 0  # z^2 overflows in float16

    z = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 1e-6, -1e-6, 1e-3, -1e-3, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0,
                  -5.0, -8.0, -12.0, -30.0, 12.0, 60.0, 2.5e3, -2.5e3]
                 + list(np.random.default_rng(0).standard_normal(8) * 2), dtype=np.float32).reshape(1, 1, 4, 8)
    got = ov_runtime.run_openvino(path, z, ["x", "slope"])
    exact = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) + v * math.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
                      for v in z.astype(np.float64).reshape(-1)]).reshape(z.shape)
    assert np.all(np.isfinite(got["slope"]))
    assert np.max(np.abs(got["slope"] - exact)) <= 2e-6, np.abs(got["slope"] - exact).reshape(-1)
    expected = run_onnxruntime(path, z, ["x", "slope"])
    assert np.all(np.abs(got["x"] - expected["x"]) <= 1e-6 * np.maximum(1, np.abs(expected["x"])))
