"""TensorRT: one engine per input resolution, enqueued with execute_async_v3 on this runner's own stream.

Each runner (one per worker) owns a CUDA stream, one block of activation memory that all its engines
share (they run one at a time on that stream; exporter.tensorrt.execute), and, per resolution, a slot:
the deserialized engine, its context, and input and output buffers sized for the batch actually run.
The paper's resize rule has dozens of resolutions and a VGG-19 engine holds its weights (about half a
GiB in fp32), so slots are kept in least-recently-used order and the oldest are unloaded when the GPU
memory they hold would pass the runner's budget (`memory_budget`, default three quarters of the GPU
memory free when the runner starts). Engines come from the exporter's engine cache: looked up by their
build key, built on first use under a lock when a resolution was not prebuilt. Imported only when asked for.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from interactive_trt.common.errors import BackendUnavailable
from interactive_trt.exporter.public import (DEFAULT_OPT_BATCH, ResolutionSlot, SharedScratch, call, cudart,
                                             engine_cache_for, gpu_platform, logger, opt_batch_for, tensorrt)
from interactive_trt.runners.base import Runner

DEFAULT_MAX_BATCH = 32
DEFAULT_BUDGET_SHARE = 0.75
MIB = 1 << 20


def prebuilt_batches(engines: list[dict], platform) -> tuple[int, int | None] | None:
    """The batch range (largest, tuned-for) that export built for this GPU, so its engines are the ones found."""
    mine = [entry for entry in engines
            if entry.get("gpu_name") == platform.gpu_name and entry.get("tensorrt_version") == platform.tensorrt_version]
    if not mine:
        return None
    best = max(mine, key=lambda entry: entry.get("max_batch", DEFAULT_MAX_BATCH))
    return best.get("max_batch", DEFAULT_MAX_BATCH), best.get("opt_batch")


class TensorRTRunner(Runner):
    name = "tensorrt"

    def __init__(self, model, device: str = "auto", max_batch: int | None = None, batch_size: int | None = None,
                 opt_batch: int | None = None, memory_budget: int | None = None, engines=None, log=print):
        super().__init__(model)
        if device == "cpu":
            raise BackendUnavailable("the TensorRT backend runs on a GPU only; use --backend onnxruntime --device cpu")
        self.max_batch, self.batch_size, self.opt_batch = max_batch, batch_size, opt_batch
        self.memory_budget, self.engines_folder, self.log = memory_budget, engines, log
        self.slots: OrderedDict[tuple[int, int], ResolutionSlot] = OrderedDict()

    def activate_impl(self) -> None:
        trt = tensorrt()
        self.platform = gpu_platform()
        prebuilt = prebuilt_batches(self.model.manifest.engines, self.platform)
        if self.max_batch is None:
            self.max_batch = prebuilt[0] if prebuilt else DEFAULT_MAX_BATCH
        if self.opt_batch is None:
            if prebuilt and prebuilt[0] == self.max_batch and prebuilt[1]:
                self.opt_batch = prebuilt[1]
            else:
                self.opt_batch = opt_batch_for(1, self.max_batch, self.batch_size or DEFAULT_OPT_BATCH)
        self.batch_size = min(self.batch_size or self.opt_batch, self.max_batch)
        folder = self.engines_folder or self.model.folder
        self.cache = engine_cache_for(self.model.onnx_path, self.model.manifest, folder, self.platform, 1,
                                      self.max_batch, log=self.log, opt_batch=self.opt_batch)
        self.runtime = trt.Runtime(logger())
        self.stream = call("cudaStreamCreate", cudart().cudaStreamCreate())
        self.scratch = SharedScratch()
        if self.memory_budget is None:
            free, _total = call("cudaMemGetInfo", cudart().cudaMemGetInfo())
            self.memory_budget = int(DEFAULT_BUDGET_SHARE * free)

    # ---------------------------------------------------------------- slots
    def held_bytes(self) -> int:
        return self.scratch.size + sum(slot.device_bytes for slot in self.slots.values())

    def _evict_for(self, incoming: int, keep=None) -> None:
        """Unloads least recently used slots until `incoming` more bytes fit the budget (or none is left)."""
        for key in list(self.slots):
            if self.held_bytes() + incoming <= self.memory_budget:
                return
            if key == keep:
                continue
            slot = self.slots.pop(key)
            slot.free()
            self.log(f"unloaded the {slot.label} engine (least recently used; GPU memory budget "
                     f"{self.memory_budget / MIB:.0f} MiB)")

    def slot(self, height: int, width: int) -> ResolutionSlot:
        key = (height, width)
        if key in self.slots:
            self.slots.move_to_end(key)
            return self.slots[key]
        _, plan = self.cache.get(height, width)
        self._evict_for(len(plan))
        slot = ResolutionSlot(self.runtime, plan, self.model.manifest.input_name, self.max_batch, height, width,
                              scratch=self.scratch, batch=self.batch_size)
        self.slots[key] = slot
        self._evict_for(0, keep=key)
        self.log(f"loaded the {slot.label} engine: {slot.plan_bytes / MIB:.0f} MiB engine, {slot.io_bytes / MIB:.0f} "
                 f"MiB buffers for batch {slot.capacity}; {len(self.slots)} engine(s) and {self.scratch.size / MIB:.0f} "
                 f"MiB shared activations hold {self.held_bytes() / MIB:.0f} of {self.memory_budget / MIB:.0f} MiB")
        return slot

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        slot = self.slot(image.shape[2], image.shape[3])
        parts = [slot.run(image[start:start + self.max_batch], self.stream)
                 for start in range(0, image.shape[0], self.max_batch)]
        self._evict_for(0, keep=(image.shape[2], image.shape[3]))  # a larger batch may have grown its buffers
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def bound_impl(self, image: np.ndarray):
        """execute_async_v3 alone: the batch uploaded once (it must fit one engine call) and the shape and
        activation memory set; each call enqueues and waits for the stream."""
        if image.shape[0] > self.max_batch:
            raise BackendUnavailable(f"{self.name}: a bound batch of {image.shape[0]} is over the engines' "
                                     f"largest ({self.max_batch})")
        slot = self.slot(image.shape[2], image.shape[3])
        slot.run(image, self.stream)

        def run() -> None:
            slot.enqueue(self.stream)
            call("cudaStreamSynchronize", cudart().cudaStreamSynchronize(self.stream))

        return run

    def deactivate_impl(self) -> None:
        for slot in self.slots.values():
            slot.free()
        self.slots = OrderedDict()
        self.scratch.free()
        cudart().cudaStreamDestroy(self.stream)
