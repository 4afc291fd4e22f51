"""Running one TensorRT engine: an execution context with device buffers and pinned host buffers sized
for its largest batch, so copies are asynchronous and nothing is allocated per batch.

Here, not in the runtime, because export verifies every engine it builds (the runtime imports this;
the exporter never imports the runtime).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from interactive_trt.exporter.tensorrt.cuda import call, cudart, tensorrt
from interactive_trt.common.errors import BackendUnavailable, InterActiveError


class EngineRunError(InterActiveError):
    """TensorRT refused an input shape or failed to enqueue an engine; the message names the engine."""


def pinned_array(shape: tuple[int, ...], dtype) -> tuple[int, np.ndarray]:
    """Page-locked host memory viewed as a numpy array (the pointer is freed by the runner)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    pointer = call("cudaMallocHost", cudart().cudaMallocHost(max(nbytes, 1)))
    buffer = (ctypes.c_byte * max(nbytes, 1)).from_address(int(pointer))
    return pointer, np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


@dataclass
class Binding:
    name: str
    dtype: np.dtype
    device: int
    host_pointer: int
    host: np.ndarray  # largest batch; a run uses the leading rows

    def nbytes(self, shape) -> int:
        """Bytes of this tensor at `shape`, in the engine's own dtype (not the caller's array's)."""
        return int(np.prod(tuple(shape))) * self.dtype.itemsize


class ResolutionSlot:
    """An engine for one (height, width), its context and its buffers."""

    def __init__(self, runtime, plan: bytes, input_name: str, max_batch: int, height: int, width: int):
        trt = tensorrt()
        self.engine = runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise BackendUnavailable(f"TensorRT could not deserialize the {height}x{width} engine")
        self.context = self.engine.create_execution_context()
        self.input_name, self.max_batch, self.label = input_name, max_batch, f"{height}x{width}"
        self.set_shape((max_batch, 3, height, width))
        self.bindings: list[Binding] = []
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            shape = tuple(self.context.get_tensor_shape(name))
            nbytes = int(np.prod(shape)) * dtype.itemsize
            device = call("cudaMalloc", cudart().cudaMalloc(max(nbytes, 1)))
            host_pointer, host = pinned_array(shape, dtype)
            self.bindings.append(Binding(name, dtype, int(device), int(host_pointer), host))
            self.context.set_tensor_address(name, int(device))
        self.inputs = [b for b in self.bindings if b.name == input_name]
        self.outputs = [b for b in self.bindings if b.name != input_name]

    def set_shape(self, shape: tuple[int, ...]) -> None:
        """TensorRT answers a shape outside the engine's profile with False (and a log line), not an error."""
        if not self.context.set_input_shape(self.input_name, tuple(shape)):
            raise EngineRunError(f"TensorRT refused input shape {'x'.join(map(str, shape))} for the {self.label} "
                                 f"engine (it takes batches of up to {self.max_batch} at 3x{self.label})")

    def run(self, images: np.ndarray, stream) -> dict[str, np.ndarray]:
        runtime = cudart()
        to_device, to_host = runtime.cudaMemcpyKind.cudaMemcpyHostToDevice, runtime.cudaMemcpyKind.cudaMemcpyDeviceToHost
        batch = images.shape[0]
        if not 1 <= batch <= self.max_batch:
            raise EngineRunError(f"the {self.label} engine takes batches of 1 to {self.max_batch}, not {batch}")
        (image,) = self.inputs
        self.set_shape(images.shape)
        shape = tuple(self.context.get_tensor_shape(self.input_name))
        if shape != tuple(images.shape):
            raise EngineRunError(f"the {self.label} engine's input is {shape}, the batch is {tuple(images.shape)}")
        image.host[:batch] = images  # converted to the binding's dtype here
        call("cudaMemcpyAsync", runtime.cudaMemcpyAsync(image.device, image.host_pointer, image.nbytes(shape),
                                                        to_device, stream))
        if not self.context.execute_async_v3(int(stream)):
            raise EngineRunError(f"TensorRT failed to enqueue the {self.label} engine (its log above says why)")
        sizes = {}
        for output in self.outputs:
            shape = tuple(self.context.get_tensor_shape(output.name))
            sizes[output.name] = shape
            call("cudaMemcpyAsync", runtime.cudaMemcpyAsync(output.host_pointer, output.device, output.nbytes(shape),
                                                            to_host, stream))
        call("cudaStreamSynchronize", runtime.cudaStreamSynchronize(stream))
        return {o.name: o.host.reshape(-1)[: int(np.prod(sizes[o.name]))].reshape(sizes[o.name]).astype(np.float32)
                for o in self.outputs}

    def free(self) -> None:
        runtime = cudart()
        for binding in self.bindings:
            runtime.cudaFree(binding.device)
            runtime.cudaFreeHost(binding.host_pointer)
        self.bindings, self.context, self.engine = [], None, None
