"""`interactive-infer`: parses options, calls `inference.job.infer_paths`, prints what it reports.

Exit codes: 0 every image done, 1 usage or model error (one line), 2 some images failed (listed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from interactive_trt.common.cli import err, fail, run_app
from interactive_trt.runtime.cli import PRECISION
from interactive_trt.common.errors import InterActiveError
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.job import InferEvents, InferOptions, check_options, infer_paths
from interactive_trt.runtime.inference.session import open_model, progress_bar, start_runner
from interactive_trt.runtime.backends import BACKEND_HELP, backend_name

app = typer.Typer(add_completion=False, no_args_is_help=True)


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected HxW, e.g. 512x512") from None
    return height, width


def format_top(top) -> str:
    return ", ".join(f"{name} ({score:.3g})" for _, name, score in top)


class ProgressEvents(InferEvents):
    """A rich progress bar, each image's top-k above it, failures in red."""

    def __init__(self, progress):
        self.progress = progress

    def started(self, runner_name: str, total: int) -> None:
        self.task = self.progress.add_task(runner_name, total=total, status="")

    def prediction(self, line: dict) -> None:
        self.progress.console.print(f"{line['image']} [{line['size'][0]}x{line['size'][1]}]\n"
                                    f"  original:    {format_top(line['original'])}\n"
                                    f"  InterActive: {format_top(line['interactive'])}", highlight=False,
                                    soft_wrap=True)

    def failure(self, failure: Failure) -> None:
        self.progress.console.print(f"[red]failed:[/] {escape(str(failure.path))}: {escape(failure.reason)}",
                                    highlight=False)

    def warning(self, warning: Failure) -> None:
        self.progress.console.print(f"[yellow]warning:[/] {escape(str(warning.path))}: {escape(warning.reason)}",
                                    highlight=False)

    def advanced(self) -> None:
        self.progress.advance(self.task)


@app.command()
def infer(
    paths: list[str] = typer.Argument(..., help="images, folders (searched recursively) or globs"),
    engine: Path = typer.Option(..., "--engine", help="exported model: .onnx file, its .json manifest, "
                                "or a folder holding one model (and its TensorRT engines)"),
    backend: str = typer.Option("onnxruntime", "--backend", help=BACKEND_HELP),
    precision: str = PRECISION,
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    out: Optional[Path] = typer.Option(None, "--out", help="write <image>.npz (features and gamma maps) here"),
    heatmaps: bool = typer.Option(False, "--heatmaps", help="also write <image>.<layer>.png overlays"),
    heatmap_layers: Optional[str] = typer.Option(None, "--heatmap-layers", help="comma-separated layers "
                                                 "(default: every gamma map)"),
    labels_file: Optional[Path] = typer.Option(None, "--labels", help="class names (synset words file)"),
    topk: int = typer.Option(5, "--topk", help="classes to print with the ImageNet head"),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="images per batch (per resolution)"),
    workers: int = typer.Option(2, "--workers", min=1, help="image decoding threads"),
    size: Optional[str] = typer.Option(None, "--size", help="force one input size HxW instead of the "
                                       "paper's resize rule"),
    overwrite: bool = typer.Option(False, "--overwrite", help="recompute images whose results exist"),
    gpu_memory: Optional[float] = typer.Option(None, "--gpu-memory", min=0.25, help="GiB of GPU memory the TensorRT "
                                               "backend may hold for engines, buffers and activations; least "
                                               "recently used engines are unloaded past it (default: 3/4 of the "
                                               "GPU memory free at start)"),
) -> None:
    """Run an exported InterActive model on images: features, weight maps, heat-maps, ImageNet top-k."""
    options = InferOptions(precision=precision, out=out, heatmaps=heatmaps, labels_file=labels_file, topk=topk, batch_size=batch_size,
                           workers=workers, size=parse_size(size), overwrite=overwrite,
                           heatmap_layers=[layer.strip() for layer in heatmap_layers.split(",")]
                           if heatmap_layers else None)
    try:
        model = open_model(engine)
        check_options(model, options)
        memory = {} if gpu_memory is None or backend_name(backend) != "tensorrt" else {
            "memory_budget": int(gpu_memory * (1 << 30))}
        runner = start_runner(model, backend, device, batch_size=batch_size, precision=precision, **memory)
    except InterActiveError as exc:
        fail(str(exc))
    progress = progress_bar()
    try:
        with progress:
            summary = infer_paths(model, runner, backend, paths, options, ProgressEvents(progress))
    except InterActiveError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; finished images are kept: run the same command again to resume", code=130)
    finally:
        runner.deactivate()
    err.print(f"{summary.done} done, {summary.skipped} already done (skipped), {len(summary.failures)} failed",
              highlight=False)
    if summary.failures:
        err.print("failures:", highlight=False)
        for failure in summary.failures:
            err.print(f"  {failure.path}: {failure.reason}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
