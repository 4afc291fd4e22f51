"""Any CNN, part 3: the CNNs people run today, exported by torch.onnx from plain-torch networks of each
family (families.py), imported, and checked per family as issue 23 asks: the rebuilt forward equals the
original file on ONNX Runtime, the explicit graph equals autograd on noise and a real photo, and the
exported graph agrees on every installed runtime (export verification: torch, ONNX Runtime, OpenVINO)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interactive_trt.common.imaging import prepare
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.exporter.networks.onnx_import import import_onnx, verify_against_source
from interactive_trt.exporter.onnx.verify import rel_l2

import families
import onnx_builders as build

CASES = [("efficientnet_b0", "folded"), ("efficientnet_b0", "unfolded"), ("mobilenetv3", "folded"),
         ("mobilenetv3", "unfolded"), ("convnext", "folded"), ("densenet", "unfolded")]
# what each family's graph must hold once imported: the ops of part 3 it exercises
HOLDS = {"efficientnet_b0": {"gap", "mul", "silu", "sigmoid"}, "mobilenetv3": {"gap", "mul", "hardswish", "hardsigmoid"},
         "convnext": {"layernorm", "gelu"}, "densenet": {"affine", "relu"}}


@pytest.fixture(scope="module")
def family_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("families")
    models = {name: make() for name, make in families.FAMILIES.items()}
    files = {(name, exporter): build.export_torch(models[name], folder / f"{name}-{exporter}.onnx", exporter, opset=17)
             for name, exporter in CASES}
    return models, files


def kinds(spec) -> set[str]:
    found = set()
    for layer in spec.layers:
        found.add(layer.op)
        found.add(layer.activation)
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
    for image, options in ((batch, {"config": "last", "p": 2}), (noise, {"config": "next", "p": 1})):
        graph = InterActiveGraph(spec, imported.weights, **options).eval()
        with torch.no_grad():
            got = {k: v.numpy() for k, v in graph.named_outputs(torch.from_numpy(image)).items()}
        expected = {k: v.numpy() for k, v in AutogradReference(spec, imported.weights, **options)(
            torch.from_numpy(image)).items()}
        for key, value in expected.items():
            assert rel_l2(got[key], value) <= 1e-5, (key, options)


@pytest.mark.parametrize("name", ["efficientnet_b0", "convnext"])
def test_family_exports_and_verifies_on_every_installed_runtime(family_files, tmp_path, name):
    from interactive_trt.exporter.onnx.export import IMPORTED, ExportRequest, export_model

    _, files = family_files
    said = []
    onnx_path, manifest = export_model(ExportRequest(model=IMPORTED, source=files[(name, "folded")], out=tmp_path),
                                       log=said.append)
    assert onnx_path.exists() and manifest.verification["passed"] is True, "\n".join(said)
    labels = [report["label"].split(" vs ")[0] for report in manifest.verification["reports"]]
    assert {"torch graph", "onnxruntime", "rebuilt forward"} <= set(labels)
    from interactive_trt.exporter.onnx import openvino as ov_runtime

    assert ("openvino" in labels) == ov_runtime.is_installed()
    assert all(report["passed"] for report in manifest.verification["reports"])


def test_the_mlp_head_of_mobilenetv3_is_refused_by_name(tmp_path):
    from interactive_trt.common.errors import OnnxImportError

    path = build.export_torch(families.randomise(families.MobileNetV3(mlp_head=True)), tmp_path / "mlp.onnx",
                              opset=17)
    with pytest.raises(OnnxImportError, match=r"HardSwish\): hardswish of a globally pooled vector; supported: an "
                                              r"activation of a feature map"):
        import_onnx(path)
