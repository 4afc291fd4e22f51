"""Freed memory: kept in the process for eager PyTorch on the CPU, returned to the system between the
stages of an export.

Eager PyTorch on the CPU has no caching allocator. glibc's malloc serves every block over its mmap
threshold (at most 32 MiB) with a fresh mapping and unmaps it on free, so each call of a torch graph
faults every page of its large tensors in again, where ONNX Runtime and OpenVINO reuse their arenas. On
this project's VM (a Firecracker guest, 2 cores) that cost the plain-autograd peer 0.05 to 1.9 s of
system time per EfficientNet-B0 InterActive pass at 512x512, and the torch backend 13-19% of its pass
(2026-12-06, docs/benchmarks.md). The thresholds alone did not keep the large blocks of other threads:
a thread's own glibc arena grows in heaps of 64 MiB, and a block that does not fit in one (a 64-channel
map at 512x512) is mapped and unmapped whatever the thresholds say, so a torch pass called from a worker
thread (a server's pool) faulted its large maps in again on every call. Kept memory also puts threads on
the main arena. An export is the other case: each stage (the torch graph, then one runtime after
another) frees what the next does not need, and what glibc keeps of it adds to the next stage's peak
(issue 24)."""

from __future__ import annotations

import functools
import os

KEEP_BYTES = 1 << 30  # glibc's mmap and trim thresholds when freed memory is kept
# glibc's own variables for the same thresholds: where the user set either, their choice stands
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
ARENAS_VARIABLE = "MALLOC_ARENA_MAX"  # glibc's own for the number of arenas: the user's choice stands too
kept = False  # keep_freed_memory took: return_freed_memory leaves the process as it is


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks of up to KEEP_BYTES in the process instead of returning them to the
    system; True where it took. Process-wide and not undone: memory a torch call freed stays for the next
    one (the process's size stays at its largest call's), which is what a runner called again needs.
    A thread that has not allocated yet will allocate from the main arena (unless the user set
    MALLOC_ARENA_MAX), where a large block is kept as well. Not glibc (macOS, musl), or the user's own
    MALLOC_* thresholds set: nothing is changed."""
    global kept
    setter = c_function("mallopt")
    if setter is None or any(name in os.environ for name in GLIBC_VARIABLES):
        return False
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # malloc.h
    kept = bool(setter(m_mmap_threshold, KEEP_BYTES)) and bool(setter(m_trim_threshold, KEEP_BYTES))
    if kept and ARENAS_VARIABLE not in os.environ:
        setter(m_arena_max, 1)
    return kept


def return_freed_memory(collect: bool = True) -> None:
    """Have glibc return the free pages it holds to the system (after a garbage collection, unless
    `collect` is False: where what was freed is known to be gone, a collection of a large process costs
    tenths of a second): between the stages of an export, each of which frees what the next does not need.
    glibc keeps what a stage frees in blocks under its mmap threshold, and trims its heaps only from the
    top, so without this a VGG-19 export carried 0.8 GiB of its torch stage into each runtime's (issue 24).
    Nothing where the C library is another, or where freed memory is kept on purpose (keep_freed_memory)."""
    if collect:
        import gc

        gc.collect()
    trim = c_function("malloc_trim")
    if trim is not None and not kept:
        trim(0)


@functools.cache
def c_function(name: str):
    """glibc's function `name`, or None where the C library is another (macOS, musl, Windows). Cached:
    finding the C library may run ldconfig."""
    import ctypes
    import ctypes.util

    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
