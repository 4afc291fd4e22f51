"""Per-image result files, written atomically so a killed run never leaves a half-written one, and
recognised on the next run (same model digest) so finished images are not recomputed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from exporter.manifest import atomic_write_bytes

META_KEY = "__meta__"


def result_path(out: Path, key: str) -> Path:
    return Path(out) / f"{key}.npz"


def write_result(path: Path, outputs: dict[str, np.ndarray], meta: dict) -> None:
    buffer = io.BytesIO()
    arrays = {name: np.asarray(value) for name, value in outputs.items()}
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_result(path: Path, model_digest: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """The stored outputs if `path` is a complete result of this very model, else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data[META_KEY]).decode())
            if meta.get("onnx_sha256") != model_digest:
                return None
            return {name: data[name] for name in data.files if name != META_KEY}, meta
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def write_png(path: Path, rgb: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
