"""The CUDA runtime through cuda-python, and TensorRT itself, imported only when an engine is built or run.

Engines are tied to the GPU they were built on, so the GPU's name and compute capability are part of
every engine's key (engine_file.EngineKey); they are read here, as is TensorRT's version.

One `trt.Logger` serves the whole process (`logger()`): TensorRT keeps a pointer to the logger of every
builder, runtime and parser, and mixing loggers in one process is what its documentation warns against.
"""

from __future__ import annotations

import functools
import importlib

from interactive_trt.exporter.tensorrt.cache import Platform
from interactive_trt.common.errors import BackendUnavailable, InterActiveError
from interactive_trt.common.extras import install

GPU_EXTRA = (install("gpu", "TensorRT 11 for CUDA 13, NVIDIA driver >= 580") + ", or the gpu-cu12 extra (TensorRT 10 "
             "for CUDA 12), on a machine with an NVIDIA GPU")


class CudaError(InterActiveError):
    """A CUDA runtime call that failed; the message names the call and CUDA's error."""


def cudart():
    for name in ("cuda.bindings.runtime", "cuda.cudart"):  # cuda-python >= 12.6, then older releases
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
        except OSError as exc:  # the bindings are there but libcudart or the driver is not
            raise BackendUnavailable(f"cuda-python cannot load the CUDA runtime ({exc}); {GPU_EXTRA}") from None
    raise BackendUnavailable(f"TensorRT needs the CUDA runtime bindings (cuda-python): {GPU_EXTRA}")


def tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailable(f"TensorRT is not installed: {GPU_EXTRA}") from None
    except OSError as exc:  # the wheel is there but libnvinfer or the driver is not
        raise BackendUnavailable(f"TensorRT cannot load its libraries ({exc}); {GPU_EXTRA}") from None
    return trt


@functools.cache
def logger():
    """The process's one TensorRT logger (warnings and errors)."""
    trt = tensorrt()
    return trt.Logger(trt.Logger.WARNING)


def call(name: str, result):
    """Unpacks cuda-python's (error, *values) tuples; raises CudaError on anything but success."""
    runtime = cudart()
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != runtime.cudaError_t.cudaSuccess:
        _, text = runtime.cudaGetErrorString(error)
        raise CudaError(f"{name} failed: {text.decode() if isinstance(text, bytes) else text}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_identity(device: int = 0) -> tuple[str, str]:
    """The GPU's name and compute capability ('9.0') as the CUDA runtime reports them."""
    runtime = cudart()
    count = call("cudaGetDeviceCount", runtime.cudaGetDeviceCount())
    if count == 0:
        raise BackendUnavailable(f"no CUDA GPU is visible; {GPU_EXTRA}")
    properties = call("cudaGetDeviceProperties", runtime.cudaGetDeviceProperties(device))
    name = properties.name
    name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    return name.split("\x00", 1)[0].strip(), f"{properties.major}.{properties.minor}"


def gpu_platform(device: int = 0) -> Platform:
    name, compute_capability = gpu_identity(device)
    return Platform(tensorrt_version=tensorrt().__version__, gpu_name=name, compute_capability=compute_capability)
