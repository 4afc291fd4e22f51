"""What the TensorRT path needs, checked before any work, each missing piece said in one line.

`interactive-export --trt` exports and verifies on the CPU for minutes before it builds engines, and then
holds every engine to the autograd reference on the GPU. The documented install has a CPU-only torch, whose
first CUDA call dies with an assertion; so the export asks all of it first: TensorRT importable, the CUDA
runtime bindings importable, a GPU visible, and, when engines are verified, a torch that can use that GPU.
The test markers (tests/conftest.py) and `interactive-doctor` ask the same questions.
"""

from __future__ import annotations

import warnings

from interactive_trt.common.errors import BackendUnavailable, InterActiveError
from interactive_trt.exporter.tensorrt.cuda import cudart, gpu_platform, tensorrt

TORCH_CUDA_HINT = "install a CUDA build of torch (for CUDA 13 with [gpu], for CUDA 12 with [gpu-cu12])"


def torch_cuda_problem() -> str | None:
    """None when torch can run on a GPU here, else why not. Never raises, whatever torch is installed."""
    try:
        import torch
    except (ImportError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"torch is not importable ({reason}): {TORCH_CUDA_HINT}"
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build: {TORCH_CUDA_HINT}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an old driver is reported as a warning, then is_available() is False
        available = torch.cuda.is_available()
    if not available:
        return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no usable GPU: none is visible, or the "
                f"NVIDIA driver is older than CUDA {torch.version.cuda} needs")
    return None


def tensorrt_problem() -> str | None:
    """None when TensorRT, cuda-python and a GPU are all here, else the first that is missing."""
    try:
        tensorrt()
        cudart()
        gpu_platform()
    except InterActiveError as exc:
        return str(exc)
    return None


def require_tensorrt(verify: bool = True) -> str:
    """Fails before any work when anything the engines (and their verification) need is missing; returns a
    one-line description of what will build them."""
    problem = tensorrt_problem()
    if problem:
        raise BackendUnavailable(problem)
    if verify:
        problem = torch_cuda_problem()
        if problem:
            raise BackendUnavailable(f"engine verification runs the autograd reference on the GPU, but {problem}; "
                                     f"or pass --no-verify to build the engines unverified")
    platform = gpu_platform()
    return f"TensorRT {platform.tensorrt_version} on {platform.gpu_name} (sm {platform.compute_capability})"
