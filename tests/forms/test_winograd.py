"""The CPU's Winograd form of 3x3 convolutions: each rewritten layer equals the direct convolution for
any pads, batch and size (tiles that overhang included) in both layouts and on both CPU runtimes; layers
it does not cover stay as they are; whole InterActive graphs in that form agree with the autograd
reference (export verification runs it), and `convolutions="direct"` turns it off."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from interactive_trt.common.errors import InterActiveError
from interactive_trt.forms import openvino as ov_runtime
from interactive_trt.forms import winograd
from interactive_trt.forms.cpu import cpu_model
from interactive_trt.exporter.onnx.export import export_model
from interactive_trt.exporter.onnx.request import ExportRequest
from interactive_trt.exporter.onnx.verification import ONNXRUNTIME_BOUNDS
from interactive_trt.exporter.onnx.verify import compare, cosine
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.runtime.backends import make_runner
from interactive_trt.runtime.inference.model import load_model

RUNTIMES = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    not ov_runtime.is_installed(), reason="openvino is not installed (pip install 'interactive-trt[openvino]')"))]


@pytest.fixture
def every_layer_pays(monkeypatch):
    """The width-reduced test networks have too few channels to pay on their own."""
    for runtime in winograd.MIN_CHANNEL_RATIO:
        monkeypatch.setitem(winograd.MIN_CHANNEL_RATIO, runtime, 1)


def conv_model(weight, bias=None, **attributes) -> onnx.ModelProto:
    inputs = ["x", "w"] + (["b"] if bias is not None else [])
    initializers = [numpy_helper.from_array(weight, "w")] + ([numpy_helper.from_array(bias, "b")] if bias is not None else [])
    graph = helper.make_graph(
        [helper.make_node("Conv", inputs, ["y"], name="layer", kernel_shape=list(weight.shape[2:]), **attributes)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", weight.shape[1] * attributes.get("group", 1), "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", weight.shape[0], "oh", "ow"])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, runtime: str, x: np.ndarray) -> np.ndarray:
    if runtime == "onnxruntime":
        import onnxruntime as ort

        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    core = ov_runtime.openvino().Core()
    compiled = core.compile_model(core.read_model(model.SerializeToString()), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(x)[0]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("layout", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("pads,with_bias", [([1, 1, 1, 1], True), ([0, 0, 0, 0], False), ([2, 1, 0, 2], True)])
def test_a_rewritten_layer_equals_the_direct_convolution(every_layer_pays, runtime, layout, pads, with_bias):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((12, 8, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(12).astype(np.float32) if with_bias else None
    direct = conv_model(weight, bias, pads=pads)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(direct)
    assert winograd.winograd_convolutions(rewritten, layout) == 1
    assert "Conv" in {node.op_type for node in rewritten.graph.node}  # the input transform
    assert "w" not in {item.name for item in rewritten.graph.initializer}  # the kernel nobody reads any more
    for shape in [(2, 8, 17, 23), (1, 8, 16, 16), (3, 8, 5, 9)]:
        x = rng.standard_normal(shape).astype(np.float32)
        expected, got = run(direct, "onnxruntime", x), run(rewritten, runtime, x)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 2e-5 * np.abs(expected).max()


@pytest.mark.parametrize("kind", ["grouped", "strided", "dilated", "1x1", "5x5", "float16", "too few channels"])
def test_layers_outside_the_form_stay_as_they_are(kind):
    rng = np.random.default_rng(1)
    shape, attributes = (8, 8, 3, 3), {"pads": [1, 1, 1, 1]}
    if kind == "grouped":
        shape, attributes["group"] = (8, 4, 3, 3), 2
    elif kind == "strided":
        attributes["strides"] = [2, 2]
    elif kind == "dilated":
        attributes["dilations"] = [2, 2]
    elif kind == "1x1":
        shape, attributes["pads"] = (8, 8, 1, 1), [0, 0, 0, 0]
    elif kind == "5x5":
        shape, attributes["pads"] = (8, 8, 5, 5), [2, 2, 2, 2]
    weight = rng.standard_normal(shape).astype(np.float16 if kind == "float16" else np.float32)
    model = conv_model(weight, **attributes)
    if kind != "too few channels":
        for runtime in winograd.MIN_CHANNEL_RATIO:
            winograd.MIN_CHANNEL_RATIO[runtime], saved = 1, winograd.MIN_CHANNEL_RATIO[runtime]
            try:
                assert winograd.winograd_convolutions(model, runtime) == 0
            finally:
                winograd.MIN_CHANNEL_RATIO[runtime] = saved
    else:
        assert winograd.winograd_convolutions(model, "onnxruntime") == 0  # 8 x 8 / 16 = 4 < 64
    assert [node.op_type for node in model.graph.node] == ["Conv"]


def test_which_layers_pay_follows_the_measured_thresholds():
    def kernel(out, inp):
        return np.zeros((out, inp, 3, 3), dtype=np.float32)

    assert winograd.pays(kernel(128, 128), "onnxruntime") and not winograd.pays(kernel(128, 64), "onnxruntime")
    assert winograd.pays(kernel(256, 256), "openvino") and not winograd.pays(kernel(256, 128), "openvino")


@pytest.fixture(scope="module")
def verified_export(tmp_path_factory):
    """The width-reduced VGG-19 exported and verified with every 3x3 layer in Winograd form on the CPU."""
    saved = dict(winograd.MIN_CHANNEL_RATIO)
    winograd.MIN_CHANNEL_RATIO.update({runtime: 1 for runtime in saved})
    try:
        out = tmp_path_factory.mktemp("winograd")
        messages = []
        path, manifest = export_model(ExportRequest(weights="random", seed=0, width_divisor=8, out=out),
                                      log=messages.append)
    finally:
        winograd.MIN_CHANNEL_RATIO.update(saved)
    return path, manifest, messages


def test_export_verification_runs_the_cpu_form_against_autograd(verified_export):
    path, manifest, messages = verified_export
    assert manifest.verification["passed"] is True
    labels = [report["label"] for report in manifest.verification["reports"]]
    assert sum(label.startswith("onnxruntime cpu vs autograd") for label in labels) >= 2  # noise and photo
    assert any("onnxruntime cpu (the graph as it loads on a CPU:" in message and "layers as Winograd" in message
               and "1 1x1 transposed convolutions as convolutions, 1 as products" in message
               for message in messages)  # fc7 (width 512 here: 0.26M weights), fc6


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cpu_backends_run_the_winograd_form_and_agree_with_autograd(every_layer_pays, verified_export, runtime,
                                                                    small_spec, small_weights, photo_batches):
    path, manifest, _ = verified_export
    proto = onnx.load(str(path))
    threes = sum(1 for node in proto.graph.node if node.op_type == "Conv"
                 and list(helper.get_attribute_value(a) for a in node.attribute if a.name == "kernel_shape") == [[3, 3]])
    image = photo_batches["chelsea"]
    expected = {k: v.numpy() for k, v in AutogradReference(small_spec, small_weights)(torch.from_numpy(image)).items()}
    with make_runner(runtime, load_model(path), device="cpu") as runner:
        got = runner.infer({"image": image})
        layers = runner.winograd_layers
    assert layers == threes  # the forward layers and the backward pass's flipped ones
    report = compare(f"{runtime} winograd, chelsea", got, expected, ONNXRUNTIME_BOUNDS)
    assert report.passed, [(c.name, round(c.cosine, 6)) for c in report.failures]
    with make_runner(runtime, load_model(path), device="cpu", convolutions="direct") as runner:
        direct = runner.infer({"image": image})
        assert runner.winograd_layers == 0
    assert min(cosine(got[name], direct[name]) for name in got) < 1.0  # it did compute another way


def test_an_unknown_choice_is_refused_in_one_line(monkeypatch, verified_export):
    monkeypatch.setenv("INTERACTIVE_CPU_CONVOLUTIONS", "fast")
    with pytest.raises(InterActiveError, match=r"INTERACTIVE_CPU_CONVOLUTIONS='fast': choose one of auto, direct"):
        make_runner("onnxruntime", load_model(verified_export[0]), device="cpu")


needs_openvino = pytest.mark.skipif(not ov_runtime.is_installed(), reason="openvino is not installed")


@needs_openvino
def test_bf16_reduces_the_products_and_leaves_the_transforms_in_float32(every_layer_pays, verified_export):
    with cpu_model(verified_export[0], "openvino") as (source, counts):
        assert counts["winograd"] > 0 and counts["products"] == 0  # OpenVINO's loader has its own product form
        model = ov_runtime.openvino().Core().read_model(source)
    ov_runtime.rewrite_backward_convolutions(model)
    assert ov_runtime.reduce_precision(model, "bf16") > 0
    converted = [node.get_friendly_name() for node in model.get_ordered_ops() if node.get_type_name() == "Convert"]
    assert any(name.endswith("/product") for name in converted)
    assert not any(name.endswith((winograd.INPUT, winograd.OUTPUT)) for name in converted)


@pytest.mark.skipif(not (ov_runtime.is_installed() and ov_runtime.has_bf16()), reason="no OpenVINO, or no bf16 here")
def test_bf16_with_winograd_stays_inside_the_reduced_bounds(every_layer_pays, verified_export, small_spec,
                                                             small_weights, photo_batches):
    from interactive_trt.exporter.onnx.verification import REDUCED_BOUNDS

    image = photo_batches["astronaut"]
    expected = {k: v.numpy() for k, v in AutogradReference(small_spec, small_weights)(torch.from_numpy(image)).items()}
    with make_runner("openvino", load_model(verified_export[0]), device="cpu", precision="bf16") as runner:
        got = runner.infer({"image": image})
        assert runner.winograd_layers > 0
    report = compare("openvino bf16 winograd, astronaut", got, expected, REDUCED_BOUNDS)
    assert report.passed, [(c.name, round(c.cosine, 6)) for c in report.failures]


def transposed_model(kernel, bias=None, **attributes) -> onnx.ModelProto:
    inputs = ["x", "w"] + (["b"] if bias is not None else [])
    initializers = [numpy_helper.from_array(kernel, "w")] + ([numpy_helper.from_array(bias, "b")] if bias is not None else [])
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", inputs, ["y"], name="back", kernel_shape=list(kernel.shape[2:]), **attributes)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", kernel.shape[0], "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", kernel.shape[1], "oh", "ow"])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("taps,pads,with_bias", [(7, [0, 0, 0, 0], False), (7, [1, 2, 0, 3], True), (1, [0, 0, 0, 0], True),
                                                 (1, [0, 0, 0, 0], False), (3, [0, 0, 0, 0], False)])
def test_a_transposed_product_equals_the_transposed_convolution(taps, pads, with_bias):
    from interactive_trt.forms.cpu import transposed_as_products

    rng = np.random.default_rng(2)
    kernel = rng.standard_normal((96, 48, taps, taps)).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32) if with_bias else None
    direct = transposed_model(kernel, bias, pads=pads)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(direct)
    assert transposed_as_products(rewritten) == 1
    assert "MatMul" in {node.op_type for node in rewritten.graph.node}
    for shape in [(2, 96, 10, 10), (1, 96, 1, 1), (1, 96, 4, 7)]:
        x = rng.standard_normal(shape).astype(np.float32)
        expected, got = run(direct, "onnxruntime", x), run(rewritten, "onnxruntime", x)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.parametrize("kind", ["strided", "grouped", "an all-ones spread", "padded 1x1"])
def test_transposed_convolutions_outside_the_product_form_stay(kind):
    from interactive_trt.forms.cpu import transposed_as_products

    kernel, attributes = np.ones((96, 48, 3, 3), dtype=np.float32), {}
    if kind == "strided":
        attributes["strides"] = [2, 2]
    elif kind == "grouped":
        kernel, attributes["group"] = np.ones((96, 24, 3, 3), dtype=np.float32), 2
    elif kind == "an all-ones spread":
        kernel = np.ones((1, 1, 3, 3), dtype=np.float32)
    else:
        kernel, attributes["pads"] = np.ones((96, 48, 1, 1), dtype=np.float32), [1, 1, 1, 1]
    model = transposed_model(kernel, **attributes)
    assert transposed_as_products(model) == 0
    assert [node.op_type for node in model.graph.node] == ["ConvTranspose"]


def model_reading_external_floats(directory, count: int):
    """An eligible 3x3 layer beside a graph output read from `count` float32 zeros in a sparse external
    file (written as a hole, so a 2 GiB tensor costs no disk)."""
    model = conv_model(np.random.default_rng(0).standard_normal((8, 8, 3, 3)).astype(np.float32), pads=[1, 1, 1, 1])
    with open(directory / "big.bin", "wb") as data:
        data.truncate(4 * count)
    big = model.graph.initializer.add()
    big.name, big.data_type, big.data_location = "big", TensorProto.FLOAT, TensorProto.EXTERNAL
    big.dims.append(count)
    for key, value in (("location", "big.bin"), ("offset", "0"), ("length", str(4 * count))):
        entry = big.external_data.add()
        entry.key, entry.value = key, value
    model.graph.node.append(helper.make_node("Identity", ["big"], ["big_out"]))  # read, so not dropped
    model.graph.output.append(helper.make_tensor_value_info("big_out", TensorProto.FLOAT, [count]))
    path = directory / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_a_cpu_form_is_a_temporary_file_with_its_weights_outside_the_protobuf(every_layer_pays, tmp_path):
    """The form a session loads is written with external data (so no 2 GiB protobuf limit applies, and
    no proto is held while the session loads it) and is gone when the block ends; a file the form would
    not change is loaded as it is."""
    import onnxruntime as ort

    small = model_reading_external_floats(tmp_path, 1 << 16)
    with cpu_model(small, "onnxruntime") as (source, counts):
        form = Path(source)
        assert counts["winograd"] == 1 and form != small and form.parent != small.parent
        data = form.with_name("form.data")
        assert data.stat().st_size >= 4 << 16 and form.stat().st_size < data.stat().st_size
        feed = {"x": np.zeros((1, 8, 6, 6), dtype=np.float32)}
        got = ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(["big_out"], feed)[0]
        assert got.shape == (1 << 16,) and not got.any()
    assert not form.parent.exists()
    plain = tmp_path / "plain.onnx"
    onnx.save(conv_model(np.ones((8, 8, 1, 1), dtype=np.float32)), str(plain))
    with cpu_model(plain, "onnxruntime") as (source, counts):
        assert source == str(plain) and not any(counts.values())


@needs_openvino
def test_openvino_compiles_per_shape_then_once_for_any_shape(every_layer_pays, verified_export, photo_batches):
    """Compiled for each new shape (OpenVINO fuses elementwise chains only for static shapes) up to
    STATIC_RECOMPILES times, then once for any shape; every model computes the same, and the form's
    temporary file lives exactly as long as the runner."""
    photos = list(photo_batches.values())
    first, second = photos[0], next(p for p in photos if p.shape != photos[0].shape)
    noise = np.random.default_rng(1).standard_normal((2, 3, 224, 256), dtype=np.float32)
    with make_runner("openvino", load_model(verified_export[0]), device="cpu") as runner:
        graph = runner.graph
        form = Path(graph.source)
        assert form.is_file() and form.parent.name.startswith("interactive-form-")
        static = runner.infer({"image": first})
        assert graph.shape == first.shape and graph.recompiles == 0
        runner.infer({"image": second})
        assert graph.shape == second.shape and graph.recompiles == 1
        runner.infer({"image": noise})
        assert graph.shape == noise.shape and graph.recompiles == ov_runtime.STATIC_RECOMPILES
        dynamic = runner.infer({"image": first})
        assert graph.shape == "any"
        runner.infer({"image": second})
        assert graph.shape == "any" and graph.recompiles == ov_runtime.STATIC_RECOMPILES + 1
        assert min(cosine(static[name], dynamic[name]) for name in static) >= 0.99999
    assert not form.exists()
