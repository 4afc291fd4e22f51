"""Running one TensorRT engine: its execution context, device buffers and pinned host buffers.

GPU memory is what bounds a run, so nothing here is sized for more than is used:

* Input and output buffers are sized for the largest batch this slot has run so far (the runner's batch,
  4 by default), not for the engine's largest batch (32), and grow if a larger batch comes.
* Activation memory (TensorRT's scratch for the intermediate tensors, by far the largest part) is
  given by the caller when TensorRT allows it (ExecutionContextAllocationStrategy.USER_MANAGED, TensorRT
  >= 10): one `SharedScratch` serves every context of a runner, because TensorRT only needs that memory
  from an enqueue to the end of its execution and a runner enqueues one engine at a time on its own
  stream, synchronising after each batch. It is sized for the shapes of the batch actually run
  (`update_device_memory_size_for_shapes`), not for the profile's largest.

Here, not in the runtime, because export verifies every engine it builds (the runtime imports this;
the exporter never imports the runtime).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from interactive_trt.common.errors import BackendUnavailable, InterActiveError
from interactive_trt.exporter.tensorrt.cuda import call, cudart, tensorrt


class EngineRunError(InterActiveError):
    """TensorRT refused an input shape or failed to enqueue an engine; the message names the engine."""


def pinned_array(shape: tuple[int, ...], dtype) -> tuple[int, np.ndarray]:
    """Page-locked host memory viewed as a numpy array (the pointer is freed by the slot)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    pointer = call("cudaMallocHost", cudart().cudaMallocHost(max(nbytes, 1)))
    buffer = (ctypes.c_byte * max(nbytes, 1)).from_address(int(pointer))
    return pointer, np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


class SharedScratch:
    """One block of activation memory for every context of a runner (they never run at the same time)."""

    def __init__(self):
        self.pointer, self.size = 0, 0

    def reserve(self, size: int) -> int:
        """A pointer to at least `size` bytes. Growing frees the old block: callers only reserve between
        batches, when the stream has been synchronised and no enqueued engine still uses it."""
        if size > self.size:
            self.free()
            self.pointer = int(call("cudaMalloc", cudart().cudaMalloc(size)))
            self.size = size
        return self.pointer

    def free(self) -> None:
        if self.pointer:
            cudart().cudaFree(self.pointer)
        self.pointer, self.size = 0, 0


@dataclass
class Binding:
    name: str
    dtype: np.dtype
    device: int
    host_pointer: int
    host: np.ndarray  # the slot's capacity; a run uses the leading rows
    nbytes_allocated: int

    def nbytes(self, shape) -> int:
        """Bytes of this tensor at `shape`, in the engine's own dtype (not the caller's array's)."""
        return int(np.prod(tuple(shape))) * self.dtype.itemsize


def user_managed_strategy(trt):
    strategies = getattr(trt, "ExecutionContextAllocationStrategy", None)  # TensorRT >= 10
    return None if strategies is None else strategies.USER_MANAGED


