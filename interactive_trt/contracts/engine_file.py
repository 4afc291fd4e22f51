"""The engine file: a serialized TensorRT plan wrapped with the facts that decide whether it may run.

A plan is only valid for the ONNX graph, input resolution, batch range, precision, TensorRT version
and GPU (name and compute capability) it was built for, and TensorRT itself may crash on a foreign
or truncated plan. So the file starts with a small JSON header carrying those facts and the plan's
sha256; the runtime reads and checks the header (no TensorRT needed) and refuses, with the command
that rebuilds it, anything that does not match, before TensorRT ever sees the bytes.

Layout: b"ITRTENG1" | uint32 little-endian header length | header JSON (UTF-8) | plan bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.manifest import atomic_write_bytes

MAGIC = b"ITRTENG1"


class EngineError(InterActiveError):
    """An engine file that is damaged, stale, or built for another machine."""


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine is only valid for; two keys equal means one engine serves both."""

    onnx_sha256: str
    height: int
    width: int
    min_batch: int
    max_batch: int
    precision: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    opt_batch: int | None = None  # the batch the optimization profile is tuned for (None: files before it was)

    def file_name(self, stem: str) -> str:
        tuned = "" if self.opt_batch is None else f"-opt{self.opt_batch}"
        return (f"{stem}_{self.height}x{self.width}_b{self.min_batch}-{self.max_batch}{tuned}_{self.precision}"
                f"_{platform_tag(self.tensorrt_version, self.gpu_name, self.compute_capability)}"
                f"_{self.onnx_sha256[:8]}.engine")


def platform_tag(tensorrt_version: str, gpu_name: str, compute_capability: str) -> str:
    """What ties a plan or a timing cache to a machine, as it appears in file names: trt11.1.0_nvidia-h100-sm90."""
    gpu = gpu_name.lower().replace(" ", "-")
    return f"trt{tensorrt_version}_{gpu}-sm{compute_capability.replace('.', '')}"


def rebuild_hint(key: EngineKey) -> str:
    tuned = "" if key.opt_batch is None else f" --opt-batch {key.opt_batch}"
    return (f"rebuild it on this machine: interactive-export ... --trt --{key.precision} "
            f"--buckets {key.height}x{key.width} --max-batch {key.max_batch}{tuned}")


def write_engine(path: Path, plan: bytes, key: EngineKey, extra: dict | None = None) -> None:
    header = {"format": "interactive-trt/engine", "key": asdict(key), "plan_sha256": hashlib.sha256(plan).hexdigest(),
              "plan_bytes": len(plan), **(extra or {})}
    encoded = json.dumps(header).encode()
    atomic_write_bytes(path, MAGIC + struct.pack("<I", len(encoded)) + encoded + bytes(plan))


def read_header(path: Path) -> tuple[dict, int]:
    """The header and the offset where the plan starts; EngineError for anything not well formed."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(MAGIC) + 4)
            if len(start) < len(MAGIC) + 4 or start[: len(MAGIC)] != MAGIC:
                raise EngineError(f"{path}: not an interactive-trt engine file (bad magic); rebuild it with "
                                  f"interactive-export ... --trt")
            (length,) = struct.unpack("<I", start[len(MAGIC):])
            if length > 1 << 20:
                raise EngineError(f"{path}: damaged engine header (claims {length} bytes)")
            raw = handle.read(length)
    except OSError as exc:
        raise EngineError(f"{path}: cannot read engine file ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode())
        EngineKey(**header["key"])
        int(header["plan_bytes"]), str(header["plan_sha256"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise EngineError(f"{path}: damaged or truncated engine header") from None
    return header, len(MAGIC) + 4 + length


def read_engine(path: Path, expected: EngineKey | None = None) -> tuple[EngineKey, bytes]:
    """The key and plan bytes of a complete, uncorrupted engine that matches `expected`."""
    header, offset = read_header(path)
    key = EngineKey(**header["key"])
    if expected is not None:
        check_key(path, key, expected)
    with open(path, "rb") as handle:
        handle.seek(offset)
        plan = handle.read()
    if len(plan) != header["plan_bytes"]:
        raise EngineError(f"{path}: truncated engine ({len(plan)} of {header['plan_bytes']} plan bytes); "
                          + rebuild_hint(key))
    if hashlib.sha256(plan).hexdigest() != header["plan_sha256"]:
        raise EngineError(f"{path}: engine plan is corrupted (digest mismatch); " + rebuild_hint(key))
    return key, plan


def check_key(path: Path, found: EngineKey, expected: EngineKey) -> None:
    if found.onnx_sha256 != expected.onnx_sha256:
        raise EngineError(f"{path}: stale engine, built from another ONNX model ({found.onnx_sha256[:12]}, "
                          f"the manifest says {expected.onnx_sha256[:12]}); " + rebuild_hint(expected))
    if (found.gpu_name, found.compute_capability) != (expected.gpu_name, expected.compute_capability):
        raise EngineError(f"{path}: engine built for {found.gpu_name} (sm {found.compute_capability}), this GPU is "
                          f"{expected.gpu_name} (sm {expected.compute_capability}); " + rebuild_hint(expected))
    if found.tensorrt_version != expected.tensorrt_version:
        raise EngineError(f"{path}: engine built with TensorRT {found.tensorrt_version}, this is "
                          f"{expected.tensorrt_version}; " + rebuild_hint(expected))
    if (found.height, found.width) != (expected.height, expected.width):
        raise EngineError(f"{path}: engine is for {found.height}x{found.width}, not "
                          f"{expected.height}x{expected.width}")
    if found.precision != expected.precision:
        raise EngineError(f"{path}: engine is {found.precision}, {expected.precision} was asked for")
    if not found.min_batch <= expected.max_batch <= found.max_batch:
        raise EngineError(f"{path}: engine takes batches {found.min_batch}..{found.max_batch}, "
                          f"not {expected.max_batch}; " + rebuild_hint(expected))
    if expected.opt_batch is not None and found.opt_batch != expected.opt_batch:
        raise EngineError(f"{path}: engine is tuned for batch {found.opt_batch}, not {expected.opt_batch}; "
                          + rebuild_hint(expected))
