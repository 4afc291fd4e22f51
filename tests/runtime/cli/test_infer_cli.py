"""interactive-infer end to end on the width-reduced model, as a user runs it."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interactive_trt.exporter.onnx.verify import cosine

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def model_dir(small_model):
    return small_model


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("images")
    (folder / "nested dir").mkdir()
    Image.fromarray(photos["chelsea"]).save(folder / "chelsea.jpg")
    Image.fromarray(photos["astronaut"]).save(folder / "nested dir" / "astronaut ü.png")
    Image.fromarray(photos["coffee"]).save(folder / "coffee.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def infer(*args, env=None):
    command = [sys.executable, "-m", "interactive_trt.runtime.cli.infer", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_folder_run_writes_results_and_lists_failures(model_dir, image_dir, tmp_path):
    out = tmp_path / "out"
    result = infer(image_dir, "--engine", model_dir, "--out", out, "--heatmaps", "--heatmap-layers", "pool1,fc6",
                   "--batch-size", "2")
    assert result.returncode == 2, result.stderr
    assert "broken.jpg: not an image Pillow can read" in result.stderr
    assert "Traceback" not in result.stderr
    assert "3 done, 0 already done (skipped), 1 failed" in result.stderr
    data = np.load(out / "chelsea.npz")
    assert data["pool5.interactive_avg"].shape == (64,)
    assert data["pool1.gamma"].shape == (1, 208, 320)
    meta = json.loads(bytes(data["__meta__"]).decode())
    assert meta["size"] == [416, 640] and meta["original_size"] == [300, 451]
    assert (out / "nested dir" / "astronaut ü.pool1.png").is_file()
    heat = np.asarray(Image.open(out / "chelsea.fc6.png"))
    assert heat.shape == (300, 451, 3)
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 3 and len(predictions[0]["interactive"]) == 5
    assert "broken.jpg" in (out / "failures.tsv").read_text()
    # resume: nothing is recomputed, results stay
    before = (out / "chelsea.npz").stat().st_mtime_ns
    again = infer(image_dir, "--engine", model_dir, "--out", out, "--heatmaps", "--heatmap-layers", "pool1,fc6")
    assert "0 done, 3 already done (skipped), 1 failed" in again.stderr
    assert (out / "chelsea.npz").stat().st_mtime_ns == before


def test_labels_are_printed(model_dir, image_dir, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"n{i:08d} thing {i}, other\n" for i in range(1000)))
    result = infer(image_dir / "coffee.jpg", "--engine", model_dir, "--labels", labels)
    assert result.returncode == 0, result.stderr
    assert "InterActive: thing " in result.stdout + result.stderr


def test_a_second_run_still_prints_what_it_found(model_dir, image_dir, tmp_path):
    """A finished job run again (scripts/main.sh twice) skips the work but shows the predictions."""
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"n{i:08d} thing {i}, other\n" for i in range(1000)))
    args = (image_dir / "coffee.jpg", "--engine", model_dir, "--labels", labels, "--out", tmp_path / "out")
    first, again = infer(*args), infer(*args)
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert "0 done, 1 already done (skipped), 0 failed" in again.stderr
    shown = [line for line in (again.stdout + again.stderr).splitlines() if "InterActive: thing " in line]
    assert len(shown) == 1 and shown[0] in first.stdout + first.stderr


def test_torch_backend_agrees_with_onnxruntime(model_dir, image_dir, tmp_path):
    outs = {}
    for backend in ("onnxruntime", "torch"):
        outs[backend] = tmp_path / backend
        result = infer(image_dir / "chelsea.jpg", "--engine", model_dir, "--out", outs[backend], "--backend", backend)
        assert result.returncode == 0, result.stderr
    a, b = np.load(outs["onnxruntime"] / "chelsea.npz"), np.load(outs["torch"] / "chelsea.npz")
    for name in a.files:
        if name != "__meta__":
            assert cosine(a[name], b[name]) >= 0.9999, name


def test_onnx_path_never_imports_torch_or_openvino(model_dir, image_dir, tmp_path):
    code = (
        "import sys, interactive_trt.runtime.cli.infer as c\n"
        "sys.argv=['x', sys.argv[1], '--engine', sys.argv[2]]\n"
        "try:\n    c.main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'openvino' not in sys.modules, 'openvino was imported'\n"
        "print('NO_TORCH')\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(image_dir / "coffee.jpg"), str(model_dir)],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert "NO_TORCH" in result.stdout, result.stderr


@pytest.mark.parametrize("args, message", [
    (["--size", "500x512"], "sides must be multiples of 32"),
    (["--heatmaps"], "--heatmaps needs --out"),
    (["--backend", "nope"], "unknown backend 'nope'"),
])
def test_usage_errors_are_one_line(model_dir, image_dir, args, message):
    result = infer(image_dir / "coffee.jpg", "--engine", model_dir, *args)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_corrupt_model_is_refused(model_dir, image_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in model_dir.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    onnx_file = next(broken.glob("*.onnx"))
    onnx_file.write_bytes(onnx_file.read_bytes()[: 1000])
    result = infer(image_dir / "coffee.jpg", "--engine", broken)
    assert result.returncode == 1
    assert "does not match its manifest" in result.stderr and "Traceback" not in result.stderr


def test_missing_engine(image_dir, tmp_path):
    result = infer(image_dir / "coffee.jpg", "--engine", tmp_path / "none")
    assert result.returncode == 1 and "no such model file or folder" in result.stderr


@pytest.fixture(scope="module")
def fp16_model(tmp_path_factory):
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import ExportRequest

    out = tmp_path_factory.mktemp("small-model-fp16")
    path, _ = export_model(ExportRequest(weights="random", width_divisor=8, out=out, precision="fp16"),
                           log=lambda m: None)
    return path


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_fp16_model_runs_like_the_fp32_one(model_dir, fp16_model, image_dir, tmp_path, backend):
    """Same command, same files; features within issue 3's fp16 bound of the fp32 model's."""
    image = image_dir / "chelsea.jpg"
    assert infer(image, "--engine", model_dir, "--out", tmp_path / "fp32").returncode == 0
    result = infer(image, "--engine", fp16_model, "--out", tmp_path / "fp16", "--backend", backend)
    assert result.returncode == 0, result.stderr
    full, half = np.load(tmp_path / "fp32" / "chelsea.npz"), np.load(tmp_path / "fp16" / "chelsea.npz")
    assert set(full.files) == set(half.files)
    for name in full.files:
        if name.endswith("_avg"):
            assert half[name].dtype == np.float32
            assert cosine(half[name], full[name]) >= 0.999, name
        elif name.endswith("gamma"):
            assert cosine(half[name], full[name]) >= 0.98, name


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="tensorrt is installed here; the GPU tests cover the backend")
def test_tensorrt_backend_without_tensorrt_is_one_line(model_dir, image_dir, tmp_path):
    result = infer(image_dir / "chelsea.jpg", "--engine", model_dir, "--backend", "tensorrt", "--out", tmp_path)
    assert result.returncode == 1, result.stderr
    assert "TensorRT is not installed: install the gpu extra" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
