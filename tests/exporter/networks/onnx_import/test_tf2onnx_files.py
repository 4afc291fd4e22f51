"""Real tf2onnx output of small Keras networks written with keras.applications' own layer calls
(tests/data/tf2onnx, made by tests/support/make_tf2onnx_files.py): each was refused before, and each imports
exactly, its graph equal to autograd, at the native size and at another size of its rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from interactive_trt.common.errors import OnnxImportError, SpecError
from interactive_trt.common.imaging import bucket_for, prepare, shorter_side_size
from interactive_trt.contracts.spec import Preprocessing, ResizeRule
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.exporter.networks.onnx_import import import_onnx, verify_against_source
from interactive_trt.exporter.networks.onnx_import.network import ImportOptions
from interactive_trt.exporter.onnx.verify import rel_l2

import onnx_builders as build

FILES = Path(__file__).resolve().parents[3] / "data" / "tf2onnx"


def graph_equals_autograd(imported, batch: np.ndarray) -> None:
    for options in ({"config": "last", "p": 2}, {"config": "next", "p": 1}):
        graph = InterActiveGraph(imported.spec, imported.weights, **options).eval()
        with torch.no_grad():
            got = {k: v.numpy() for k, v in graph.named_outputs(torch.from_numpy(batch)).items()}
        expected = AutogradReference(imported.spec, imported.weights, **options)(torch.from_numpy(batch))
        for key, value in expected.items():
            assert rel_l2(got[key], value.numpy()) <= 1e-5, (key, options)


@pytest.mark.parametrize("name, size", [("resnet_stem", (96, 64)), ("efficientnet_se", (64, 96)),
                                        ("mobilenetv3_head", (96, 96)), ("inception_valid", (83, 107)),
                                        ("resnetv2_stem", (64, 128)), ("convnext_blocks", (64, 96))])
def test_keras_applications_blocks_import_exactly(name, size, photos):
    imported = import_onnx(FILES / f"{name}.onnx")
    assert imported.softmax and imported.canonical.layout == "NHWC"
    reports = verify_against_source(imported, ())
    assert all(report.passed for report in reports), [report.summary() for report in reports]
    spec = imported.spec
    spec.spatial_sizes(*size)  # a size of the rule other than the native one is served
    graph_equals_autograd(imported, prepare(photos["chelsea"], size, spec.preprocessing)[None])


def test_zero_padding_before_a_max_pool_after_a_relu_becomes_its_padding():
    spec = import_onnx(FILES / "resnet_stem.onnx").spec
    pool = next(layer for layer in spec.layers if layer.op == "maxpool")
    assert pool.pad4 == (1, 1, 1, 1) and spec.layer(pool.inputs[0]).relu


def test_squeeze_and_excitation_reshaped_to_a_1x1_map_is_a_gate():
    raw = ImportOptions(preprocessing=Preprocessing(scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))
    spec = import_onnx(FILES / "efficientnet_se.onnx", raw).spec
    assert sum(layer.op == "mul" for layer in spec.layers) == 2
    assert sum(layer.op == "gap" for layer in spec.layers) == 2
    # the in-graph Rescaling and Normalization of 0-255 pixels are the recorded preprocessing
    assert np.allclose(spec.preprocessing.mean, np.multiply((0.485, 0.456, 0.406), 255), rtol=1e-6)
    assert np.allclose(spec.preprocessing.std, np.multiply((0.229, 0.224, 0.225), 255), rtol=1e-6)


def test_mobilenetv3_convs_on_the_pooled_map_are_its_head():
    spec = import_onnx(FILES / "mobilenetv3_head.onnx").spec
    assert spec.head_pooled
    head = spec.layer(spec.head_logits)
    hidden = spec.layer(head.inputs[0])
    assert (head.channels, hidden.op, hidden.act) == (10, "conv", "hardswish") and hidden.channels == 32
    assert not spec.reads_pooled(hidden.name)  # the head is applied per position of the last map


def test_keras_layer_norms_written_out_with_an_identity_reshape_are_layer_norms():
    """tf2onnx writes Keras' LayerNormalization out (moments, Sqrt and Reciprocal, Neg) and, where its
    transpose optimiser moves the mean's size-1 axis, a Reshape to the mean's own fixed shape; the stem's,
    the blocks', the downsampling one's and the head's are each one layernorm layer."""
    spec = import_onnx(FILES / "convnext_blocks.onnx").spec
    assert sum(layer.op == "layernorm" for layer in spec.layers) == 5 and spec.head_pooled
    assert {"gelu", "layernorm"} <= {layer.op for layer in spec.layers} | {layer.activation for layer in spec.layers}
    depthwise = [layer for layer in spec.layers if layer.op == "conv" and layer.groups > 1]
    assert [(layer.groups, layer.window) for layer in depthwise] == [(16, (7, 7)), (32, (7, 7))]


