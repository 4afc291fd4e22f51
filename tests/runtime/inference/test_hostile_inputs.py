"""Files a user did not make: every kind of bad or odd image goes through interactive-infer with a
one-line reason or a correct result; damaged models and manifests are refused before any backend
runs them."""

import io
import json
import os
import struct
import zlib

import numpy as np
import onnx
import pytest
from PIL import Image

from interactive_trt.common.imaging import bucket_for
from interactive_trt.contracts.manifest import sha256_file
from runtime_helpers import run_cli


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png() -> bytes:
    """A 60000x60000 PNG header with almost no data: must be refused from its header alone."""
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) \
        + png_chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("hostile")
    rgb = Image.fromarray(photos["coffee"])
    jpeg = encoded(rgb, "JPEG")
    good = {
        "cmyk.jpg": encoded(rgb.convert("CMYK"), "JPEG"),
        "gray.png": encoded(rgb.convert("L"), "PNG"),
        "sixteen.png": encoded(Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257)), "PNG"),
        "palette.png": encoded(rgb.convert("P"), "PNG"),
        "alpha.png": encoded(rgb.convert("RGBA"), "PNG"),
        "tiny.png": encoded(rgb.resize((5, 7)), "PNG"),
        "ünïcode name with spaces.jpg": jpeg,
    }
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    good["rotated.jpg"] = encoded(rgb, "JPEG", exif=exif.tobytes())
    frames = [rgb.convert("P"), Image.new("P", rgb.size, 3)]
    good["animated.gif"] = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    bad = {
        "truncated.jpg": (jpeg[: len(jpeg) // 3], "cannot decode image"),
        "corrupt.png": (encoded(rgb, "PNG")[:100] + b"\x00" * 200, "cannot decode image"),
        "empty.jpg": (b"", "not an image Pillow can read"),
        "text.png": (b"this is not an image\n", "not an image Pillow can read"),
        "bomb.png": (bomb_png(), "decompression-bomb guard"),
    }
    for name, data in good.items():
        (folder / name).write_bytes(data)
    for name, (data, _) in bad.items():
        (folder / name).write_bytes(data)
    return folder, sorted(good), {name: reason for name, (_, reason) in bad.items()}


def test_every_hostile_image_is_processed_or_listed(small_model, hostile, tmp_path):
    folder, good, bad = hostile
    out = tmp_path / "out"
    result = run_cli("interactive_trt.runtime.cli.infer", folder, "--engine", small_model, "--out", out, "--batch-size", "3")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    listed = dict(line.split("\t") for line in (out / "failures.tsv").read_text().splitlines())
    assert sorted(os.path.basename(path) for path in listed) == sorted(bad)
    for path, reason in listed.items():
        assert bad[os.path.basename(path)] in reason, (path, reason)
    for name in good:
        data = np.load(out / f"{os.path.splitext(name)[0]}.npz")
        meta = json.loads(bytes(data["__meta__"]).decode())
        assert np.isfinite(data["pool5.interactive_avg"]).all()
        if name == "rotated.jpg":
            assert meta["original_size"] == [400, 600][::-1]  # coffee is 400x600; EXIF turns it upright
        if name == "tiny.png":
            assert meta["original_size"] == [7, 5] and meta["size"] == list(bucket_for(7, 5))  # upscaled
    assert f"{len(good)} done, 0 already done (skipped), {len(bad)} failed" in result.stderr
    warned = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "tiny.png: 7x5 is under" in warned[0] and "upscaled to" in warned[0], warned


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_listed(small_model, photos, tmp_path):
    path = tmp_path / "locked.png"
    Image.fromarray(photos["coffee"]).save(path)
    path.chmod(0)
    result = run_cli("interactive_trt.runtime.cli.infer", path, "--engine", small_model, "--out", tmp_path / "out")
    assert result.returncode == 2 and "permission denied" in result.stderr


def test_a_folder_without_images_is_an_error_naming_it(small_model, tmp_path):
    """An empty folder, or one holding no image, fails like a glob that matches nothing (exit 2, one line
    naming the path), while the other inputs run."""
    empty, texts = tmp_path / "empty", tmp_path / "texts"
    empty.mkdir()
    (texts / "sub").mkdir(parents=True)
    (texts / "sub" / "notes.txt").write_text("no image here")
    result = run_cli("interactive_trt.runtime.cli.infer", empty, texts, tmp_path / "none*.jpg",
                     "--engine", small_model, "--out", tmp_path / "out")
    assert result.returncode == 2
    for path in (empty, texts):
        assert f"{path}: no images in this folder (searched recursively for .bmp, .gif," in result.stderr
    assert "no file matches this pattern" in result.stderr
    assert "0 done, 0 already done (skipped), 3 failed" in result.stderr


def copy_model(source, target):
    target.mkdir()
    for item in source.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    return next(target.glob("*.onnx")), next(target.glob("*.json"))


def rehash(onnx_file, manifest_file):
    """Make the manifest's digest match a damaged file, so that the deeper checks are what refuses it."""
    manifest = json.loads(manifest_file.read_text())
    manifest["onnx"]["sha256"] = sha256_file(onnx_file)
    manifest_file.write_text(json.dumps(manifest))


def damage_truncate(onnx_file, manifest_file):
    onnx_file.write_bytes(onnx_file.read_bytes()[:5000])
    rehash(onnx_file, manifest_file)


def damage_garbage(onnx_file, manifest_file):
    onnx_file.write_bytes(np.random.default_rng(0).bytes(4096))
    rehash(onnx_file, manifest_file)


def damage_weights(onnx_file, manifest_file):
    model = onnx.load(str(onnx_file))
    tensor = model.graph.initializer[0]
    tensor.raw_data = tensor.raw_data[: len(tensor.raw_data) // 2]
    onnx.save(model, str(onnx_file))
    rehash(onnx_file, manifest_file)


def damage_outputs(onnx_file, manifest_file):
    manifest = json.loads(manifest_file.read_text())
    manifest["outputs"] = manifest["outputs"][1:]
    manifest_file.write_text(json.dumps(manifest))


def damage_manifest_json(onnx_file, manifest_file):
    manifest_file.write_text(manifest_file.read_text()[:300])


def damage_version(onnx_file, manifest_file):
    manifest = json.loads(manifest_file.read_text())
    manifest["format_version"] = 99
    manifest_file.write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, message", [
    (damage_truncate, "not a readable ONNX model"),
    (damage_garbage, "not a readable ONNX model"),
    (damage_weights, "ONNX Runtime cannot load it"),
    (damage_outputs, "inputs/outputs differ from its manifest"),
    (damage_manifest_json, "manifest is not valid JSON"),
    (damage_version, "manifest format version 99"),
])
def test_damaged_models_are_refused_in_one_line(small_model, photos, tmp_path, damage, message):
    onnx_file, manifest_file = copy_model(small_model, tmp_path / "model")
    damage(onnx_file, manifest_file)
    photo = tmp_path / "data" / "cups" / "coffee.png"
    photo.parent.mkdir(parents=True)
    Image.fromarray(photos["coffee"]).save(photo)
    for module, args in (("interactive_trt.runtime.cli.infer", [photo]), ("interactive_trt.runtime.cli.features", [tmp_path / "data", "--out", tmp_path / "f"]),
                         ("interactive_trt.runtime.cli.eval", ["imagenet", "--val", tmp_path / "data", "--out", tmp_path / "e"])):
        result = run_cli(module, *args, "--engine", manifest_file)
        assert result.returncode == 1, (module, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
