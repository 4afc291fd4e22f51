"""The builder's timing cache on disk: one file per model, TensorRT version and GPU, shared by its buckets.

Why keyed like the engines: TensorRT refuses a timing cache made by another TensorRT version or on another
GPU (`set_timing_cache` returns False), so a cache shared across machines would be ignored, and a file
written back unchanged would never recover. Why merged under a lock: two processes building different
buckets of one model each start from the file as it was; writing their own cache back would drop the
other's timings, so each combines its timings into the file's current contents (`ITimingCache.combine`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.engine_file import platform_tag
from interactive_trt.contracts.manifest import atomic_write_bytes
from interactive_trt.exporter.tensorrt.cache import Platform, exclusive


class TimingCacheError(InterActiveError):
    """TensorRT would not take even an empty timing cache."""


def timing_cache_path(folder: Path, stem: str, platform: Platform) -> Path:
    tag = platform_tag(platform.tensorrt_version, platform.gpu_name, platform.compute_capability)
    return Path(folder) / f"{stem}_{tag}.timing-cache"


class TimingCacheFile:
    def __init__(self, path: Path, log: Callable[[str], None] = print):
        self.path, self.log = Path(path), log
        self.lock = self.path.with_name(self.path.name + ".lock")

    def _read(self) -> bytes:
        with exclusive(self.lock):
            return self.path.read_bytes() if self.path.is_file() else b""

    def attach(self, config):
        """Gives `config` the cache from disk, or an empty one when there is none or TensorRT rejects it."""
        blob = self._read()
        if blob:
            cache = config.create_timing_cache(blob)
            if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
                return cache
            self.log(f"{self.path.name}: TensorRT rejected this timing cache (damaged, or from another TensorRT "
                     f"or GPU); starting an empty one, merged into the file after the build")
        cache = config.create_timing_cache(b"")
        if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
            raise TimingCacheError(f"{self.path}: TensorRT refused an empty timing cache")
        return cache

    def save(self, config, cache) -> None:
        """Merges this build's timings into the file as it is now (another process may have added its own)."""
        with exclusive(self.lock):
            blob = self.path.read_bytes() if self.path.is_file() else b""
            merged = cache
            if blob:
                on_disk = config.create_timing_cache(blob)
                if on_disk is not None and on_disk.combine(cache, False):
                    merged = on_disk  # the file's timings plus ours
                # else the file is damaged or foreign: ours replaces it, so it recovers
            atomic_write_bytes(self.path, bytes(merged.serialize()))
