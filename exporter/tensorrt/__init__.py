"""TensorRT engines: build one per input resolution, key and cache them, run them, verify them.

The runtime builds a missing resolution on first use and runs engines through the names re-exported
here; nothing in this package imports tensorrt or cuda-python until a function asks for them.
"""

from interactive_trt.exporter.tensorrt.build import engine_cache_for
from interactive_trt.exporter.tensorrt.cuda import call, cudart, gpu_platform, logger, tensorrt
from interactive_trt.exporter.tensorrt.execute import ResolutionSlot, SharedScratch

__all__ = ["ResolutionSlot", "SharedScratch", "call", "cudart", "engine_cache_for", "gpu_platform", "logger", "tensorrt"]
