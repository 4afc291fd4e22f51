"""`interactive-eval`: the paper's two experiments, one command each.

  imagenet  top-1/top-5 error of the original and the InterActive head (section 4.4), resumable
  svm       linear-SVM accuracy per layer and configuration from feature files (Tables 1 and 2)

Exit codes: 0 done, 1 usage or data error (one line), 2 done but some images failed (listed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from interactive_trt.common.cli import err, fail, run_app
from interactive_trt.runtime.cli import PRECISION
from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.manifest import atomic_write_bytes, atomic_write_json

from interactive_trt.runtime.evaluation.datasets import flat_folder, image_folder, read_synsets
from interactive_trt.runtime.features.store import load_features
from interactive_trt.runtime.evaluation.imagenet import INTERACTIVE, ORIG, Accumulator, RunningErrors, dense_plan, markdown_report, summarise
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.pipeline import batched_inference
from interactive_trt.runtime.evaluation.results_log import ResultsLog
from interactive_trt.runtime.inference.session import open_model, progress_bar, provenance, start_runner
from interactive_trt.runtime.evaluation.svm import TRAIN_PER_CLASS, evaluate, markdown_table, per_class_split, subsample_per_class
from interactive_trt.runtime.inference.writers import write_failures

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
    backend: str = typer.Option("onnxruntime", "--backend", help="onnxruntime | openvino | tensorrt | torch"),
    precision: str = PRECISION,
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    workers: int = typer.Option(2, "--workers", min=1, help="image decoding threads"),
    overwrite: bool = typer.Option(False, "--overwrite", help="discard earlier results in --out"),
) -> None:
    """Top-1 and top-5 error, original vs InterActive, dense over scales and flips; resumable."""
    q = parse_scales(scales)
    try:
        model = open_model(engine)
        manifest = model.manifest
        if not {ORIG, INTERACTIVE} <= set(manifest.output_names):
            fail(f"{model.onnx_path}: no InterActive ImageNet head; export with --head imagenet (or both)")
        classes = manifest.model.channels_of(manifest.model.head_logits)
        runner = start_runner(model, backend, device, precision)
        synsets = read_synsets(synsets_file) if synsets_file else None
        if ground_truth is not None:
            if synsets is None:
                fail("--ground-truth needs --synsets (the class list in the model's index order)")
            dataset = flat_folder(val, ground_truth, synsets, devkit_meta)
            if len(synsets) != classes:
                fail(f"{synsets_file}: {len(synsets)} classes but the model has {classes}")
        else:
            dataset = image_folder(val, synsets, classes=classes)
        for q_value in q:
            manifest.model.spatial_sizes(*(max(q_value, manifest.model.resize.min_side),) * 2)
        header = {"onnx_sha256": manifest.onnx_sha256, "scales": q, "flips": flips}
        log = ResultsLog(out / "results.jsonl", header, overwrite=overwrite)
    except InterActiveError as exc:
        fail(str(exc))
    order = np.random.default_rng(0).permutation(len(dataset.images))
    selected = [dataset.images[i] for i in order][:limit]
    labels = {image.item.key: image.label for image in selected}
    todo = [image.item for image in selected if image.item.key not in log]
    info = {**provenance(model, backend, precision), "scales": q, "flips": flips, "dataset": str(val),
            "images_selected": len(selected)}
    err.print("evaluating " + ", ".join(f"{k}={v}" for k, v in info.items()), highlight=False, soft_wrap=True)
    list_problems("skipped while reading the dataset", dataset.skips)
    failures: list[Failure] = []
    accumulator = Accumulator()
    kept = {key: log.records[key] for key in labels if key in log}
    running = RunningErrors(kept.values())
    progress = progress_bar()

    def on_result(result) -> None:
        record = accumulator.add(result, labels[result.item.key])
        if record is None:
            return
        log.append(record)
        kept[record["key"]] = record
        running.add(record)
        progress.update(task, advance=1, status=str(running))

    def on_failure(failure: Failure) -> None:
        failures.append(failure)
        progress.console.print(f"[red]failed:[/] {escape(str(failure.path))}: {escape(failure.reason)}", highlight=False)
        progress.advance(task)

    try:
        with progress:
            task = progress.add_task(runner.name, total=len(todo), status=str(running))
            batched_inference(runner, manifest.model, todo, batch_size=batch_size, workers=workers,
                              plan=dense_plan(manifest.model, q, flips), on_result=on_result, on_failure=on_failure)
    except KeyboardInterrupt:
        fail(f"interrupted with {len(kept)} images done; run the same command again to resume", code=130)
    finally:
        runner.deactivate()
    summary = summarise(list(kept.values()))
    info["images_evaluated"] = summary["images"]
    info["images_failed"] = len(failures)
    report = {"provenance": info, "summary": summary, "skipped": [vars(s) for s in dataset.skips],
              "failures": [vars(f) for f in failures]}
    atomic_write_json(out / "report.json", report)
    atomic_write_bytes(out / "report.md", markdown_report(summary, info).encode())
    write_failures(out / "failures.tsv", failures)
    print_imagenet_table(summary)
    err.print(f"report: {out / 'report.md'} and report.json; per-image results: {out / 'results.jsonl'}",
              highlight=False)
    if failures:
        list_problems("failed images", failures)
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
    if dataset is not None:
        if dataset.lower() not in TRAIN_PER_CLASS:
            fail(f"--dataset {dataset}: unknown; known: {', '.join(TRAIN_PER_CLASS)}")
        train_per_class = train_per_class or TRAIN_PER_CLASS[dataset.lower()]
    try:
        train_set = load_features(features)
        test_set = load_features(test) if test else train_set
        if test is not None and test_set.classes != train_set.classes:
            fail(f"{test}: its classes differ from those of {features}")
        if test is None:
            if train_per_class is None:
                fail("one feature file needs --train-per-class N (or --dataset NAME) to split it; "
                     "or pass --test FILE")
            split = per_class_split(train_set.labels, train_set.classes, train_per_class, seed)
            train_rows, test_rows, skipped = split.train, split.test, split.skipped_classes
        else:
            skipped = []
            if train_per_class is not None:
                train_rows = subsample_per_class(train_set.labels, train_per_class, seed)
            else:
                train_rows = np.arange(len(train_set.labels))
            test_rows = np.arange(len(test_set.labels))
        for name, count in skipped:
            err.print(f"skipped class {name}: {count} images, needs more than {train_per_class}", highlight=False)
        meta = train_set.meta
        info = {"features": str(features), "test": str(test) if test else f"rest of {features.name}",
                "engine": meta.get("engine"), "onnx_sha256": meta.get("onnx_sha256"),
                "weights_sha256": meta.get("weights_sha256"), "config": meta.get("config"), "p": meta.get("p"),
                "C": c, "train_per_class": train_per_class, "seed": seed,
                "train_images": int(len(train_rows)), "test_images": int(len(test_rows)),
                "classes": int(len(np.unique(train_set.labels[train_rows])))}
        err.print("SVM " + ", ".join(f"{k}={v}" for k, v in info.items()), highlight=False, soft_wrap=True)
        table = Table(title="linear SVM accuracy")
        for column in ("layer", "configuration", "dims", "accuracy", "mean class acc."):
            table.add_column(column)

        def on_row(row: dict) -> None:
            table.add_row(row["layer"], row["configuration"], str(row["dimensions"]),
                          f"{100 * row['accuracy']:.2f}%" + ("" if row["converged"] else " *"),
                          f"{100 * row['mean_class_accuracy']:.2f}%")
            err.print(f"  {row['layer']:>12} {row['configuration']:<16} {100 * row['accuracy']:6.2f}%", highlight=False)

        rows = evaluate(train_set, test_set, train_rows, test_rows, c=c, seed=seed, on_row=on_row)
    except InterActiveError as exc:
        fail(str(exc))
    atomic_write_json(out / "table.json", {"provenance": info, "rows": rows,
                                           "skipped_classes": [list(s) for s in skipped]})
    atomic_write_bytes(out / "table.md", markdown_table(rows, info).encode())
    Console(width=max(100, Console().width)).print(table)
    if not all(row["converged"] for row in rows):
        err.print("* LinearSVC did not converge in 20000 iterations for these rows", highlight=False)
    err.print(f"table: {out / 'table.md'} and table.json", highlight=False)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
