"""Finds an exported model from what the user typed (.onnx, manifest, or folder) and checks it
against its manifest before any backend touches it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from interactive_trt.common.errors import ManifestError
from interactive_trt.contracts.graph import OnnxGraph
from interactive_trt.contracts.manifest import Manifest, check_model_file, load_manifest, manifest_path_for


@dataclass
class ExportedModel:
    """An exported file and its manifest; to a runner (interactive_trt.runners) it is what
    contracts.graph.OnnxGraph is, read from the manifest."""

    onnx_path: Path
    manifest_path: Path
    manifest: Manifest

    @property
    def folder(self) -> Path:
        return self.onnx_path.parent

    @property
    def input_name(self) -> str:
        return self.manifest.input_name

    @property
    def output_names(self) -> list[str]:
        return self.manifest.output_names

    @property
    def precision(self) -> str:
        return self.manifest.precision

    def check_input(self, image, who: str) -> None:
        OnnxGraph(self.onnx_path, self.input_name, spec=self.manifest.model).check_input(image, who)


def find_manifest(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: no such model file or folder")
    if path.is_dir():
        manifests = sorted(p for p in path.glob("*.json") if _looks_like_manifest(p))
        if not manifests:
            raise ManifestError(f"{path}: no exported model here (run interactive-export --out {path})")
        if len(manifests) > 1:
            names = ", ".join(p.name for p in manifests)
            raise ManifestError(f"{path}: several models here ({names}); pass the .onnx file you want")
        return manifests[0]
    if path.suffix == ".json":
        return path
    return manifest_path_for(path)


def _looks_like_manifest(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return b"interactive-trt/manifest" in handle.read(256)
    except OSError:
        return False


def load_model(path: Path, check_digest: bool = True) -> ExportedModel:
    manifest_path = find_manifest(path)
    manifest = load_manifest(manifest_path)
    onnx_path = manifest_path.parent / manifest.onnx_file
    if not onnx_path.is_file():
        raise ManifestError(f"{onnx_path}: model file named by {manifest_path} is missing")
    if check_digest:
        check_model_file(manifest, onnx_path)
    return ExportedModel(onnx_path=onnx_path, manifest_path=manifest_path, manifest=manifest)


def check_onnx_structure(model: ExportedModel) -> None:
    """Refuse an ONNX file whose inputs and outputs are not the manifest's, before running it."""
    try:
        proto = onnx.load(str(model.onnx_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise ManifestError(f"{model.onnx_path}: not a readable ONNX model ({type(exc).__name__})") from None
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if inputs != [model.manifest.input_name] or outputs != model.manifest.output_names:
        raise ManifestError(f"{model.onnx_path}: inputs/outputs differ from its manifest {model.manifest_path}")
