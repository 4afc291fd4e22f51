"""Any CNN, part 3, end to end as a user runs it: `interactive-export onnx` on a ConvNeXt-layout file
(LayerNorm, GELU, layer scale, pointwise Linear layers, a LayerNorm head after the pool), then every runtime
command on what it wrote: infer on ONNX Runtime, torch and OpenVINO, features, sheet, eval imagenet at the
native scale against the original file, and fp16-backward."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from interactive_trt.common.imaging import normalise, resize_rgb
from interactive_trt.contracts.manifest import load_manifest
from interactive_trt.contracts.spec import Preprocessing
from interactive_trt.runtime.features.store import load_features

import families
import onnx_builders as build
from runtime_helpers import export_onnx as export
from runtime_helpers import run_cli as run


@pytest.fixture(scope="module")
def convnext(tmp_path_factory):
    folder = tmp_path_factory.mktemp("convnext")
    path = build.export_torch(families.FAMILIES["convnext"](), folder / "convnext.onnx", opset=17)
    result = export(path, "--out", folder / "engines")
    assert result.returncode == 0, result.stderr
    manifest = load_manifest(folder / "engines" / "convnext_last_p2_both.json")
    return path, folder / "engines", manifest


def test_the_export_verifies_on_every_runtime_and_picks_stage_ends(convnext):
    _, _, manifest = convnext
    assert manifest.verification["passed"] is True
    assert manifest.model.head_pooled and manifest.model.layer(manifest.model.last_layer).op == "add"  # the last block
    assert len(manifest.model.feature_layers) == 4


def test_infer_features_and_sheet(convnext, square_photos, tmp_path):
    _, engines, manifest = convnext
    layer = manifest.model.feature_layers[1]
    result = run("interactive_trt.runtime.cli.infer", "--engine", engines, square_photos["chelsea"],
                 "--out", tmp_path / "infer", "--heatmaps", "--heatmap-layers", f"{layer},imagenet")
    assert result.returncode == 0, result.stderr
    saved = np.load(tmp_path / "infer" / "chelsea.npz")
    assert saved["imagenet.scores_interactive"].shape == (1000,)
    assert (tmp_path / "infer" / f"chelsea.{layer}.png").is_file()
    for backend in ("torch", "openvino"):
        again_run = run("interactive_trt.runtime.cli.infer", "--engine", engines, square_photos["chelsea"],
                        "--backend", backend, "--out", tmp_path / backend)
        if backend == "openvino" and "not installed" in again_run.stderr:
            continue
        assert again_run.returncode == 0, again_run.stderr
        again = np.load(tmp_path / backend / "chelsea.npz")
        for key in (f"{layer}.gamma", "imagenet.scores_orig", "imagenet.scores_interactive", "imagenet.gamma"):
            assert np.allclose(again[key], saved[key], rtol=1e-3, atol=1e-4 * np.abs(saved[key]).max()), (backend, key)
    data = tmp_path / "data" / "class0"
    data.mkdir(parents=True)
    for path in square_photos.values():
        (data / path.name).write_bytes(path.read_bytes())
    features = run("interactive_trt.runtime.cli.features", tmp_path / "data", "--engine", engines,
                   "--out", tmp_path / "f")
    assert features.returncode == 0, features.stderr
    assert load_features(tmp_path / "f" / "data.npz").arrays[f"{layer}.interactive_avg"].shape[0] == 3
    sheet = run("interactive_trt.runtime.cli.sheet", square_photos["coffee"], "--engine", engines, "--layers",
                layer, "--out", tmp_path / "sheet.png")
    assert sheet.returncode == 0, sheet.stderr
    assert np.asarray(Image.open(tmp_path / "sheet.png")).std() > 5


def test_eval_imagenet_keeps_the_pooled_head_of_the_original_file(convnext, square_photos, tmp_path):
    """At the native scale the original head's top-1 is the class the ORIGINAL file gives each photo: the
    head after the pool is evaluated on the pooled map, as the network was trained, not per position."""
    path, engines, _ = convnext
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    val, synsets = tmp_path / "val", [f"n{index:08d}" for index in range(1000)]
    for photo in square_photos.values():
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        batch = normalise(resize_rgb(rgb, (224, 224)), Preprocessing())[None]
        label = int(np.argmax(session.run(None, {"input": batch})[0]))
        (val / synsets[label]).mkdir(parents=True, exist_ok=True)
        (val / synsets[label] / photo.name).write_bytes(photo.read_bytes())
    words = tmp_path / "synsets.txt"
    words.write_text("".join(f"{s} class {i}\n" for i, s in enumerate(synsets)))
    result = run("interactive_trt.runtime.cli.eval", "imagenet", "--engine", engines, "--val", val, "--synsets", words,
                 "--scales", "224", "--no-flips", "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["summary"]["top1_error"]["original"] == 0.0


def test_fp16_backward_export_meets_the_reduced_bounds(convnext, tmp_path):
    path, _, _ = convnext
    result = export(path, "--fp16-backward", "--out", tmp_path / "engines")
    assert result.returncode == 0, result.stderr
    assert load_manifest(tmp_path / "engines" / "convnext_last_p2_both_fp16-backward.json").verification["passed"]
