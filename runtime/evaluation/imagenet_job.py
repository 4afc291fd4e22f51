"""`interactive-eval imagenet` as a library function: a labelled validation set in, a report out.

The command and the Python API call this one function; how progress is shown is the caller's,
through `EvaluationEvents`. Every scored image is in `results.jsonl` before it is counted, so a
killed run resumes where it stopped, and the report is made from that log alone.

One evaluation, two executors: this process, or a pool of replicas on a Ray cluster
(`evaluation.ray_scaleout`). Both run the same per-image scoring (`imagenet.score_images`), both
end with every record in the same results log (Ray replicas write logs of their own that the log
merges, see `results_log`), and the selection, resume and report below are shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.manifest import atomic_write_bytes, atomic_write_json
from interactive_trt.runtime.evaluation.datasets import Dataset, Skip, flat_folder, image_folder, read_synsets
from interactive_trt.runtime.evaluation.imagenet import (INTERACTIVE, ORIG, RunningErrors, markdown_report,
                                                         score_images, summarise)
from interactive_trt.runtime.evaluation.results_log import ResultsLog
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.model import ExportedModel
from interactive_trt.runtime.inference.session import open_model, provenance, start_runner
from interactive_trt.runtime.inference.writers import write_failures

SELECTION_SEED = 0  # the fixed shuffle behind --limit: a larger limit keeps the images of a smaller one


class EvaluationEvents:
    """Hooks a caller overrides to show progress; every default does nothing."""

    def started(self, info: dict) -> None:
        """What is evaluated: the model's provenance, scales, flips, dataset, images selected."""

    def skipped(self, skips: list[Skip]) -> None:
        """Files of the dataset that hold no labelled image (listed, not an error)."""

    def scoring(self, name: str, total: int, done: int, running: RunningErrors) -> None:
        """`total` images to score on `name` (the runner); `done` were scored by an earlier run."""

    def scored(self, record: dict, running: RunningErrors) -> None:
        """One image's record is in the results log; `running` holds the errors so far."""

    def failure(self, failure: Failure) -> None:
        pass


@dataclass
class ImagenetOptions:
    scales: list[int] = field(default_factory=lambda: [256, 384, 512])  # shorter sides Q
    flips: bool = True
    limit: int | None = None  # the first N images of a fixed seeded shuffle
    synsets_file: Path | None = None  # synset list in class-index order
    ground_truth: Path | None = None  # labels of a flat folder
    devkit_meta: Path | None = None  # the devkit's meta.mat for its 1-based ILSVRC2012_IDs
    out: Path = Path("eval-imagenet")
    backend: str = "onnxruntime"
    device: str = "auto"
    precision: str = "exported"  # or a reduced precision the backend offers (OpenVINO's bf16)
    batch_size: int = 4
    workers: int = 2  # decoding threads (single process)
    overwrite: bool = False
    ray: bool = False  # score on a Ray cluster
    ray_address: str | None = None  # default: the cluster this process is in, else a new local one
    ray_workers: int = 2  # model replicas on the cluster (one GPU each with device 'cuda')


@dataclass
class ImagenetResult:
    report: dict  # what report.json holds: provenance, summary, skipped, failures
    out: Path
    done_before: int  # images an earlier run had scored
    scored: int  # images scored by this run
    failures: list[Failure] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)

    @property
    def summary(self) -> dict:
        return self.report["summary"]


def check_scales(scales) -> list[int]:
    scales = [int(q) for q in scales]
    if not scales or min(scales) < 32:
        raise InterActiveError(f"scales {scales}: expected shorter-side sizes of at least 32, like 256,384,512")
    return scales


def read_validation(model: ExportedModel, val: Path, options: ImagenetOptions) -> Dataset:
    """The validation set with labels in the model's class-index order, or a DatasetError."""
    classes = model.manifest.model.channels_of(model.manifest.model.head_logits)
    synsets = read_synsets(options.synsets_file) if options.synsets_file else None
    if options.ground_truth is None:
        return image_folder(Path(val), synsets, classes=classes)
    if synsets is None:
        raise InterActiveError("--ground-truth needs --synsets (the class list in the model's index order)")
    dataset = flat_folder(Path(val), options.ground_truth, synsets, options.devkit_meta)
    if len(synsets) != classes:
        raise InterActiveError(f"{options.synsets_file}: {len(synsets)} classes but the model has {classes}")
    return dataset


