"""`interactive-features`: parses options, calls `features.job.extract_features`, prints what it reports.

Each split is an ImageFolder; the output `<out>/<split>.npz` holds, per feature layer, the Orig and
InterActive AVG/MAX vectors, plus keys, paths, labels, class names and the model's provenance.
Resumable: finished images live in atomic shards until the split is complete.

Exit codes: 0 done, 1 usage or data error (one line), 2 done but some images failed (listed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from interactive_trt.common.cli import err, fail, run_app
from interactive_trt.runtime.cli import PRECISION
from interactive_trt.common.errors import InterActiveError
from interactive_trt.runtime.features.job import (FeatureEvents, FeatureOptions, SplitResult, extract_features,
                                                  valid_split_name)
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.session import progress_bar
from interactive_trt.runtime.backends import BACKEND_HELP

app = typer.Typer(add_completion=False, no_args_is_help=True)


def parse_split(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep:
        folder = text
        name = Path(text.rstrip("/")).name or "all"
    if not valid_split_name(name):
        raise typer.BadParameter(f"{text!r}: a split name may hold letters, digits, - and _ only")
    return name, Path(folder)


class ProgressEvents(FeatureEvents):
    """One rich progress bar per split, skips and failures above it, one result line after it."""

    progress = None

    def started(self, info: dict) -> None:
        err.print("features from " + ", ".join(f"{k}={v}" for k, v in info.items()), highlight=False, soft_wrap=True)

    def skipped(self, split, skip) -> None:
        err.print(f"{split}: skipped {skip.path}: {skip.reason}", highlight=False, soft_wrap=True, markup=False)

    def split_started(self, split: str, total: int, done: int) -> None:
        if done:
            err.print(f"{split}: {done} of {total} images already done; resuming", highlight=False)
        self.progress = progress_bar()
        self.progress.start()
        self.task = self.progress.add_task(split, total=total, completed=done, status="")

    def advanced(self) -> None:
        self.progress.advance(self.task)

    def failure(self, failure: Failure) -> None:
        self.progress.console.print(f"[red]failed:[/] {escape(failure.path)}: {escape(failure.reason)}", highlight=False)

    def split_finished(self, result: SplitResult) -> None:
        self.close()
        if result.complete_already:
            err.print(f"{result.name}: {result.path} is complete already (use --overwrite to redo it)", highlight=False)
            return
        err.print(f"{result.name}: {result.images} images -> {result.path}"
                  + (f" ({len(result.failures)} failed, listed in {result.name}.failures.tsv)" if result.failures
                     else ""), highlight=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@app.command()
def features(
    splits: list[str] = typer.Argument(..., help="ImageFolder datasets, as DIR (split named after the folder) "
                                       "or NAME=DIR"),
    engine: Path = typer.Option(..., "--engine", help="exported model with the feature outputs"),
    out: Path = typer.Option(..., "--out", help="folder for <split>.npz"),
    synsets_file: Optional[Path] = typer.Option(None, "--synsets", help="class list for the labels "
                                                "(default: sorted class folders)"),
    backend: str = typer.Option("onnxruntime", "--backend", help=BACKEND_HELP),
    precision: str = PRECISION,
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="images per batch (per resolution)"),
    workers: int = typer.Option(2, "--workers", min=1, help="image decoding threads"),
    shard_size: int = typer.Option(64, "--shard-size", min=1, help="images per shard file while running"),
    ray: bool = typer.Option(False, "--ray", help="run on a Ray cluster (Ray Data, one model per worker)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="cluster address (default: start "
                                              "or join a local one)"),
    ray_workers: int = typer.Option(2, "--ray-workers", min=1, help="model replicas on the cluster"),
    overwrite: bool = typer.Option(False, "--overwrite", help="discard earlier results of these splits"),
) -> None:
    """Extract Orig and InterActive AVG/MAX features of every feature layer, one file per split."""
    parsed = [parse_split(text) for text in splits]
    options = FeatureOptions(precision=precision, synsets_file=synsets_file, backend=backend, device=device, batch_size=batch_size,
                             workers=workers, shard_size=shard_size, ray=ray, ray_address=ray_address,
                             ray_workers=ray_workers, overwrite=overwrite)
    events = ProgressEvents()
    try:
        summary = extract_features(engine, parsed, out, options, events)
    except InterActiveError as exc:
        events.close()
        fail(str(exc))
    except KeyboardInterrupt:
        events.close()
        fail("interrupted; finished shards are kept: run the same command again to resume", code=130)
    if summary.failures:
        raise typer.Exit(2)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
