"""Shared fixtures: a width-reduced VGG-19 for speed, real photographs from scikit-image, the GPU marker."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GPU_STUBS = Path(__file__).resolve().parent / "stubs" / "gpu_stack"


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


def _forget_gpu_modules() -> None:
    from interactive_trt.exporter.tensorrt import cuda

    for name in list(sys.modules):
        if name in ("tensorrt", "cuda") or name.startswith(("tensorrt.", "cuda.")):
            del sys.modules[name]
    cuda.logger.cache_clear()


@pytest.fixture
def gpu_stubs(monkeypatch):
    """tests/stubs/gpu_stack's stand-ins for `tensorrt` and cuda-python (see its README), imported fresh for
    one test and forgotten afterwards; yields both modules."""
    _forget_gpu_modules()
    monkeypatch.syspath_prepend(str(GPU_STUBS))
    import tensorrt
    from cuda.bindings import runtime

    runtime.reset()
    tensorrt.LOGGERS.clear()
    yield SimpleNamespace(trt=tensorrt, cudart=runtime)
    _forget_gpu_modules()
