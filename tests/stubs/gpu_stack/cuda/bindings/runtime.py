"""Stand-in for cuda-python's `cuda.bindings.runtime`: the calls this project makes, returning the same
(error, *values) tuples. Device memory is a bytearray per allocation at a fake address, so copies past
an allocation or into freed memory fail the way they would corrupt a real GPU's memory."""

from __future__ import annotations

import ctypes
import enum
from types import SimpleNamespace


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorNoDevice = 100


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


OK = cudaError_t.cudaSuccess
STATE = SimpleNamespace()
DEVICE: dict[int, bytearray] = {}  # address -> allocation
HOST: dict[int, ctypes.Array] = {}  # address -> pinned buffer
COPIES: list[tuple[str, int]] = []  # ("h2d" | "d2h", bytes) per cudaMemcpyAsync


def reset(devices: int = 1, total: int = 80 << 30, name: bytes = b"NVIDIA Stub GPU", major: int = 9,
          minor: int = 0, driver: int = 13000) -> None:
    DEVICE.clear()
    HOST.clear()
    COPIES.clear()
    STATE.__dict__.update(devices=devices, total=total, name=name, major=major, minor=minor, driver=driver,
                          next_address=1 << 40, next_stream=1, streams=set())


reset()


def used() -> int:
    return sum(len(block) for block in DEVICE.values())


def device_view(address: int, nbytes: int) -> memoryview:
    """The bytes [address, address + nbytes) of one live allocation; ValueError for anything else."""
    for start, block in DEVICE.items():
        if start <= address and address + nbytes <= start + len(block):
            return memoryview(block)[address - start:address - start + nbytes]
    raise ValueError(f"device range {address:#x}+{nbytes} is not inside one live allocation")


def cudaGetErrorString(error):
    return OK, cudaError_t(error).name.encode()


def cudaGetDeviceCount():
    return OK, STATE.devices


def cudaGetDeviceProperties(device):
    if device >= STATE.devices:
        return cudaError_t.cudaErrorInvalidValue, None
    return OK, SimpleNamespace(name=STATE.name + b"\x00" * 8, major=STATE.major, minor=STATE.minor,
                               totalGlobalMem=STATE.total)


def cudaDriverGetVersion():
    return OK, STATE.driver


def cudaRuntimeGetVersion():
    return OK, 13000


def cudaMemGetInfo():
    return OK, STATE.total - used(), STATE.total


def cudaMalloc(nbytes):
    if nbytes <= 0 or used() + nbytes > STATE.total:
        return cudaError_t.cudaErrorMemoryAllocation, 0
    address = STATE.next_address
    STATE.next_address += (nbytes + 4095) // 4096 * 4096 + 4096
    DEVICE[address] = bytearray(nbytes)
    return OK, address


def cudaFree(address):
    if int(address) not in DEVICE:
        return (cudaError_t.cudaErrorInvalidValue,)
    del DEVICE[int(address)]
    return (OK,)


def cudaMallocHost(nbytes):
    buffer = ctypes.create_string_buffer(int(nbytes))
    HOST[ctypes.addressof(buffer)] = buffer
    return OK, ctypes.addressof(buffer)


def cudaFreeHost(address):
    if HOST.pop(int(address), None) is None:
        return (cudaError_t.cudaErrorInvalidValue,)
    return (OK,)


def _host_range_ok(address: int, nbytes: int) -> bool:
    return any(start <= address and address + nbytes <= start + len(buffer) for start, buffer in HOST.items())


def cudaMemcpyAsync(destination, source, nbytes, kind, stream):
    destination, source, nbytes = int(destination), int(source), int(nbytes)
    try:
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            if not _host_range_ok(source, nbytes):
                return (cudaError_t.cudaErrorInvalidValue,)
            device_view(destination, nbytes)[:] = ctypes.string_at(source, nbytes)
            COPIES.append(("h2d", nbytes))
        else:
            if not _host_range_ok(destination, nbytes):
                return (cudaError_t.cudaErrorInvalidValue,)
            ctypes.memmove(destination, bytes(device_view(source, nbytes)), nbytes)
            COPIES.append(("d2h", nbytes))
    except ValueError:
        return (cudaError_t.cudaErrorInvalidValue,)
    return (OK,)


def cudaStreamCreate():
    handle = STATE.next_stream
    STATE.next_stream += 1
    STATE.streams.add(handle)
    return OK, handle


def cudaStreamDestroy(stream):
    STATE.streams.discard(int(stream))
    return (OK,)


def cudaStreamSynchronize(stream):
    return (OK,)
