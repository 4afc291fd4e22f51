"""Per-image result files, written atomically so a killed run never leaves a half-written one, and
recognised on the next run (same model digest) so finished images are not recomputed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from interactive_trt.contracts.manifest import atomic_write_bytes

META_KEY = "__meta__"


def result_path(out: Path, key: str) -> Path:
    return Path(out) / f"{key}.npz"


def npz_bytes(arrays: dict[str, np.ndarray], meta: dict, compressed: bool = True) -> bytes:
    """Named arrays plus a JSON `__meta__` record, as the bytes of one .npz file."""
    buffer = io.BytesIO()
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload[META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    (np.savez_compressed if compressed else np.savez)(buffer, **payload)
    return buffer.getvalue()


def read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and meta record of a file written by npz_bytes; OSError/ValueError/KeyError if damaged."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data[META_KEY]).decode())
        return {name: data[name] for name in data.files if name != META_KEY}, meta


def write_result(path: Path, outputs: dict[str, np.ndarray], meta: dict) -> None:
    atomic_write_bytes(path, npz_bytes(outputs, meta))


def read_result(path: Path, model_digest: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """The stored outputs if `path` is a complete result of this very model, else None."""
    try:
        arrays, meta = read_npz(path)
    except (OSError, ValueError, KeyError):  # json.JSONDecodeError is a ValueError
        return None
    return (arrays, meta) if meta.get("onnx_sha256") == model_digest else None


def write_failures(path: Path, failures) -> None:
    """failures.tsv: one `<path>\t<reason>` line per input that could not be processed."""
    atomic_write_bytes(path, "".join(f"{f.path}\t{f.reason}\n" for f in failures).encode())


def write_png(path: Path, rgb: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