def evaluate_imagenet(engine: Path, val: Path, options: ImagenetOptions = ImagenetOptions(),
                      events: EvaluationEvents = EvaluationEvents()) -> ImagenetResult:
    """Top-1/top-5 error of the original and the InterActive head, dense over scales and flips.

    Writes `results.jsonl` (one record per image, resumable), `report.json`, `report.md` and
    `failures.tsv` under options.out. Everything that can be refused is refused before the first
    image; images that fail are listed and the others finish.
    """
    scales, flips, out = check_scales(options.scales), options.flips, Path(options.out)
    model = open_model(Path(engine))
    manifest = model.manifest
    if not {ORIG, INTERACTIVE} <= set(manifest.output_names):
        raise InterActiveError(f"{model.onnx_path}: no InterActive ImageNet head; export with --head imagenet (or both)")
    # the backend loads the model before any label or image is read: a damaged model is named first,
    # and not inside a Ray replica half-way through
    runner = start_runner(model, options.backend, "cpu" if options.ray else options.device,
                          batch_size=options.batch_size, precision=options.precision)
    if options.ray:
        runner.deactivate()
    try:
        dataset = read_validation(model, val, options)
        for q in scales:
            manifest.model.spatial_sizes(manifest.model.resize.side(q, 0), manifest.model.resize.side(q, 1))
        log = ResultsLog(out / "results.jsonl", {"onnx_sha256": manifest.onnx_sha256, "scales": scales, "flips": flips},
                         overwrite=options.overwrite)
        order = np.random.default_rng(SELECTION_SEED).permutation(len(dataset.images))
        selected = [dataset.images[i] for i in order][:options.limit]
        todo = [image for image in selected if image.item.key not in log]
        info = {**provenance(model, options.backend, options.precision), "scales": scales, "flips": flips, "dataset": str(val),
                "images_selected": len(selected)}
        events.started(dict(info))
        events.skipped(list(dataset.skips))
        running = RunningErrors(log.records[image.item.key] for image in selected if image.item.key in log)
        done_before = running.count
        failures: list[Failure] = []

        def on_record(record: dict) -> None:
            log.append(record)
            running.add(record)
            events.scored(record, running)

        def on_failure(failure: Failure) -> None:
            failures.append(failure)
            events.failure(failure)

        if options.ray:
            from interactive_trt.runtime.evaluation.ray_scaleout import score_on_ray

            events.scoring(f"{runner.name} x{options.ray_workers}", len(todo), done_before, running)
            if todo:
                score_on_ray(model, options.backend, options.device, todo, log, address=options.ray_address,
                             replicas=options.ray_workers, batch_size=options.batch_size, scales=scales, flips=flips,
                             precision=options.precision,
                             on_record=on_record, on_failure=on_failure)
        else:
            events.scoring(runner.name, len(todo), done_before, running)
            score_images(runner, manifest.model, todo, scales, flips, batch_size=options.batch_size,
                         workers=options.workers, on_record=on_record, on_failure=on_failure)
    finally:
        if not options.ray:
            runner.deactivate()
    records = [log.records[image.item.key] for image in selected if image.item.key in log]
    summary = summarise(records)
    info["images_evaluated"] = summary["images"]
    info["images_failed"] = len(failures)
    report = {"provenance": info, "summary": summary, "skipped": [vars(s) for s in dataset.skips],
              "failures": [vars(f) for f in failures]}
    atomic_write_json(out / "report.json", report)
    atomic_write_bytes(out / "report.md", markdown_report(summary, info).encode())
    write_failures(out / "failures.tsv", failures)
    return ImagenetResult(report, out, done_before, running.count - done_before, failures, list(dataset.skips))
