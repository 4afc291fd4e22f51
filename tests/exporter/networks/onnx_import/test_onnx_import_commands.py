"""`interactive-export onnx MODEL.onnx` end to end on a tf2onnx-style Keras model (NHWC, softmax, dynamic
batch), then every runtime command on what it wrote: infer (ONNX Runtime and torch backends), features,
eval imagenet at the model's native scale, sheet; an fp16 export; --trt refused before any work where
TensorRT is missing, and built through the stand-ins of tests/stubs as for a built-in."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from interactive_trt.common.imaging import normalise, resize_rgb
from interactive_trt.contracts.manifest import load_manifest, sha256_file
from interactive_trt.contracts.spec import Preprocessing
from interactive_trt.runtime.features.store import load_features

import onnx_builders as build
from runtime_helpers import export_onnx, run_cli

REPO = Path(__file__).resolve().parents[4]
LAYERS = "model/block1_project/Conv2D:0,model/block2_add/add:0"
OURS = ("model_block1_project_Conv2D_0", "model_block2_add_add_0")
PREPROCESSING = ("--scale", "1", "--mean", "127.5,127.5,127.5", "--std", "127.5,127.5,127.5")


def run(module: str, *args, timeout: int = 600):
    return run_cli(module, *args, timeout=timeout)


def export(*args):
    return export_onnx(*args)


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    return build.save(build.keras_mobilenet_like(13), tmp_path_factory.mktemp("keras") / "mobile.onnx")


@pytest.fixture(scope="module")
def exported(keras_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported")
    result = export(keras_file, "--layers", LAYERS, *PREPROCESSING, "--name", "keras_mobile", "--out", out / "last")
    assert result.returncode == 0, result.stderr
    nxt = export(keras_file, "--layers", LAYERS, *PREPROCESSING, "--name", "keras_mobile", "--config", "next",
                 "--head", "features", "--no-verify", "--out", out / "next")
    assert nxt.returncode == 0, nxt.stderr
    return out, result


def test_list_layers_prints_onnx_names_and_the_defaults(keras_file, tmp_path):
    result = export(keras_file, "--list-layers", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "mobile.onnx: NHWC input, native size 224x224" in result.stdout
    assert "model/block2_add/add:0" in result.stdout and "96x56x56" in result.stdout
    assert "T of 'last': model/head/Relu:0; classifier: model/dense/BiasAdd:0" in result.stdout
    assert "defaults: " in result.stdout and not (tmp_path / "out").exists()


def test_export_verifies_against_the_original_and_records_it(exported, keras_file):
    out, result = exported
    lines = [line for line in result.stdout.splitlines() if line.startswith("rebuilt forward vs original mobile.onnx")]
    assert [line.split(":")[0] for line in lines] == [
        "rebuilt forward vs original mobile.onnx (onnxruntime), noise 2x224x224",
        "rebuilt forward vs original mobile.onnx (onnxruntime), scikit-image chelsea 224x224"]
    assert all(": pass; worst " in line for line in lines) and "FAIL" not in result.stdout
    lines = [line for line in result.stdout.splitlines() if " vs autograd, " in line]
    for candidate in ("torch graph", "onnxruntime"):  # OpenVINO adds its own lines where it is installed
        assert len([line for line in lines if line.startswith(f"{candidate} vs autograd, ")]) == 2
    manifest = load_manifest(out / "last" / "keras_mobile_last_p2_both.json")
    assert manifest.model.feature_layers == OURS
    source = manifest.source
    assert source["sha256"] == sha256_file(keras_file) and source["format"] == "onnx"
    assert source["input"]["layout"] == "NHWC" and source["input"]["native_size"] == [224, 224]
    assert source["output"] == {"name": "model/dense/Softmax:0", "softmax": True, "scores": "model/dense/BiasAdd:0"}
    assert source["layers"][OURS[1]] == "model/block2_add/add:0"
    assert manifest.model.preprocessing == Preprocessing(scale=1.0, mean=(127.5,) * 3, std=(127.5,) * 3)
    labels = [report["label"] for report in manifest.verification["reports"]]
    assert sum(label.startswith("rebuilt forward vs original") for label in labels) == 2
    assert manifest.verification["passed"] is True


def test_infer_and_sheet_run_on_the_imported_model(exported, square_photos, tmp_path):
    out, _ = exported
    result = run("interactive_trt.runtime.cli.infer", "--engine", out / "last", square_photos["chelsea"],
                 "--out", tmp_path / "infer", "--heatmaps", "--heatmap-layers", f"{OURS[1]},imagenet")
    assert result.returncode == 0, result.stderr
    saved = np.load(tmp_path / "infer" / "chelsea.npz")
    assert saved[f"{OURS[1]}.gamma"].shape[0] == 1 and saved["imagenet.scores_interactive"].shape == (1000,)
    assert (tmp_path / "infer" / f"chelsea.{OURS[1]}.png").is_file()
    torch_run = run("interactive_trt.runtime.cli.infer", "--engine", out / "last", square_photos["chelsea"],
                    "--backend", "torch", "--out", tmp_path / "infer-torch")
    assert torch_run.returncode == 0, torch_run.stderr
    again = np.load(tmp_path / "infer-torch" / "chelsea.npz")
    for key in (f"{OURS[1]}.gamma", "imagenet.scores_orig", "imagenet.scores_interactive"):
        assert np.allclose(again[key], saved[key], rtol=1e-4, atol=1e-5 * np.abs(saved[key]).max()), key
    sheet = run("interactive_trt.runtime.cli.sheet", square_photos["coffee"], "--engine", out / "last", "--engine",
                out / "next", "--layers", ",".join(OURS), "--out", tmp_path / "sheet.png")
    assert sheet.returncode == 0, sheet.stderr
    assert np.asarray(Image.open(tmp_path / "sheet.png")).std() > 5


def test_features_run_on_the_imported_model(exported, square_photos, tmp_path):
    out, _ = exported
    data = tmp_path / "data"
    for index, (name, path) in enumerate(square_photos.items()):
        (data / f"class{index % 2}").mkdir(parents=True, exist_ok=True)
        (data / f"class{index % 2}" / path.name).write_bytes(path.read_bytes())
    result = run("interactive_trt.runtime.cli.features", data, "--engine", out / "last", "--out", tmp_path / "f")
    assert result.returncode == 0, result.stderr
    features = load_features(tmp_path / "f" / "data.npz")
    assert len(features.keys) == 3
    assert features.arrays[f"{OURS[0]}.interactive_max"].shape == (3, 24)


def test_eval_imagenet_at_the_native_scale_agrees_with_the_original_file(exported, keras_file, square_photos, tmp_path):
    """Square photos at --scales 224 run at exactly the native 224x224: the original head's top-1 must be the
    class the ORIGINAL file gives them (labels are made from it)."""
    out, _ = exported
    session = ort.InferenceSession(str(keras_file), providers=["CPUExecutionProvider"])
    file_pre = Preprocessing(scale=1.0, mean=(127.5,) * 3, std=(127.5,) * 3)
    val = tmp_path / "val"
    synsets = [f"n{index:08d}" for index in range(1000)]
    for path in square_photos.values():
        rgb = np.asarray(Image.open(path).convert("RGB"))
        batch = normalise(resize_rgb(rgb, (224, 224)), file_pre)[None].transpose(0, 2, 3, 1)
        label = int(np.argmax(session.run(None, {"input_1": batch})[0][0]))
        (val / synsets[label]).mkdir(parents=True, exist_ok=True)
        (val / synsets[label] / path.name).write_bytes(path.read_bytes())
    words = tmp_path / "synsets.txt"
    words.write_text("".join(f"{s} class {i}\n" for i, s in enumerate(synsets)))
    result = run("interactive_trt.runtime.cli.eval", "imagenet", "--engine", out / "last", "--val", val, "--synsets",
                 words, "--scales", "224", "--no-flips", "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "eval" / "report.json").read_text())["summary"]
    assert summary["top1_error"]["original"] == 0.0


def test_fp16_export_of_an_imported_model(keras_file, tmp_path):
    import interactive_trt

    exported = interactive_trt.export("onnx", source=keras_file, out=tmp_path, precision="fp16", head="both",
                                      layers=tuple(LAYERS.split(",")))
    assert exported.onnx_path.name == "mobile_last_p2_both_fp16.onnx"
    assert exported.manifest.precision == "fp16" and exported.manifest.verification["passed"] is True


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="tensorrt is installed here; the GPU tests cover --trt")
def test_trt_is_refused_before_any_work_without_tensorrt(keras_file, tmp_path):
    result = export(keras_file, "--trt", "--out", tmp_path / "engines")
    assert result.returncode == 1 and result.stderr.strip().startswith("error: TensorRT is not installed")
    assert "\n" not in result.stderr.strip() and not (tmp_path / "engines").exists()


def test_trt_builds_engines_as_for_built_ins(keras_file, tmp_path):
    """With tests/stubs/gpu_stack standing for TensorRT and a GPU, the engines of an imported model go through
    the same builder, cache, file names and manifest as a built-in's."""
    import os

    stubs = REPO / "tests" / "stubs" / "gpu_stack"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stubs), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "engines"
    result = subprocess.run([sys.executable, "-m", "interactive_trt.exporter.cli", "onnx", str(keras_file), "--trt",
                             "--no-verify", "--buckets", "224x224,256x320", "--max-batch", "4", "--out", str(out)],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    engines = sorted(path.name for path in out.glob("*.engine"))
    assert len(engines) == 2 and all(name.startswith("mobile_last_p2_both_") for name in engines)
    assert "224x224_b1-4-opt4_fp32" in engines[0] and "256x320_b1-4-opt4_fp32" in engines[1]
    manifest = load_manifest(out / "mobile_last_p2_both.json")
    assert len(manifest.engines) == 2 and manifest.source["format"] == "onnx"
