"""Engines per input resolution, found by their build key or built on first use.

The file name carries the whole key (ONNX digest, resolution, batch range and the batch tuned for,
precision, TensorRT version, GPU), so an engine built elsewhere or from another model is never picked up by mistake:
it simply is not the file looked for. A missing or damaged engine is built under an exclusive file
lock, so two processes never build or write the same engine at once; the second one waits and then
loads what the first wrote. Engine files are written atomically (exporter.engine_file).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from interactive_trt.contracts.engine_file import EngineError, EngineKey, read_engine, write_engine


@dataclass(frozen=True)
class Platform:
    """What an engine is tied to besides the model: TensorRT's version and the GPU."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str


@contextmanager
def exclusive(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


class EngineCache:
    def __init__(self, folder: Path, stem: str, onnx_sha256: str, platform: Platform, precision: str,
                 min_batch: int, max_batch: int, builder: Callable[[EngineKey], bytes],
                 log: Callable[[str], None] = lambda message: None, opt_batch: int | None = None):
        self.folder, self.stem, self.onnx_sha256 = Path(folder), stem, onnx_sha256
        self.platform, self.precision = platform, precision
        self.min_batch, self.max_batch, self.opt_batch = min_batch, max_batch, opt_batch
        self.builder, self.log = builder, log

    def key(self, height: int, width: int) -> EngineKey:
        return EngineKey(self.onnx_sha256, height, width, self.min_batch, self.max_batch, self.precision,
                         self.platform.tensorrt_version, self.platform.gpu_name, self.platform.compute_capability,
                         self.opt_batch)

    def path(self, key: EngineKey) -> Path:
        return self.folder / key.file_name(self.stem)

    def get(self, height: int, width: int) -> tuple[Path, bytes]:
        key = self.key(height, width)
        path = self.path(key)
        plan = self._load(path, key)
        if plan is not None:
            return path, plan
        with exclusive(path.with_name(path.name + ".lock")):
            plan = self._load(path, key)  # another process may have built it while we waited
            if plan is None:
                self.log(f"building engine {path.name} (first use of {height}x{width})")
                plan = self.builder(key)
                write_engine(path, plan, key)
        return path, plan

    def _load(self, path: Path, key: EngineKey) -> bytes | None:
        if not path.exists():
            return None
        try:
            return read_engine(path, expected=key)[1]
        except EngineError as exc:
            self.log(f"{exc}; rebuilding")
            return None
