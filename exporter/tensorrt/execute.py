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
from interactive_trt.common.errors import BackendUnavailable


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


class ResolutionSlot:
    """An engine for one (height, width), its context and its buffers."""

    def __init__(self, runtime, plan: bytes, input_name: str, max_batch: int, height: int, width: int):
        trt = tensorrt()
        self.engine = runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise BackendUnavailable(f"TensorRT could not deserialize the {height}x{width} engine")
        self.context = self.engine.create_execution_context()
        self.input_name, self.max_batch = input_name, max_batch
        self.context.set_input_shape(input_name, (max_batch, 3, height, width))
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

    def run(self, images: np.ndarray, stream) -> dict[str, np.ndarray]:
        runtime = cudart()
        to_device, to_host = runtime.cudaMemcpyKind.cudaMemcpyHostToDevice, runtime.cudaMemcpyKind.cudaMemcpyDeviceToHost
        batch = images.shape[0]
        (image,) = self.inputs
        image.host[:batch] = images
        self.context.set_input_shape(self.input_name, images.shape)
        call("cudaMemcpyAsync", runtime.cudaMemcpyAsync(image.device, image.host_pointer, images.nbytes, to_device,
                                                        stream))
        if not self.context.execute_async_v3(int(stream)):
            raise BackendUnavailable("TensorRT failed to enqueue the engine")
        sizes = {}
        for output in self.outputs:
            shape = tuple(self.context.get_tensor_shape(output.name))
            sizes[output.name] = shape
            nbytes = int(np.prod(shape)) * output.dtype.itemsize
            call("cudaMemcpyAsync", runtime.cudaMemcpyAsync(output.host_pointer, output.device, nbytes, to_host,
                                                            stream))
        call("cudaStreamSynchronize", runtime.cudaStreamSynchronize(stream))
        return {o.name: o.host.reshape(-1)[: int(np.prod(sizes[o.name]))].reshape(sizes[o.name]).astype(np.float32)
                for o in self.outputs}

    def free(self) -> None:
        runtime = cudart()
        for binding in self.bindings:
            runtime.cudaFree(binding.device)
            runtime.cudaFreeHost(binding.host_pointer)
        self.bindings, self.context, self.engine = [], None, None
