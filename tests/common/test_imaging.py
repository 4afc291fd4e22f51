import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from interactive_trt.common.errors import ImageError
from interactive_trt.common.imaging import bucket_for, load_rgb, normalise, shorter_side_size


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6000), st.integers(1, 6000))
def test_bucket_rule(height, width):
    h, w = bucket_for(height, width)
    assert h % 32 == 0 and w % 32 == 0 and min(h, w) >= 224
    assert max(h, w) <= 1184
    aspect = width / height
    if 224 / 512 * 1.2 < aspect < 512 / 224 / 1.2:  # neither side clamped: area and aspect kept
        assert abs(math.log(h * w / 512**2)) < 0.15
        assert abs(math.log((w / h) / aspect)) < 0.15


def test_bucket_examples():
    assert bucket_for(512, 512) == (512, 512)
    assert bucket_for(300, 451) == (416, 640)
    assert bucket_for(1000, 1000) == (512, 512)
    assert bucket_for(100, 2000) == (224, 1184)


def test_shorter_side_scales():
    assert shorter_side_size(300, 451, 256) == (256, 384)
    assert shorter_side_size(451, 300, 384) == (576, 384)


def save(tmp_path, image, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16", "1"])
def test_modes_become_rgb(tmp_path, mode):
    rgb = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(rgb)
    if mode == "I;16":
        image = Image.fromarray((rgb[..., 0].astype(np.uint16) * 257))
    else:
        image = image.convert(mode)
    suffix = "jpg" if mode == "CMYK" else "tiff" if mode == "I;16" else "png"
    out = load_rgb(save(tmp_path, image, f"x.{suffix}"))
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8
    if mode == "I;16":
        assert abs(int(out[0, 0, 0]) - int(rgb[0, 0, 0])) <= 1


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    out = load_rgb(save(tmp_path, Image.fromarray(rgba, "RGBA"), "t.png"))
    assert (out == 255).all()


def test_exif_rotation_is_honoured(tmp_path):
    image = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 clockwise on display
    out = load_rgb(save(tmp_path, image, "r.jpg", exif=exif))
    assert out.shape[:2] == (60, 20)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert tuple(load_rgb(path)[5, 5]) == (255, 0, 0)


@pytest.mark.parametrize("content, message", [(b"", "not an image"), (b"hello", "not an image")])
def test_unreadable_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad image.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"bad image.jpg: {message}"):
        load_rgb(path)


def test_truncated_jpeg(tmp_path):
    path = save(tmp_path, Image.fromarray((np.random.default_rng(1).random((200, 200, 3)) * 255).astype(np.uint8)),
                "t.jpg")
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ImageError, match="t.jpg: cannot decode image"):
        load_rgb(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="nope.png: no such file"):
        load_rgb(tmp_path / "nope.png")


def test_normalise_follows_torchvision():
    rgb = np.full((2, 2, 3), 255, dtype=np.uint8)
    out = normalise(rgb)
    assert out.shape == (3, 2, 2)
    assert out[0, 0, 0] == pytest.approx((1 - 0.485) / 0.229, rel=1e-6)