def test_an_inception_size_is_served_in_its_class_modulo_the_total_stride():
    spec = import_onnx(FILES / "inception_valid.onnx").spec
    rule = spec.resize
    assert (rule.multiple, rule.offset, rule.min_side) == (8, 3, 75)
    for height, width in ((75, 75), (83, 115), (523, 507)):
        spec.spatial_sizes(height, width)
    with pytest.raises(SpecError, match="multiples of 8 plus 3"):
        spec.spatial_sizes(80, 75)
    assert all(rule.fits(side) for side in bucket_for(480, 640, rule) + shorter_side_size(480, 640, 256, rule))


def test_the_rule_without_an_offset_is_unchanged():
    rule = ResizeRule()
    assert bucket_for(480, 640) == (448, 576) and shorter_side_size(480, 640, 256) == (256, 352)
    assert rule.side(10) == 224 and rule.side(500) == 512 and rule.describe() == "multiples of 32"


def test_zero_padding_before_a_max_pool_of_values_that_may_be_negative_is_a_layer():
    """ResNet50V2's stem pools its first conv's output, before any activation, through ZeroPadding2D: there
    the zeros can be a window's maximum, which -inf padding would not give, so the padding is a layer of its
    own (its gradient: the padded gradient's middle)."""
    spec = import_onnx(FILES / "resnetv2_stem.onnx").spec
    pad = next(layer for layer in spec.layers if layer.op == "pad")
    pool = next(layer for layer in spec.layers if layer.op == "maxpool")
    assert pad.pad4 == (1, 1, 1, 1) and pool.inputs == (pad.name,) and not any(pool.pad4)
    assert not spec.layer(pad.inputs[0]).activation
    assert spec.spatial_sizes(64, 64)[pad.name] == (34, 34)


def strided_slice_network(tmp_path, starts, ends) -> Path:
    """A slice over every axis of an NCHW map, the untouched axes from 0 to INT32_MAX, as tf2onnx writes
    a strided_slice."""
    g = build.GraphWriter()
    x = g.one("Relu", [g.conv("input", 3, 8, 3, stride=2, pads=(1, 1, 1, 1))])
    x = g.one("Slice", [x, g.const(np.array(starts, np.int64)), g.const(np.array(ends, np.int64)),
                        g.const(np.arange(4, dtype=np.int64))], name="strided_slice")
    x = g.one("Relu", [g.conv(x, 4 if ends[1] == 4 else 8, 8, 3, stride=2, pads=(1, 1, 1, 1))])
    x = g.one("Flatten", [g.one("GlobalAveragePool", [x])])
    out = g.one("Gemm", [x, g.weight(10, 8), g.bias(10)], transB=1)
    return build.save(g.model("input", [1, 3, 64, 64], out, 13, output_shape=(1, 10)), tmp_path / "sliced.onnx")


def test_a_strided_slice_of_channels_over_every_axis_is_a_channel_slice(tmp_path):
    end = 2 ** 31 - 1
    imported = import_onnx(strided_slice_network(tmp_path, [0, 0, 0, 0], [end, 4, end, end]))
    assert [layer.op for layer in imported.spec.layers].count("slice") == 1
    assert all(report.passed for report in verify_against_source(imported, ()))


def test_a_spatial_crop_is_refused_naming_its_axes(tmp_path):
    end = 2 ** 31 - 1
    with pytest.raises(OnnxImportError, match=r"node 'strided_slice' \(Slice\): a slice of axes \[2, 3\] \(starts "
                                              r"\[1, 1\], ends \[2147483647, 2147483647\], steps \[1, 1\]\); "
                                              r"supported: a range of channels, step 1 \(a spatial crop"):
        import_onnx(strided_slice_network(tmp_path, [0, 0, 1, 1], [end, end, end, end]))


def test_a_tensorflow_function_call_tf2onnx_left_is_refused_with_the_fix(tmp_path):
    """tf2onnx writes Keras' grouped Conv2D (jit-compiled) as a PartitionedCall node that no runtime runs;
    the refusal says how to convert it instead of passing on ONNX Runtime's 'No Op registered'."""
    import onnx
    from onnx import TensorProto, helper

    weight = onnx.numpy_helper.from_array(np.ones((8, 1, 3, 3), np.float32), "kernel")
    node = helper.make_node("PartitionedCall", ["input", "kernel"], ["out"], name="model/conv/PartitionedCall")
    graph = helper.make_graph([node], "net", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 32, 32])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 32, 32])], [weight])
    path = tmp_path / "partitioned.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(OnnxImportError, match=r"node 'model/conv/PartitionedCall' \(PartitionedCall\) is a TensorFlow "
                                              r"function call tf2onnx did not convert; .*_jit_compiled_convolution_op"):
        import_onnx(path)


