"""Property-based fuzzing of decoding and preprocessing: whatever bytes arrive under an image name,
the result is either a valid network input or an ImageError naming the file, quickly."""

import io
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from interactive_trt.common.errors import ImageError
from interactive_trt.common.imaging import bucket_for, load_rgb, prepare
from interactive_trt.contracts.spec import Preprocessing

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM"]
MODES = ["RGB", "L", "LA", "P", "RGBA", "CMYK", "I;16", "1", "I", "F"]
SUFFIXES = [".jpg", ".png", ".gif", ".bmp", ".tif", ".webp", ".ppm", ".jpeg"]


def encode(array: np.ndarray, mode: str, fmt: str) -> bytes:
    image = Image.fromarray(array)
    if mode == "I;16":
        image = Image.fromarray(array[..., 0].astype(np.uint16) * 257)
    elif mode == "F":
        image = Image.fromarray(array[..., 0].astype(np.float32) / 255.0)
    elif mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        image.convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


@st.composite
def encoded_images(draw):
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    array = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return encode(array, draw(st.sampled_from(MODES)), draw(st.sampled_from(FORMATS)))


@st.composite
def damaged(draw):
    data = bytearray(draw(encoded_images()))
    action = draw(st.sampled_from(["intact", "truncate", "flip", "splice", "header-only"]))
    if action == "truncate" and len(data) > 1:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif action == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] = draw(st.integers(0, 255))
    elif action == "splice":
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(st.binary(min_size=1, max_size=64))
    elif action == "header-only":
        data = data[:32]
    return bytes(data)


payloads = st.one_of(damaged(), st.binary(max_size=512),
                     st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00"]))


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(payload=payloads, suffix=st.sampled_from(SUFFIXES))
def test_any_bytes_give_an_input_or_a_named_error(tmp_path_factory, payload, suffix):
    path = tmp_path_factory.mktemp("fuzz", numbered=True) / f"input{suffix}"
    path.write_bytes(payload)
    start = time.monotonic()
    try:
        rgb = load_rgb(path)
    except ImageError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and min(rgb.shape[:2]) >= 1
        size = bucket_for(*rgb.shape[:2])
        assert size[0] % 32 == 0 and size[1] % 32 == 0 and min(size) >= 224  # tiny images are upscaled
        tensor = prepare(rgb, size, Preprocessing())
        assert tensor.shape == (3, *size) and np.isfinite(tensor).all()
    assert time.monotonic() - start < 5.0, "decoding must not hang"
