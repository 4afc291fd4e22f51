"""TensorRT: one engine per input resolution, enqueued with execute_async_v3 on this runner's own stream.

Each runner (one per worker) owns a CUDA stream and, per resolution, an exporter.tensorrt slot
(context, device buffers, pinned host buffers). Engines come from the exporter's engine cache: looked up by
their build key, built on first use under a lock when a resolution was not prebuilt. Imported only
when asked for.
"""

from __future__ import annotations

import numpy as np

from interactive_trt.common.errors import BackendUnavailable
from interactive_trt.exporter.tensorrt import (ResolutionSlot, call, cudart, engine_cache_for, gpu_platform, logger,
                                                tensorrt)
from interactive_trt.runtime.backends.base import Runner

DEFAULT_MAX_BATCH = 32


def prebuilt_max_batch(engines: list[dict], platform) -> int:
    """The batch range export built for this GPU, so that its engines are the ones found."""
    sizes = [entry.get("max_batch", DEFAULT_MAX_BATCH) for entry in engines
             if entry.get("gpu_name") == platform.gpu_name and entry.get("tensorrt_version") == platform.tensorrt_version]
    return max(sizes) if sizes else DEFAULT_MAX_BATCH


class TensorRTRunner(Runner):
    name = "tensorrt"

    def __init__(self, model, device: str = "auto", max_batch: int | None = None, engines=None, log=print):
        super().__init__(model)
        if device == "cpu":
            raise BackendUnavailable("the TensorRT backend runs on a GPU only; use --backend onnxruntime --device cpu")
        self.max_batch, self.engines_folder, self.log = max_batch, engines, log
        self.slots: dict[tuple[int, int], ResolutionSlot] = {}

    def activate_impl(self) -> None:
        trt = tensorrt()
        self.platform = gpu_platform()
        if self.max_batch is None:
            self.max_batch = prebuilt_max_batch(self.model.manifest.engines, self.platform)
        folder = self.engines_folder or self.model.folder
        self.cache = engine_cache_for(self.model.onnx_path, self.model.manifest, folder, self.platform, 1,
                                      self.max_batch, log=self.log)
        self.runtime = trt.Runtime(logger())
        self.stream = call("cudaStreamCreate", cudart().cudaStreamCreate())

    def slot(self, height: int, width: int) -> ResolutionSlot:
        if (height, width) not in self.slots:
            _, plan = self.cache.get(height, width)
            self.slots[(height, width)] = ResolutionSlot(self.runtime, plan, self.model.manifest.input_name,
                                                         self.max_batch, height, width)
        return self.slots[(height, width)]

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        slot = self.slot(image.shape[2], image.shape[3])
        parts = [slot.run(image[start:start + self.max_batch], self.stream)
                 for start in range(0, image.shape[0], self.max_batch)]
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def deactivate_impl(self) -> None:
        for slot in self.slots.values():
            slot.free()
        self.slots = {}
        cudart().cudaStreamDestroy(self.stream)
