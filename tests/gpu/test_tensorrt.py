"""TensorRT for real: engines built by export, verified against autograd on the GPU, run by
interactive-infer. Skipped with the reason where torch cannot use a GPU or tensorrt / cuda-python is
missing or broken (marker `tensorrt`, tests/conftest.py)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interactive_trt.exporter.onnx.verify import cosine

pytestmark = pytest.mark.tensorrt
REPO = Path(__file__).resolve().parents[2]
BUCKETS = "224x224,224x288"


def run(module: str, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=1800)


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def engines(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"engines-{request.param}")
    result = run("interactive_trt.exporter.cli", "vgg19", "--weights", "random", "--width-divisor", "8", f"--{request.param}",
                 "--trt", "--buckets", BUCKETS, "--max-batch", "4", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return request.param, out


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(photos[name]).save(folder / f"{name}.png")
    return folder


def test_export_built_and_verified_every_bucket(engines):
    precision, out = engines
    (manifest_path,) = out.glob("*.json")
    manifest = json.loads(manifest_path.read_text())
    entries = manifest["engines"]
    assert {(e["height"], e["width"]) for e in entries} == {(224, 224), (224, 288)}
    assert all(e["verified"] and e["precision"] == precision for e in entries)
    assert all((out / e["file"]).is_file() for e in entries)
    reports = manifest["verification"]["engine_reports"]
    assert len(reports) == 4 and all(r["passed"] for r in reports)


def test_tensorrt_backend_matches_onnxruntime(engines, photo_folder, tmp_path):
    precision, out = engines
    size = ["--size", "224x288"]
    trt = run("interactive_trt.runtime.cli.infer", photo_folder, "--engine", out, "--backend", "tensorrt", "--out", tmp_path / "trt", *size)
    assert trt.returncode == 0, trt.stderr[-3000:]
    assert "building engine" not in trt.stderr  # export prebuilt this bucket
    ort = run("interactive_trt.runtime.cli.infer", photo_folder, "--engine", out, "--backend", "onnxruntime", "--device", "cpu",
              "--out", tmp_path / "ort", *size)
    assert ort.returncode == 0, ort.stderr[-3000:]
    bound = 0.9999 if precision == "fp32" else 0.999
    for name in ("chelsea", "coffee", "astronaut"):
        a, b = np.load(tmp_path / "trt" / f"{name}.npz"), np.load(tmp_path / "ort" / f"{name}.npz")
        for key in a.files:
            if key.endswith("_avg"):
                assert cosine(a[key], b[key]) >= bound, (name, key)


def test_a_new_resolution_is_built_once_on_first_use(engines, photo_folder, tmp_path):
    _, out = engines
    first = run("interactive_trt.runtime.cli.infer", photo_folder / "coffee.png", "--engine", out, "--backend", "tensorrt", "--size",
                "256x256", "--out", tmp_path / "a")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "building engine" in first.stderr
    again = run("interactive_trt.runtime.cli.infer", photo_folder / "chelsea.png", "--engine", out, "--backend", "tensorrt", "--size",
                "256x256", "--out", tmp_path / "b")
    assert again.returncode == 0 and "building engine" not in again.stderr
    assert len(list(out.glob("*256x256*.engine"))) == 1
