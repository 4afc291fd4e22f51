"""The ONNX Runtime runner's `form_only`: export verification's "onnxruntime cpu" row makes a session only
where the CPU form changes the file (otherwise it would repeat the "onnxruntime" row, at the price of a
second session of the whole network)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.graph import OnnxGraph
from interactive_trt.runners.onnxrt import OnnxRuntimeRunner


def graph_file(path, transposed: bool):
    """A ReLU alone (no form changes it), or a ReLU then a 1x1 ConvTranspose (the pointwise form does)."""
    weight = np.random.default_rng(0).standard_normal((3, 4, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Relu", ["image"], ["y" if not transposed else "r"])]
    if transposed:
        nodes.append(helper.make_node("ConvTranspose", ["r", "w"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(weight, "w")] if transposed else [])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return OnnxGraph(path, "image", ["y"])


def test_form_only_makes_no_session_where_the_form_is_the_file(tmp_path):
    image = np.random.default_rng(1).standard_normal((1, 3, 4, 4)).astype(np.float32)
    plain = graph_file(tmp_path / "relu.onnx", transposed=False)
    with OnnxRuntimeRunner(plain, device="cpu", form_only=True) as runner:
        assert runner.session is None and not any(runner.counts.values())
        with pytest.raises(InterActiveError, match=r"relu.onnx: no load-time form changes this file"):
            runner.infer({"image": image})
    with OnnxRuntimeRunner(plain, device="cpu") as runner:
        np.testing.assert_array_equal(runner.infer({"image": image})["y"], np.maximum(image, 0))

    changed = graph_file(tmp_path / "transposed.onnx", transposed=True)
    with OnnxRuntimeRunner(changed, device="cpu", form_only=True) as runner:
        assert runner.counts["pointwise"] == 1 and runner.session is not None
        got = runner.infer({"image": image})["y"]
    with OnnxRuntimeRunner(changed, device="cpu", convolutions="direct") as runner:
        np.testing.assert_allclose(got, runner.infer({"image": image})["y"], rtol=1e-5, atol=1e-6)
