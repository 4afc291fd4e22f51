"""What every runtime command does first: find the exported model, check it, start a backend, and
say which model produced the numbers (engine, weights digest, configuration)."""

from __future__ import annotations

from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from interactive_trt.common.cli import err

from interactive_trt.runtime.backends import BATCH_SIZED, backend_name, make_runner
from interactive_trt.runtime.inference.model import ExportedModel, check_onnx_structure, load_model


def open_model(engine: Path) -> ExportedModel:
    model = load_model(engine)
    check_onnx_structure(model)
    return model


def start_runner(model: ExportedModel, backend: str, device: str, batch_size: int | None = None,
                 precision: str = "exported", **options):
    """`batch_size`: the batch the command will run, for the TensorRT backend to size its buffers and pick
    engines tuned for it; `precision`: 'exported', or a reduced one the backend offers (OpenVINO's bf16)."""
    if backend_name(backend) in BATCH_SIZED:
        options.setdefault("log", lambda message: err.print(message, highlight=False, markup=False))
        if batch_size is not None:
            options.setdefault("batch_size", batch_size)
    runner = make_runner(backend, model, device=device, precision=precision, **options)
    runner.activate()
    return runner


def provenance(model: ExportedModel, backend: str, precision: str = "exported") -> dict:
    manifest = model.manifest
    return {"engine": str(model.onnx_path), "model": manifest.model.name,
            "onnx_sha256": manifest.onnx_sha256, "weights": manifest.weights_source,
            "weights_sha256": manifest.weights_sha256, "config": manifest.config, "p": manifest.p,
            "backend": backend, "precision": precision}


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=err, transient=False)
