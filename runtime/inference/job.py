"""`interactive-infer` as a library function: images in, result files and predictions out.

The command and the Python API call this one function; how progress is shown is the caller's (a
rich progress bar, a notebook, nothing), through `InferEvents`. Results are written atomically and a
second run with the same model skips finished images, so a killed run resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.manifest import atomic_write_bytes
from interactive_trt.runtime.inference.inputs import Failure, expand_inputs
from interactive_trt.runtime.inference.labels import read_labels
from interactive_trt.runtime.inference.model import ExportedModel
from interactive_trt.runtime.inference.pipeline import Result, batched_inference
from interactive_trt.runtime.inference.writers import read_result, result_path, write_failures, write_png, write_result
from interactive_trt.runtime.pictures.heatmap import overlay


class InferEvents:
    """Hooks a caller overrides to show progress; every default does nothing."""

    def started(self, runner_name: str, total: int) -> None:
        pass

    def prediction(self, line: dict) -> None:
        pass

    def failure(self, failure: Failure) -> None:
        pass

    def warning(self, warning: Failure) -> None:
        """An image that ran, with something the user should know (it was far smaller than the network's input)."""

    def advanced(self) -> None:
        pass


@dataclass
class InferOptions:
    out: Path | None = None
    heatmaps: bool = False
    heatmap_layers: list[str] | None = None  # None: every gamma map
    labels_file: Path | None = None
    topk: int = 5
    batch_size: int = 4
    workers: int = 2
    size: tuple[int, int] | None = None
    overwrite: bool = False
    precision: str = "exported"  # recorded with each result; the runner computes in it


@dataclass
class InferSummary:
    done: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)


def top_classes(scores: np.ndarray, labels: list[str], k: int) -> list[tuple[int, str, float]]:
    order = np.argsort(-scores)[:k]
    return [(int(i), labels[i], float(scores[i])) for i in order]


def prediction_line(path, size, outputs, labels, k) -> dict:
    line = {"image": str(path), "size": size,
            "original": top_classes(np.asarray(outputs["imagenet.scores_orig"]), labels, k)}
    if "imagenet.scores_interactive" in outputs:
        line["interactive"] = top_classes(np.asarray(outputs["imagenet.scores_interactive"]), labels, k)
    else:
        line["interactive"] = []
    return line


def heatmap_outputs(model: ExportedModel, layers: list[str] | None) -> list[str]:
    """The gamma outputs to draw: all of them, or the named layers ('imagenet' for the head's)."""
    gamma_names = [n for n in model.manifest.output_names if n.endswith("gamma")]
    if not layers:
        return gamma_names
    wanted = [f"{layer}.gamma" for layer in layers]
    unknown = [w for w in wanted if w not in gamma_names]
    if unknown:
        raise InterActiveError(f"--heatmap-layers: no gamma map for {', '.join(unknown)}; "
                               f"have {', '.join(gamma_names)}")
    return wanted


def class_labels(model: ExportedModel, labels_file: Path | None) -> list[str] | None:
    """Class names for the ImageNet head's top-k, or None for a features-only model."""
    manifest = model.manifest
    if "imagenet.scores_orig" not in manifest.output_names:
        return None
    return read_labels(labels_file, manifest.model.channels_of(manifest.model.head_logits))


def check_options(model: ExportedModel, options: InferOptions) -> None:
    """Everything that can be refused before a runner starts or an image is read."""
    if options.heatmaps and options.out is None:
        raise InterActiveError("--heatmaps needs --out DIR")
    if options.size:
        model.manifest.model.spatial_sizes(*options.size)
    heatmap_outputs(model, options.heatmap_layers)


def infer_paths(model: ExportedModel, runner, backend: str, paths, options: InferOptions,
                events: InferEvents = InferEvents()) -> InferSummary:
    """Runs every image under `paths`; per image one .npz (and heat-maps) in options.out, top-k lines.

    The runner must be active; it stays active (the caller owns it). Images that fail are listed in
    the summary and in failures.tsv; the others finish.
    """
    check_options(model, options)
    manifest, out = model.manifest, options.out
    gamma_names = heatmap_outputs(model, options.heatmap_layers)
    labels = class_labels(model, options.labels_file)
    inputs, failures = expand_inputs(paths)
    summary = InferSummary(failures=failures)
    todo = []
    for item in inputs:
        stored = None if (out is None or options.overwrite) else read_result(result_path(out, item.key),
                                                                            manifest.onnx_sha256)
        if stored is not None and (not options.heatmaps or all(
                (out / f"{item.key}.{name.removesuffix('.gamma')}.png").exists() for name in gamma_names)):
            summary.skipped += 1
            if labels is not None:  # shown again: a second run of a finished job still says what it found
                line = prediction_line(item.path, stored[1].get("size"), stored[0], labels, options.topk)
                summary.predictions.append(line)
                events.prediction(line)
            continue
        todo.append(item)

    smallest = manifest.model.resize.min_side

    def on_result(result: Result) -> None:
        height, width = result.rgb.shape[:2]
        if min(height, width) < smallest:
            warning = Failure(str(result.item.path), f"{height}x{width} is under {smallest} pixels on a side, the "
                                                     f"smallest input this network takes: upscaled to "
                                                     f"{result.size[0]}x{result.size[1]}, its result means little")
            summary.warnings.append(warning)
            events.warning(warning)
        if out is not None:
            meta = {"image": str(result.item.path), "size": list(result.size),
                    "original_size": list(result.rgb.shape[:2]), "onnx_sha256": manifest.onnx_sha256,
                    "weights_sha256": manifest.weights_sha256, "config": manifest.config, "p": manifest.p,
                    "backend": backend, "precision": options.precision}
            if options.heatmaps:
                for name in gamma_names:
                    layer = name.removesuffix(".gamma")
                    write_png(out / f"{result.item.key}.{layer}.png", overlay(result.rgb, result.outputs[name]))
            write_result(result_path(out, result.item.key), result.outputs, meta)
        if labels is not None:
            line = prediction_line(result.item.path, list(result.size), result.outputs, labels, options.topk)
            summary.predictions.append(line)
            events.prediction(line)
        summary.done += 1
        events.advanced()

    def on_failure(failure: Failure) -> None:
        summary.failures.append(failure)
        events.failure(failure)
        events.advanced()

    events.started(runner.name, len(todo))
    try:
        batched_inference(runner, manifest.model, todo, batch_size=options.batch_size, workers=options.workers,
                          size=options.size, on_result=on_result, on_failure=on_failure)
    finally:
        if out is not None:
            write_summary(out, summary)
    return summary


def write_summary(out: Path, summary: InferSummary) -> None:
    """predictions.jsonl and failures.tsv, also after an interrupt: what finished is kept."""
    out.mkdir(parents=True, exist_ok=True)
    if summary.predictions:
        lines = "".join(json.dumps(p) + "\n" for p in summary.predictions)
        atomic_write_bytes(out / "predictions.jsonl", lines.encode())
    write_failures(out / "failures.tsv", summary.failures)