def test_commands_serve_an_inception_size_class(tmp_path, square_photos):
    """Exported, inferred and evaluated at sides of 75 + 8 k: infer's resize rule keeps to the class, and
    eval imagenet at --scales 75 runs at the native size, where the original head's top-1 is the class the
    original file gives (labels made from it)."""
    import json

    import onnxruntime as ort
    from PIL import Image

    from interactive_trt.common.imaging import normalise, resize_rgb
    from runtime_helpers import export_onnx, run_cli

    raw = ("--scale", "1", "--mean", "127.5,127.5,127.5", "--std", "127.5,127.5,127.5")
    result = export_onnx(FILES / "inception_valid.onnx", *raw, "--out", tmp_path / "engine")
    assert result.returncode == 0, result.stderr
    engine = tmp_path / "engine" / "inception_valid_last_p2_both.onnx"
    infer = run_cli("interactive_trt.runtime.cli.infer", "--engine", engine, square_photos["chelsea"], "--out",
                    tmp_path / "infer")
    assert infer.returncode == 0, infer.stderr
    record = json.loads((tmp_path / "infer" / "predictions.jsonl").read_text().splitlines()[0])
    assert all((side - 3) % 8 == 0 for side in record["size"]), record
    session = ort.InferenceSession(str(FILES / "inception_valid.onnx"), providers=["CPUExecutionProvider"])
    val, synsets = tmp_path / "val", [f"n{index:08d}" for index in range(10)]
    for path in square_photos.values():
        rgb = np.asarray(Image.open(path).convert("RGB"))
        batch = normalise(resize_rgb(rgb, (75, 75)), Preprocessing(1.0, (127.5,) * 3, (127.5,) * 3))[None]
        label = int(np.argmax(session.run(None, {"input": batch.transpose(0, 2, 3, 1)})[0][0]))
        (val / synsets[label]).mkdir(parents=True, exist_ok=True)
        (val / synsets[label] / path.name).write_bytes(path.read_bytes())
    words = tmp_path / "synsets.txt"
    words.write_text("".join(f"{s} class {i}\n" for i, s in enumerate(synsets)))
    evaluated = run_cli("interactive_trt.runtime.cli.eval", "imagenet", "--engine", engine, "--val", val, "--synsets",
                        words, "--scales", "75", "--no-flips", "--out", tmp_path / "eval")
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads((tmp_path / "eval" / "report.json").read_text())["summary"]
    assert summary["top1_error"]["original"] == 0.0


def test_graph_inputs_no_node_reads_are_dropped(tmp_path):
    """Keras 3's export (tf2onnx underneath) leaves its Normalization's mean and variance as graph inputs that
    no node reads, beside their folded values; ONNX Runtime would ask for them in every feed. They are
    dropped, from the canonical graph and from the copy of the original that verification runs."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(FILES / "efficientnet_se.onnx"))
    for name in ("efficientnet_se_1/normalization_1/Sub/y:0", "efficientnet_se_1/normalization_1/Sqrt/x:0"):
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, 1, 3]))
    path = tmp_path / "keras3.onnx"
    onnx.save(model, str(path))
    imported = import_onnx(path)
    assert all(report.passed for report in verify_against_source(imported, ()))


@pytest.mark.parametrize("name", ["resnet_stem", "resnetv2_stem", "efficientnet_se", "mobilenetv3_head",
                                  "inception_valid", "convnext_blocks"])
def test_keras_files_export_and_verify_on_every_installed_runtime(name, tmp_path):
    """What these files brought (the `pad` layer, the size class, the conv head, the written LayerNorm) on
    ONNX Runtime as exported and in its CPU form, and on OpenVINO where it is installed."""
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest
    from interactive_trt.forms import openvino as ov_runtime

    said = []
    _, manifest = export_model(ExportRequest(model=IMPORTED, source=FILES / f"{name}.onnx", out=tmp_path),
                               log=said.append)
    assert manifest.verification["passed"] is True, "\n".join(said)
    labels = {report["label"].split(" vs ")[0] for report in manifest.verification["reports"]}
    assert {"torch graph", "onnxruntime", "rebuilt forward"} <= labels
    assert ("openvino" in labels) == ov_runtime.is_installed()
