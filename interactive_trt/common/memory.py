"""Freed memory kept in the process for eager PyTorch on the CPU.

Eager PyTorch on the CPU has no caching allocator. glibc's malloc serves every block over its mmap
threshold (at most 32 MiB) with a fresh mapping and unmaps it on free, so each call of a torch graph
faults every page of its large tensors in again, where ONNX Runtime and OpenVINO reuse their arenas. On
this project's VM (a Firecracker guest, 2 cores) that cost the plain-autograd peer 0.05 to 1.9 s of
system time per EfficientNet-B0 InterActive pass at 512x512, and the torch backend 13-19% of its pass
(2026-12-06, docs/benchmarks.md)."""

from __future__ import annotations

import os

KEEP_BYTES = 1 << 30  # glibc's mmap and trim thresholds when freed memory is kept
# glibc's own variables for the same thresholds: where the user set either, their choice stands
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks of up to KEEP_BYTES in the process instead of returning them to the
    system; True where it took. Process-wide and not undone: memory a torch call freed stays for the next
    one (the process's size stays at its largest call's), which is what a runner called again needs. Not
    glibc (macOS, musl), or the user's own MALLOC_* thresholds set: nothing is changed."""
    setter = mallopt()
    if setter is None or any(name in os.environ for name in GLIBC_VARIABLES):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(setter(m_mmap_threshold, KEEP_BYTES)) and bool(setter(m_trim_threshold, KEEP_BYTES))


def mallopt():
    """glibc's mallopt, or None where the C library is another (macOS, musl, Windows)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None
