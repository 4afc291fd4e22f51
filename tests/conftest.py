"""Shared fixtures: a width-reduced VGG-19 for speed (and one exported model of it per session), real
photographs from scikit-image, the GPU markers (`gpu`, `tensorrt`) and stand-ins for the GPU stack.

The tests mirror the source tree; what several folders share (networks of today's families, ONNX files
written as converters write them, running the commands) lives in tests/support, importable from all."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

# ../shared/data beside the checkout; a GPU machine gets a copy carried inside it (benchmarks/gpu_check.sh)
SHARED_DATA = Path(os.environ.get("INTERACTIVE_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
GPU_STUBS = Path(__file__).resolve().parent / "stubs" / "gpu_stack"
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))


def gpu_problem() -> str | None:
    """Why marker `gpu` (a CUDA device torch can use) cannot run here; None when it can. A CPU-only torch
    answers False to torch.cuda.is_available(), which is asked without touching CUDA otherwise."""
    from interactive_trt.exporter.tensorrt.preflight import torch_cuda_problem

    return torch_cuda_problem()


def tensorrt_problem() -> str | None:
    """Why marker `tensorrt` (gpu, plus importable tensorrt and cuda-python) cannot run here; None when it can.
    A broken TensorRT install raises OSError (a missing libnvinfer), not ImportError: both are a reason."""
    from interactive_trt.exporter.tensorrt import preflight

    return gpu_problem() or preflight.tensorrt_problem()


def ort_cuda_problem() -> str | None:
    """Why marker `ort_cuda` (ONNX Runtime with its CUDA provider, and a GPU) cannot run here; None when it can."""
    try:
        import onnxruntime
    except (ImportError, OSError) as exc:
        return f"onnxruntime does not import ({exc})"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "this ONNX Runtime has no CUDA provider (pip install 'interactive-trt[gpu]' on a GPU machine)"
    return gpu_problem()


MARKER_PROBLEMS = {"gpu": gpu_problem, "tensorrt": tensorrt_problem, "ort_cuda": ort_cuda_problem}


def pytest_collection_modifyitems(config, items):
    problems: dict[str, str | None] = {}
    for item in items:
        for marker, probe in MARKER_PROBLEMS.items():
            if item.get_closest_marker(marker) is not None:  # not item.keywords: that holds folder names too
                if marker not in problems:
                    problems[marker] = probe()  # asked once, and only when a test carries the marker
                if problems[marker]:
                    item.add_marker(pytest.mark.skip(reason=f"{marker}: {problems[marker]}"))
                    break


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


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """One exported width-reduced model per session."""
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import ExportRequest

    out = tmp_path_factory.mktemp("small-model")
    export_model(ExportRequest(weights="random", width_divisor=8, out=out, verify=False), log=lambda m: None)
    return out