class ResolutionSlot:
    """An engine for one (height, width), its context and its buffers.

    `scratch`: the runner's shared activation memory; None lets TensorRT give this context its own,
    sized for the profile's largest batch. `batch`: the batch the caller will run most (buffers start
    at that size).
    """

    def __init__(self, runtime, plan: bytes, input_name: str, max_batch: int, height: int, width: int,
                 scratch: SharedScratch | None = None, batch: int | None = None):
        trt = tensorrt()
        self.label, self.plan_bytes = f"{height}x{width}", len(plan)
        self.engine = runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise BackendUnavailable(f"TensorRT could not deserialize the {self.label} engine")
        strategy = user_managed_strategy(trt) if scratch is not None else None
        if strategy is None:
            self.context, self.scratch = self.engine.create_execution_context(), None
        else:
            self.context, self.scratch = self.engine.create_execution_context(strategy), scratch
        self.input_name, self.max_batch, self.spatial = input_name, max_batch, (3, height, width)
        self.nptypes = {}
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            self.nptypes[name] = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
        self.bindings: list[Binding] = []
        self.capacity, self.memory_set = 0, None  # (pointer, size) last given to the context
        self.activation_bytes = 0
        self.reserve(min(batch or max_batch, max_batch))
        self._give_activation_memory()  # now, so that a runner counts it before the first batch

    # ---------------------------------------------------------------- memory
    @property
    def inputs(self) -> list[Binding]:
        return [b for b in self.bindings if b.name == self.input_name]

    @property
    def outputs(self) -> list[Binding]:
        return [b for b in self.bindings if b.name != self.input_name]

    @property
    def io_bytes(self) -> int:
        return sum(binding.nbytes_allocated for binding in self.bindings)

    @property
    def device_bytes(self) -> int:
        """What this slot holds on the GPU besides shared activations: the engine (its plan's size, weights
        and kernels) and its input and output buffers; plus its own activations when it has no scratch."""
        return self.plan_bytes + self.io_bytes + (0 if self.scratch is not None else self.activation_bytes)

    def reserve(self, batch: int) -> None:
        """Input and output buffers for `batch` images (reallocated only to grow)."""
        if batch <= self.capacity:
            return
        self.set_shape((batch, *self.spatial))
        self._free_buffers()
        for name, dtype in self.nptypes.items():
            shape = tuple(self.context.get_tensor_shape(name))
            nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
            device = int(call("cudaMalloc", cudart().cudaMalloc(nbytes)))
            host_pointer, host = pinned_array(shape, dtype)
            self.bindings.append(Binding(name, dtype, device, int(host_pointer), host, nbytes))
            self.context.set_tensor_address(name, device)
        self.capacity = batch
        if self.scratch is None:
            self.activation_bytes = int(getattr(self.engine, "device_memory_size_v2", 0) or 0)

    def set_shape(self, shape: tuple[int, ...]) -> None:
        """TensorRT answers a shape outside the engine's profile with False (and a log line), not an error."""
        if not self.context.set_input_shape(self.input_name, tuple(shape)):
            raise EngineRunError(f"TensorRT refused input shape {'x'.join(map(str, shape))} for the {self.label} "
                                 f"engine (it takes batches of up to {self.max_batch} at 3x{self.label})")

    def _give_activation_memory(self) -> None:
        """After the input shape is set: the scratch, sized for this batch's shapes."""
        if self.scratch is None:
            return
        needed = int(self.context.update_device_memory_size_for_shapes() or 0)
        if needed == 0:  # 0 means TensorRT could not size it: the profile's upper bound is always enough
            needed = int(self.engine.device_memory_size_v2)
        self.activation_bytes = needed
        pointer = self.scratch.reserve(needed)
        if self.memory_set != (pointer, needed):
            self.context.set_device_memory(pointer, needed)
            self.memory_set = (pointer, needed)

    # ---------------------------------------------------------------- running
    def prepare(self, images: np.ndarray, stream) -> None:
        """Shapes, memory and the upload of `images`; after this, `enqueue` runs the engine on them."""
        batch = images.shape[0]
        if not 1 <= batch <= self.max_batch:
            raise EngineRunError(f"the {self.label} engine takes batches of 1 to {self.max_batch}, not {batch}")
        self.reserve(batch)
        self.set_shape(images.shape)
        shape = tuple(self.context.get_tensor_shape(self.input_name))
        if shape != tuple(images.shape):
            raise EngineRunError(f"the {self.label} engine's input is {shape}, the batch is {tuple(images.shape)}")
        self._give_activation_memory()
        (image,) = self.inputs
        image.host[:batch] = images  # converted to the binding's dtype here
        runtime = cudart()
        call("cudaMemcpyAsync", runtime.cudaMemcpyAsync(image.device, image.host_pointer, image.nbytes(shape),
                                                        runtime.cudaMemcpyKind.cudaMemcpyHostToDevice, stream))

    def enqueue(self, stream) -> None:
        if not self.context.execute_async_v3(int(stream)):
            raise EngineRunError(f"TensorRT failed to enqueue the {self.label} engine (its log above says why)")

    def run(self, images: np.ndarray, stream) -> dict[str, np.ndarray]:
        runtime = cudart()
        self.prepare(images, stream)
        self.enqueue(stream)
        sizes = {}
        for output in self.outputs:
            shape = tuple(self.context.get_tensor_shape(output.name))
            sizes[output.name] = shape
            call("cudaMemcpyAsync", runtime.cudaMemcpyAsync(output.host_pointer, output.device, output.nbytes(shape),
                                                            runtime.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream))
        call("cudaStreamSynchronize", runtime.cudaStreamSynchronize(stream))
        return {o.name: o.host.reshape(-1)[: int(np.prod(sizes[o.name]))].reshape(sizes[o.name]).astype(np.float32)
                for o in self.outputs}

    # ---------------------------------------------------------------- teardown
    def _free_buffers(self) -> None:
        runtime = cudart()
        for binding in self.bindings:
            runtime.cudaFree(binding.device)
            runtime.cudaFreeHost(binding.host_pointer)
        self.bindings, self.capacity = [], 0

    def free(self) -> None:
        """Buffers back; the context and engine are dropped (TensorRT frees them with the last reference)."""
        self._free_buffers()
        self.context, self.engine, self.memory_set = None, None, None
