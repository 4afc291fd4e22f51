"""The Python API: export and load from a notebook, images in any form, the same numbers as the command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import interactive_trt
from interactive_trt.common.errors import ImageError, InterActiveError
from interactive_trt.runtime.inference.writers import read_npz


@pytest.fixture(scope="module")
def photo_file(photos, tmp_path_factory):
    path = tmp_path_factory.mktemp("api-photos") / "chelsea.png"
    Image.fromarray(photos["chelsea"]).save(path)
    return path


def test_export_writes_the_model_and_its_manifest(exported):
    assert exported.onnx_path.is_file() and exported.manifest_path.is_file()
    assert exported.manifest.onnx_file == exported.onnx_path.name
    assert exported.manifest.model.name == "vgg19-w8"


def test_a_path_a_pil_image_and_an_array_give_the_same_outputs(exported, photo_file, photos):
    with interactive_trt.load(exported.onnx_path) as model:
        from_path = model.run(photo_file)
        from_pil = model.run(Image.open(photo_file))
        from_array, gray = model.run([photos["chelsea"], photos["camera"][..., 0]])
    assert from_path.size == (416, 640) and from_path.source == str(photo_file)
    for other in (from_pil, from_array):
        assert other.outputs.keys() == from_path.outputs.keys()
        for name, value in from_path.outputs.items():
            np.testing.assert_array_equal(other.outputs[name], value, err_msg=name)
    assert gray.size == (512, 512)


def test_named_accessors(exported, photo_file):
    with interactive_trt.load(exported.onnx_path) as model:
        result = model.run(photo_file)
        assert model.feature_layers == list(model.manifest.model.feature_layers)
    assert result.features("pool5").shape == (512 // 8,)
    np.testing.assert_array_equal(result.features("fc6", "orig_max"), result.outputs["fc6.orig_max"])
    assert result.gamma("pool1").shape == (208, 320)
    assert result.gamma("imagenet").shape == (13 - 6, 20 - 6)  # fc8's map: pool5 13x20, fc6's 7x7 kernel
    assert len(result.top_original) == 5 and len(result.top_interactive) == 5
    index, name, score = result.top_interactive[0]
    assert name and not name.startswith("class ") and score == pytest.approx(float(result.outputs["imagenet.scores_interactive"][index]))
    with pytest.raises(InterActiveError, match="no output 'conv9.gamma'; its layers are"):
        result.gamma("conv9")
    with pytest.raises(InterActiveError, match="feature kind 'mean'"):
        result.features("pool5", "mean")


def test_imagenet_names_ship_with_the_package():
    from interactive_trt.runtime.inference.labels import read_labels

    names = read_labels(None, 1000)
    assert len(names) == 1000 and names[0] == "tench" and names[954] == "banana"
    assert read_labels(None, 10) == [f"class {i}" for i in range(10)]


def test_the_api_equals_the_command(exported, photo_file, tmp_path):
    out = tmp_path / "cli"
    command = subprocess.run([sys.executable, "-m", "interactive_trt.runtime.cli.infer", str(photo_file), "--engine",
                              str(exported.onnx_path), "--out", str(out), "--batch-size", "1"],
                             capture_output=True, text=True, timeout=300)
    assert command.returncode == 0, command.stderr
    stored, meta = read_npz(out / "chelsea.npz")
    with interactive_trt.load(exported.onnx_path) as model:
        result = model.run(photo_file, batch_size=1)
    assert meta["size"] == list(result.size)
    for name, value in result.outputs.items():
        np.testing.assert_array_equal(stored[name], value, err_msg=name)


def test_bad_images_are_named_after_the_others_ran(exported, photo_file, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with interactive_trt.load(exported.onnx_path) as model:
        with pytest.raises(ImageError, match=r"broken\.jpg: .*; .*missing\.png: no such file"):
            model.run([photo_file, broken, tmp_path / "missing.png"])
        with pytest.raises(ImageError, match=r"<array 0>: expected H x W x 3 \(or H x W\) uint8 RGB, got float32"):
            model.run(np.zeros((32, 32, 3), np.float32))
        with pytest.raises(ImageError, match="input 0: a path, a PIL image or a uint8 array, not int"):
            model.run([7])


def test_loading_a_damaged_model_is_one_named_error(tmp_path):
    with pytest.raises(InterActiveError, match="no such model file or folder"):
        interactive_trt.load(tmp_path / "nothing.onnx")


def test_the_api_runs_without_torch(exported, photo_file):
    script = (
        "import sys, interactive_trt\n"
        f"model = interactive_trt.load({str(exported.onnx_path)!r})\n"
        f"result = model.run({str(photo_file)!r})\n"
        "model.close()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(result.top_interactive[0][0])\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().isdigit()
