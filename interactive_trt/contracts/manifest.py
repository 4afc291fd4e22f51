"""The manifest: the JSON file beside each ONNX model (and engine) that the runtime trusts.

It records everything needed to use the model without re-deriving it: the layer table, the
preprocessing, the configuration (config, p, head, seed scale), the compute precision and its loss
scale, output names and shapes, the weights digest, the ONNX file's digest, tool versions and the
verification results; for a network imported from an ONNX file, that file (path, digest, producer, opset,
input layout, native size, the preprocessing its input expects) and which of its tensors each layer
holds. Manifests written before precisions existed read as fp32.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from interactive_trt.common.errors import ManifestError
from interactive_trt.contracts.outputs import PRECISIONS
from interactive_trt.contracts.spec import ModelSpec

FORMAT = "interactive-trt/manifest"
FORMAT_VERSION = 1


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            sha.update(block)
    return sha.hexdigest()


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temporary_beside(path: Path) -> Path:
    """An empty file next to `path` with the mode a plain open() would give it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    os.chmod(temporary, _file_mode())
    return Path(temporary)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: never a half-written file."""
    path = Path(path)
    temporary = temporary_beside(path)
    try:
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode())


@dataclass
class Manifest:
    model: ModelSpec
    onnx_file: str
    onnx_sha256: str
    weights_source: str
    weights_sha256: str
    config: str
    p: float
    head: str
    seed_scale: float
    interactive: bool
    opset: int
    input_name: str
    outputs: list[dict]
    tool_versions: dict
    verification: dict = field(default_factory=dict)
    engines: list[dict] = field(default_factory=list)
    precision: str = "fp32"
    loss_scale: float = 1.0
    calibration: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)  # an imported network: the file, its digest, native size, ...

    @property
    def output_names(self) -> list[str]:
        return [item["name"] for item in self.outputs]

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model.to_dict(),
            "onnx": {"file": self.onnx_file, "sha256": self.onnx_sha256, "opset": self.opset},
            "weights": {"source": self.weights_source, "sha256": self.weights_sha256},
            "interactive": {"config": self.config, "p": self.p, "head": self.head,
                            "seed_scale": self.seed_scale, "enabled": self.interactive},
            "input": {"name": self.input_name, "layout": "NCHW", "dtype": "float32",
                      "preprocessing": self.model.to_dict()["preprocessing"],
                      "resize": self.model.to_dict()["resize"]},
            "precision": {"compute": self.precision, "loss_scale": self.loss_scale,
                          "calibration": self.calibration},
            "outputs": self.outputs,
            "tool_versions": self.tool_versions,
            "verification": self.verification,
            "engines": self.engines,
            **({"source": self.source} if self.source else {}),
        }

    @classmethod
    def from_dict(cls, data: dict, origin: str = "manifest") -> "Manifest":
        if data.get("format") != FORMAT:
            raise ManifestError(f"{origin}: not an interactive-trt manifest (format {data.get('format')!r})")
        if data.get("format_version") != FORMAT_VERSION:
            raise ManifestError(
                f"{origin}: manifest format version {data.get('format_version')}, this tool reads "
                f"{FORMAT_VERSION}; re-export the model with this version of interactive-export"
            )
        precision = data.get("precision", {})
        if not isinstance(precision, dict) or precision.get("compute", "fp32") not in PRECISIONS:
            raise ManifestError(f"{origin}: unknown compute precision {precision!r}; expected one of "
                                f"{', '.join(PRECISIONS)}")
        try:
            return cls(
                model=ModelSpec.from_dict(data["model"]),
                onnx_file=data["onnx"]["file"],
                onnx_sha256=data["onnx"]["sha256"],
                opset=int(data["onnx"]["opset"]),
                weights_source=data["weights"]["source"],
                weights_sha256=data["weights"]["sha256"],
                config=data["interactive"]["config"],
                p=float(data["interactive"]["p"]),
                head=data["interactive"]["head"],
                seed_scale=float(data["interactive"]["seed_scale"]),
                interactive=bool(data["interactive"]["enabled"]),
                input_name=data["input"]["name"],
                outputs=list(data["outputs"]),
                tool_versions=dict(data["tool_versions"]),
                verification=dict(data.get("verification", {})),
                engines=list(data.get("engines", [])),
                precision=str(precision.get("compute", "fp32")),
                loss_scale=float(precision.get("loss_scale", 1.0)),
                calibration=dict(precision.get("calibration", {})),
                source=dict(data.get("source", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"{origin}: manifest is missing or has a malformed field ({exc})") from None

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.to_dict())


def manifest_path_for(onnx_path: Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def load_manifest(path: Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found (export writes it beside the .onnx file)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: manifest is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: manifest is not a JSON object")
    return Manifest.from_dict(data, origin=str(path))


def check_model_file(manifest: Manifest, onnx_path: Path) -> None:
    """Refuse an ONNX file that is not the one the manifest describes."""
    actual = sha256_file(onnx_path)
    if actual != manifest.onnx_sha256:
        raise ManifestError(
            f"{onnx_path}: digest {actual[:12]} does not match its manifest ({manifest.onnx_sha256[:12]}); "
            "the file was changed or truncated: re-run interactive-export"
        )
