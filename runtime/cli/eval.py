"""`interactive-eval`: the paper's two experiments, one command each.

  imagenet  top-1/top-5 error of the original and the InterActive head (section 4.4), resumable
  svm       linear-SVM accuracy per layer and configuration from feature files (Tables 1 and 2)

Each parses options, calls one library function (`evaluation.imagenet_job.evaluate_imagenet`,
`evaluation.svm_job.run_svm_protocol`) and prints what it reports.

Exit codes: 0 done, 1 usage or data error (one line), 2 done but some images failed (listed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from interactive_trt.common.cli import err, fail, run_app
from interactive_trt.runtime.cli import PRECISION
from interactive_trt.common.errors import InterActiveError
from interactive_trt.runtime.evaluation.imagenet import RunningErrors
from interactive_trt.runtime.evaluation.imagenet_job import EvaluationEvents, ImagenetOptions, evaluate_imagenet
from interactive_trt.runtime.evaluation.svm import TRAIN_PER_CLASS
from interactive_trt.runtime.evaluation.svm_job import SvmEvents, SvmOptions, run_svm_protocol
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.session import progress_bar
from interactive_trt.runtime.backends import BACKEND_HELP

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


def parse_scales(text: str) -> list[int]:
    try:
        scales = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected shorter-side sizes like 256,384,512") from None
    if not scales or min(scales) < 32:
        raise typer.BadParameter(f"{text!r}: expected shorter-side sizes like 256,384,512")
    return scales


def list_problems(title: str, problems, limit: int = 20) -> None:
    if not problems:
        return
    err.print(f"{title} ({len(problems)}):", highlight=False)
    for problem in problems[:limit]:
        err.print(f"  {problem.path}: {problem.reason}", highlight=False, soft_wrap=True, markup=False)
    if len(problems) > limit:
        err.print(f"  ... and {len(problems) - limit} more", highlight=False)


class EvaluationProgress(EvaluationEvents):
    """A rich progress bar with the running errors, failures in red above it."""

    progress = None
    done = 0

    def started(self, info: dict) -> None:
        err.print("evaluating " + ", ".join(f"{k}={v}" for k, v in info.items()), highlight=False, soft_wrap=True)

    def skipped(self, skips) -> None:
        list_problems("skipped while reading the dataset", skips)

    def scoring(self, name: str, total: int, done: int, running: RunningErrors) -> None:
        self.done = done
        self.progress = progress_bar()
        self.progress.start()
        self.task = self.progress.add_task(name, total=total, status=str(running))

    def scored(self, record: dict, running: RunningErrors) -> None:
        self.done += 1
        self.progress.update(self.task, advance=1, status=str(running))

    def failure(self, failure: Failure) -> None:
        self.progress.console.print(f"[red]failed:[/] {escape(str(failure.path))}: {escape(failure.reason)}",
                                    highlight=False)
        self.progress.advance(self.task)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@app.command()
def imagenet(
    engine: Path = typer.Option(..., "--engine", help="exported model with the ImageNet head (.onnx, manifest or folder)"),
    val: Path = typer.Option(..., "--val", help="validation images: ImageFolder (one folder per synset) or a flat folder"),
    ground_truth: Optional[Path] = typer.Option(None, "--ground-truth", help="labels for a flat folder: "
                                                "'<label>' per sorted image, or '<file> <label>' lines"),
    devkit_meta: Optional[Path] = typer.Option(None, "--devkit-meta", help="the devkit's data/meta.mat, to read "
                                               "its 1-based ILSVRC2012_IDs"),
    synsets_file: Optional[Path] = typer.Option(None, "--synsets", help="synset list in class-index order "
                                                "(synset words file); default: sorted class folders"),
    scales: str = typer.Option("256,384,512", "--scales", help="shorter-side scales Q, comma-separated"),
    flips: bool = typer.Option(True, "--flips/--no-flips", help="also evaluate horizontal flips"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="only the first N images of a fixed "
                                        "seeded shuffle (a growing --limit reuses finished images)"),
    out: Path = typer.Option(Path("eval-imagenet"), "--out", help="results.jsonl, report.json/.md, failures.tsv"),
    backend: str = typer.Option("onnxruntime", "--backend", help=BACKEND_HELP),
    precision: str = PRECISION,
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    workers: int = typer.Option(2, "--workers", min=1, help="image decoding threads"),
    overwrite: bool = typer.Option(False, "--overwrite", help="discard earlier results in --out"),
    ray: bool = typer.Option(False, "--ray", help="score on a Ray cluster (Ray Data, one model per worker); "
                             "--val and --out must be on storage every worker sees"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="cluster address (default: start "
                                              "or join a local one)"),
    ray_workers: int = typer.Option(2, "--ray-workers", min=1, help="model replicas on the cluster"),
) -> None:
    """Top-1 and top-5 error, original vs InterActive, dense over scales and flips; resumable."""
    options = ImagenetOptions(precision=precision, scales=parse_scales(scales), flips=flips, limit=limit, synsets_file=synsets_file,
                              ground_truth=ground_truth, devkit_meta=devkit_meta, out=out, backend=backend,
                              device=device, batch_size=batch_size, workers=workers, overwrite=overwrite, ray=ray,
                              ray_address=ray_address, ray_workers=ray_workers)
    events = EvaluationProgress()
    try:
        result = evaluate_imagenet(engine, val, options, events)
    except InterActiveError as exc:
        events.close()
        fail(str(exc))
    except KeyboardInterrupt:
        events.close()
        fail(f"interrupted with {events.done} images done; run the same command again to resume", code=130)
    events.close()
    err.print(f"{result.scored} images scored, {result.done_before} already done (kept), {len(result.failures)} failed",
              highlight=False)
    print_imagenet_table(result.summary)
    err.print(f"report: {out / 'report.md'} and report.json; per-image results: {out / 'results.jsonl'}",
              highlight=False)
    if result.failures:
        list_problems("failed images", result.failures)
        raise typer.Exit(2)


def print_imagenet_table(summary: dict) -> None:
    table = Table(title=f"ImageNet validation error ({summary['images']} images)")
    for column in ("metric", "original", "InterActive", "IA - orig", "95% CI", "McNemar p"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for metric in ("top1", "top5"):
        error, diff = summary[f"{metric}_error"], summary[f"{metric}_difference"]
        low, high = diff["ci95"]
        table.add_row(f"top-{metric[3]} error", f"{100 * error['original']:.2f}%", f"{100 * error['interactive']:.2f}%",
                      f"{100 * diff['difference']:+.2f} pt", f"[{100 * low:+.1f}, {100 * high:+.1f}]",
                      f"{diff['mcnemar_p']:.3g}")
    typer.echo("")
    Console(width=max(100, Console().width)).print(table)


class SvmProgress(SvmEvents):
    def skipped_class(self, name: str, images: int, needed: int) -> None:
        err.print(f"skipped class {name}: {images} images, needs more than {needed}", highlight=False)

    def started(self, info: dict) -> None:
        err.print("SVM " + ", ".join(f"{k}={v}" for k, v in info.items()), highlight=False, soft_wrap=True)

    def row(self, row: dict) -> None:
        err.print(f"  {row['layer']:>12} {row['configuration']:<16} {100 * row['accuracy']:6.2f}%", highlight=False)


@app.command()
def svm(
    features: Path = typer.Argument(..., help="feature file of interactive-features (train, or all images)"),
    test: Optional[Path] = typer.Option(None, "--test", help="a separate test split's feature file"),
    train_per_class: Optional[int] = typer.Option(None, "--train-per-class", min=1,
                                                  help="training images per class (seeded)"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="take N from the paper: "
                                          + ", ".join(f"{k}={v}" for k, v in TRAIN_PER_CLASS.items())),
    c: float = typer.Option(10.0, "--C", help="SVM cost (the paper: 10)"),
    seed: int = typer.Option(0, "--seed", help="seed of the per-class training split"),
    out: Path = typer.Option(Path("eval-svm"), "--out", help="table.md and table.json go here"),
) -> None:
    """Linear-SVM accuracy per layer and configuration, plus all layers concatenated."""
    options = SvmOptions(test=test, train_per_class=train_per_class, dataset=dataset, c=c, seed=seed, out=out)
    try:
        result = run_svm_protocol(features, options, SvmProgress())
    except InterActiveError as exc:
        fail(str(exc))
    table = Table(title="linear SVM accuracy")
    for column in ("layer", "configuration", "dims", "accuracy", "mean class acc."):
        table.add_column(column)
    for row in result.rows:
        table.add_row(row["layer"], row["configuration"], str(row["dimensions"]),
                      f"{100 * row['accuracy']:.2f}%" + ("" if row["converged"] else " *"),
                      f"{100 * row['mean_class_accuracy']:.2f}%")
    Console(width=max(100, Console().width)).print(table)
    if not result.converged:
        err.print("* LinearSVC did not converge in 20000 iterations for these rows", highlight=False)
    err.print(f"table: {out / 'table.md'} and table.json", highlight=False)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
