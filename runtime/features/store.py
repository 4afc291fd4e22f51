"""Features of one dataset split, written as atomic shard files while a run goes, then one file.

A run appends shards `<split>.parts/part-<writer>-<n>.npz`, each complete or absent (atomic rename),
so a run killed at any moment loses at most the images of the shard it was filling. The next run
reads the shards, skips their images, and when every image is done assembles `<split>.npz` in the
dataset's order. Several writers (Ray workers) can fill one parts folder side by side: the shard
names carry the writer, and `header.json` there is the manifest every writer must agree with.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.manifest import atomic_write_bytes, atomic_write_json

from interactive_trt.runtime.inference.writers import npz_bytes, read_npz

FEATURE_SUFFIXES = ("_avg", "_max")


def is_feature_output(name: str) -> bool:
    """Pooled vectors (N, D); the gamma maps vary in size per image and are not stored here."""
    return name.endswith(FEATURE_SUFFIXES) and not name.startswith("imagenet.")


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    try:
        return read_npz(path)
    except (OSError, ValueError, KeyError) as exc:
        raise InterActiveError(f"{path}: not a readable feature file ({type(exc).__name__})") from None


@dataclass
class FeatureSet:
    path: Path
    keys: list[str]
    labels: np.ndarray
    classes: list[str]
    arrays: dict[str, np.ndarray]
    meta: dict


def load_features(path: Path) -> FeatureSet:
    path = Path(path)
    if not path.is_file():
        raise InterActiveError(f"{path}: no such feature file (make it with interactive-features)")
    arrays, meta = _read_npz(path)
    if "labels" not in arrays or "keys" not in arrays:
        raise InterActiveError(f"{path}: a feature file needs 'keys' and 'labels'")
    keys = [str(k) for k in arrays.pop("keys")]
    labels = arrays.pop("labels").astype(np.int64)
    return FeatureSet(path, keys, labels, list(meta.get("classes", [])), arrays, meta)


class ShardWriter:
    def __init__(self, parts: Path, writer: str, shard_size: int):
        self.parts, self.writer, self.shard_size = parts, writer, max(1, shard_size)
        self.buffer: list[tuple[str, int, dict[str, np.ndarray]]] = []
        self.count = 0

    def add(self, key: str, label: int, outputs: dict[str, np.ndarray]) -> None:
        self.buffer.append((key, label, {n: np.asarray(v, dtype=np.float32) for n, v in outputs.items()
                                         if is_feature_output(n)}))
        if len(self.buffer) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        names = sorted(self.buffer[0][2])
        arrays = {name: np.stack([entry[2][name] for entry in self.buffer]) for name in names}
        arrays["keys"] = np.array([entry[0] for entry in self.buffer])
        arrays["labels"] = np.array([entry[1] for entry in self.buffer], dtype=np.int64)
        self.count += 1
        atomic_write_bytes(self.parts / f"part-{self.writer}-{self.count:06d}.npz", npz_bytes(arrays, {}, compressed=False))
        self.buffer.clear()


class FeatureStore:
    def __init__(self, out: Path, split: str, header: dict, overwrite: bool = False):
        self.out, self.split, self.header = Path(out), split, header
        self.final = self.out / f"{split}.npz"
        self.parts = self.out / f"{split}.parts"
        if overwrite:
            shutil.rmtree(self.parts, ignore_errors=True)
            self.final.unlink(missing_ok=True)
        manifest = self.parts / "header.json"
        if manifest.exists():
            try:
                stored = json.loads(manifest.read_text())
            except (OSError, json.JSONDecodeError):
                raise InterActiveError(f"{manifest}: damaged; use --overwrite to start the split again") from None
            if stored != header:
                changed = sorted(k for k in set(stored) | set(header) if stored.get(k) != header.get(k))
                raise InterActiveError(f"{self.parts}: earlier shards were made with different {', '.join(changed)}; "
                                       f"use another --out or --overwrite")
        elif not self.is_complete():
            atomic_write_json(manifest, header)

    def is_complete(self) -> bool:
        if not self.final.exists():
            return False
        meta = _read_npz(self.final)[1]
        return all(meta.get(k) == v for k, v in self.header.items())

    def shard_files(self) -> list[Path]:
        return sorted(self.parts.glob("part-*.npz")) if self.parts.is_dir() else []

    def done(self) -> dict[str, tuple[Path, int]]:
        """Finished image keys -> (shard, row)."""
        found = {}
        for shard in self.shard_files():
            try:
                with np.load(shard, allow_pickle=False) as data:  # reads the keys only
                    keys = data["keys"]
            except (OSError, ValueError, KeyError) as exc:
                raise InterActiveError(f"{shard}: not a readable shard ({type(exc).__name__}); "
                                       f"delete it to recompute its images") from None
            for row, key in enumerate(keys):
                found[str(key)] = (shard, row)
        return found

    def writer(self, shard_size: int = 64, name: str | None = None) -> ShardWriter:
        self.parts.mkdir(parents=True, exist_ok=True)
        return ShardWriter(self.parts, name or uuid.uuid4().hex[:12], shard_size)

    def assemble(self, order: list[tuple[str, str]], meta: dict) -> int:
        """Write `<split>.npz` with the done images in dataset `order` [(key, path)]; remove the shards."""
        rows: dict[str, tuple[dict, int]] = {}
        for shard in self.shard_files():
            arrays, _ = _read_npz(shard)
            for row, key in enumerate(arrays["keys"]):
                rows[str(key)] = (arrays, row)
        present = [(key, path) for key, path in order if key in rows]
        if not present:
            raise InterActiveError(f"{self.split}: no image of this split could be processed; nothing to write")
        names = [n for n in rows[present[0][0]][0] if n not in ("keys", "labels")]
        result = {name: np.stack([rows[k][0][name][rows[k][1]] for k, _ in present]) for name in names}
        result["keys"] = np.array([k for k, _ in present])
        result["paths"] = np.array([p for _, p in present])
        result["labels"] = np.array([rows[k][0]["labels"][rows[k][1]] for k, _ in present], dtype=np.int64)
        atomic_write_bytes(self.final, npz_bytes(result, {**meta, **self.header}, compressed=False))
        shutil.rmtree(self.parts, ignore_errors=True)
        return len(present)
