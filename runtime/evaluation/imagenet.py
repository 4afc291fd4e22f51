"""ImageNet validation error of the original and the InterActive head (paper section 4.4).

Dense evaluation as Simonyan and Zisserman: the class scores are the spatial mean of the fc8 score
map at shorter-side scales Q and their horizontal flips, averaged (INTERACTIVE.md: raw scores, not
soft-max posteriors). The two heads see the same images, so the difference of their errors is a
paired comparison: its confidence interval comes from the per-image differences, and McNemar's exact
test from the images where exactly one head is right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from interactive_trt.common.imaging import shorter_side_size
from interactive_trt.contracts.spec import ModelSpec

from interactive_trt.runtime.evaluation.datasets import Labelled
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.pipeline import Planner, Result, batched_inference

ORIG, INTERACTIVE = "imagenet.scores_orig", "imagenet.scores_interactive"


def dense_plan(spec: ModelSpec, scales: list[int], flips: bool) -> Planner:
    def plan(height: int, width: int):
        sizes = [shorter_side_size(height, width, q, spec.resize) for q in scales]
        return [(size, flip) for size in sizes for flip in ((False, True) if flips else (False,))]

    return plan


def top_k(scores: np.ndarray, k: int = 5) -> list[int]:
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:k]]


@dataclass
class Accumulator:
    """Sums each image's class scores over its variants; yields a record when all have arrived."""

    sums: dict[str, list] = field(default_factory=dict)

    def add(self, result: Result, label: int) -> dict | None:
        key = result.item.key
        entry = self.sums.setdefault(key, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] = entry[1] + np.asarray(result.outputs[ORIG], dtype=np.float64)
        entry[2] = entry[2] + np.asarray(result.outputs[INTERACTIVE], dtype=np.float64)
        if entry[0] < result.variants:
            return None
        del self.sums[key]
        orig, interactive = entry[1] / entry[0], entry[2] / entry[0]
        return {"key": key, "image": str(result.item.path), "label": label, "views": entry[0],
                "orig_top5": top_k(orig), "interactive_top5": top_k(interactive)}


def score_images(runner, spec: ModelSpec, images: list[Labelled], scales: list[int], flips: bool, *,
                 batch_size: int = 4, workers: int = 2, on_record: Callable[[dict], None],
                 on_failure: Callable[[Failure], None]) -> None:
    """The per-image protocol, the one both executors run (a single process, each Ray replica): every
    image ends in one on_record (its dense top-5 of both heads) or one on_failure."""
    labels = {image.item.key: image.label for image in images}
    accumulator = Accumulator()

    def on_result(result: Result) -> None:
        record = accumulator.add(result, labels[result.item.key])
        if record is not None:
            on_record(record)

    batched_inference(runner, spec, [image.item for image in images], batch_size=batch_size, workers=workers,
                      plan=dense_plan(spec, scales, flips), on_result=on_result, on_failure=on_failure)


def errors_of(record: dict) -> tuple[int, int, int, int]:
    """(orig top-1 wrong, orig top-5 wrong, InterActive top-1 wrong, InterActive top-5 wrong)."""
    label = record["label"]
    return (int(record["orig_top5"][0] != label), int(label not in record["orig_top5"]),
            int(record["interactive_top5"][0] != label), int(label not in record["interactive_top5"]))


def mcnemar_p(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar test on the discordant pairs."""
    n = only_first + only_second
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_first, only_second) + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def paired_difference(orig_wrong: np.ndarray, interactive_wrong: np.ndarray, z: float = 1.959964) -> dict:
    """InterActive error minus original error, with a normal-approximation 95% interval."""
    diff = interactive_wrong.astype(np.float64) - orig_wrong.astype(np.float64)
    n = len(diff)
    mean = float(diff.mean()) if n else float("nan")
    half = z * float(diff.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
    return {"difference": mean, "ci95": [mean - half, mean + half],
            "interactive_better": int(np.sum(diff < 0)), "interactive_worse": int(np.sum(diff > 0)),
            "mcnemar_p": mcnemar_p(int(np.sum(diff < 0)), int(np.sum(diff > 0)))}


def summarise(records: list[dict]) -> dict:
    table = np.array([errors_of(r) for r in records], dtype=np.int64).reshape(-1, 4)
    n = len(table)

    def rate(column: int) -> float:
        return float(table[:, column].mean()) if n else float("nan")

    return {"images": n,
            "top1_error": {"original": rate(0), "interactive": rate(2)},
            "top5_error": {"original": rate(1), "interactive": rate(3)},
            "top1_difference": paired_difference(table[:, 0], table[:, 2]),
            "top5_difference": paired_difference(table[:, 1], table[:, 3])}


class RunningErrors:
    """Error counts kept up to date one record at a time, for the progress bar (O(1) per image)."""

    def __init__(self, records=()):
        self.wrong = np.zeros(4, dtype=np.int64)
        self.count = 0
        for record in records:
            self.add(record)

    def add(self, record: dict) -> None:
        self.wrong += errors_of(record)
        self.count += 1

    def __str__(self) -> str:
        if not self.count:
            return ""
        o1, o5, i1, i5 = 100 * self.wrong / self.count
        return f"top-1 {o1:.1f}/{i1:.1f}%  top-5 {o5:.1f}/{i5:.1f}% (orig/IA)"


def markdown_report(summary: dict, provenance: dict) -> str:
    lines = ["# ImageNet validation error, original vs InterActive", ""]
    lines += [f"- {name}: {value}" for name, value in provenance.items()]
    lines += ["", "| metric | original | InterActive | difference (IA - orig) | 95% CI | McNemar p |",
              "| --- | --- | --- | --- | --- | --- |"]
    for metric in ("top1", "top5"):
        error, diff = summary[f"{metric}_error"], summary[f"{metric}_difference"]
        low, high = diff["ci95"]
        lines.append(f"| {metric[:3]}-{metric[3:]} error | {100 * error['original']:.2f}% | "
                     f"{100 * error['interactive']:.2f}% | {100 * diff['difference']:+.2f} pt | "
                     f"[{100 * low:+.2f}, {100 * high:+.2f}] pt | {diff['mcnemar_p']:.3g} |")
    lines += ["", f"{summary['images']} images."]
    return "\n".join(lines) + "\n"
