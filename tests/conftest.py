"""Shared fixtures: a width-reduced VGG-19 for speed, real photographs from scikit-image, the GPU marker."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def gpu_available() -> tuple[bool, str]:
    if shutil.which("nvidia-smi") is None:
        return False, "no NVIDIA GPU on this machine (nvidia-smi not found)"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False, "tensorrt is not installed (pip install 'interactive-trt[gpu]')"
    return True, ""


def pytest_collection_modifyitems(config, items):
    ok, reason = gpu_available()
    if ok:
        return
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def small_spec():
    from interactive_trt.exporter.networks.vgg import vgg19_spec

    return vgg19_spec(width_divisor=8)


@pytest.fixture(scope="session")
def small_weights(small_spec):
    from interactive_trt.exporter.networks.weights import random_weights

    return random_weights(small_spec, seed=0)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photographs shipped inside scikit-image (no download)."""
    import skimage.data

    return {"chelsea": skimage.data.chelsea(), "astronaut": skimage.data.astronaut(),
            "coffee": skimage.data.coffee(), "camera": np.repeat(skimage.data.camera()[..., None], 3, axis=2)}


@pytest.fixture(scope="session")
def photo_batches(photos, small_spec):
    """Each photo at its own bucket (the paper's resize rule), as a 1x3xHxW float32 batch."""
    from interactive_trt.common.imaging import bucket_for, prepare

    return {name: prepare(rgb, bucket_for(*rgb.shape[:2]), small_spec.preprocessing)[None]
            for name, rgb in photos.items()}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it is never part of a checkout)")
    return SHARED_DATA
