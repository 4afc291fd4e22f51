"""The ImageNet evaluation on a Ray cluster: Ray Data feeds (key, path, label) rows to a pool of
model replicas (one per GPU when the device is CUDA); each replica decodes its own images, scores
them with the single-process protocol (`imagenet.score_images`) and appends each image's record to
a log of its own in `<out>/results.parts/` before returning the batch. The driver merges those logs
into `results.jsonl` (results_log.ResultsLog) and makes the report from it as a single process
does. The output folder must be on storage every worker sees.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

from interactive_trt.runtime.evaluation.datasets import Labelled
from interactive_trt.runtime.evaluation.results_log import ResultsLog, WorkerLog
from interactive_trt.runtime.inference.inputs import Failure, ImageInput
from interactive_trt.runtime.scaleout import ModelReplica, map_on_replicas, ray_session

ROWS_PER_CALL = 16  # images a replica scores per Ray Data call: a retried call redoes at most these


class ScoringReplica(ModelReplica):
    """One Ray actor: scores each batch of rows it is given, every record into its own log."""

    def __init__(self, engine: str, backend: str, device: str, parts: str, header: dict, scales: list[int],
                 flips: bool, batch_size: int, threads: int, precision: str = "exported"):
        super().__init__(engine, backend, device, threads, batch_size=batch_size, precision=precision)
        self.scales, self.flips, self.batch_size = [int(q) for q in scales], bool(flips), batch_size
        self.log = WorkerLog(Path(parts), self.name, header)

    def __call__(self, batch: dict) -> dict:
        from interactive_trt.runtime.evaluation.imagenet import score_images

        shown = dict(zip((str(key) for key in batch["key"]), (str(image) for image in batch["image"])))
        images = [Labelled(ImageInput(Path(str(path)), str(key)), int(label))
                  for key, path, label in zip(batch["key"], batch["path"], batch["label"])]
        records, reasons = {}, {}

        def on_record(record: dict) -> None:
            record["image"] = shown[record["key"]]  # the path as the driver names it, as a single process does
            self.log.append(record)
            records[record["key"]] = json.dumps(record)

        def on_failure(failure: Failure) -> None:
            reasons[failure.path] = failure.reason

        score_images(self.runner, self.model.manifest.model, images, self.scales, self.flips,
                     batch_size=self.batch_size, workers=1, on_record=on_record, on_failure=on_failure)
        keys = [image.item.key for image in images]
        return {"key": keys, "record": [records.get(key, "") for key in keys],
                "failure": [reasons.get(str(image.item.path), "" if image.item.key in records else "no result")
                            for image in images]}


def score_on_ray(model, backend: str, device: str, images: list[Labelled], log: ResultsLog, *, address: str | None,
                 replicas: int, batch_size: int, scales: list[int], flips: bool,
                 on_record: Callable[[dict], None], on_failure: Callable[[Failure], None],
                 threads_per_replica: int = 1, precision: str = "exported") -> None:
    """Scores `images` on `replicas` replicas; each image ends in one on_record or one on_failure,
    and every record is in `log` when this returns (merged from the replicas' own logs)."""
    with ray_session(address) as ray:
        shown = {image.item.key: str(image.item.path) for image in images}
        rows = [{"key": image.item.key, "path": str(image.item.path.resolve()), "image": str(image.item.path),
                 "label": image.label} for image in images]
        per_call = max(1, min(ROWS_PER_CALL, math.ceil(len(rows) / replicas)))
        results = map_on_replicas(
            ray, rows, ScoringReplica,
            {"engine": str(model.manifest_path.resolve()), "backend": backend, "device": device,
             "parts": str(log.parts.resolve()), "header": log.header, "scales": list(scales), "flips": flips,
             "batch_size": batch_size, "precision": precision},
            replicas=replicas, device=device, rows_per_call=per_call, blocks=math.ceil(len(rows) / per_call),
            threads_per_replica=threads_per_replica)
        for row in results:
            if row["record"]:
                on_record(json.loads(row["record"]))
            else:
                on_failure(Failure(shown[str(row["key"])], str(row["failure"])))
    log.merge_parts()
