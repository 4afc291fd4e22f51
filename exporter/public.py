"""The exporter's names that the runtime may use, listed in one place.

The runtime reads what the exporter writes (the ONNX graph, the manifest, the engine files) through
`interactive_trt.contracts`; beyond that it needs a few of the exporter's own pieces: the explicit graph
and the weights for the torch backend, and the TensorRT engine machinery to build a missing resolution on
first use and to run engines. Those names, and no others, are imported from here
(tests/test_imports.py holds the runtime to it). Each is imported when first asked for, so that reading this
module imports neither torch nor tensorrt.
"""

from __future__ import annotations

import importlib

# name -> the module that defines it
SOURCES = {
    # the torch backend (the graph needs torch)
    "InterActiveGraph": "interactive_trt.exporter.interactive.graph",
    "Weights": "interactive_trt.exporter.networks.weights",
    "parameter_shape": "interactive_trt.exporter.networks.weights",
    # TensorRT engines: build, cache, run (tensorrt and cuda-python themselves are imported lazily)
    "ResolutionSlot": "interactive_trt.exporter.tensorrt.execute",
    "SharedScratch": "interactive_trt.exporter.tensorrt.execute",
    "engine_cache_for": "interactive_trt.exporter.tensorrt.build",
    "DEFAULT_OPT_BATCH": "interactive_trt.exporter.tensorrt.build",
    "opt_batch_for": "interactive_trt.exporter.tensorrt.build",
    "call": "interactive_trt.exporter.tensorrt.cuda",
    "cudart": "interactive_trt.exporter.tensorrt.cuda",
    "gpu_platform": "interactive_trt.exporter.tensorrt.cuda",
    "gpu_identity": "interactive_trt.exporter.tensorrt.cuda",
    "logger": "interactive_trt.exporter.tensorrt.cuda",
    "tensorrt": "interactive_trt.exporter.tensorrt.cuda",
    # what --trt and the doctor check before any work
    "tensorrt_problem": "interactive_trt.exporter.tensorrt.preflight",
    "torch_cuda_problem": "interactive_trt.exporter.tensorrt.preflight",
}
NEEDS_TORCH = ("InterActiveGraph",)
__all__ = list(SOURCES)


def __getattr__(name: str):
    if name not in SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}; the runtime may use: "
                             f"{', '.join(SOURCES)}")
    return getattr(importlib.import_module(SOURCES[name]), name)  # not cached: a test's patch of the source holds
