"""Feature extraction on a Ray cluster: Ray Data feeds (key, path, label) rows to a pool of model
replicas (one per GPU when the device is CUDA); each replica decodes its images itself and writes
its results as shards into the same parts folder the single-process run uses, so resume, assembly
and the final file are the same code. The parts folder must be on storage every worker sees.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from interactive_trt.runtime.evaluation.datasets import Labelled
from interactive_trt.runtime.features.store import FeatureStore, ShardWriter
from interactive_trt.runtime.inference.inputs import Failure, ImageInput
from interactive_trt.runtime.scaleout import ModelReplica, map_on_replicas, ray_session


class ExtractionReplica(ModelReplica):
    """One Ray actor: extracts each batch of rows it is given into a shard of its own."""

    def __init__(self, engine: str, backend: str, device: str, parts: str, batch_size: int, threads: int,
                 precision: str = "exported"):
        super().__init__(engine, backend, device, threads, batch_size=batch_size, precision=precision)
        self.parts, self.batch_size = Path(parts), batch_size

    def __call__(self, batch: dict) -> dict:
        from interactive_trt.runtime.features.extract import extract_into

        images = [Labelled(ImageInput(Path(str(path)), str(key)), int(label))
                  for key, path, label in zip(batch["key"], batch["path"], batch["label"])]
        writer = ShardWriter(self.parts, f"{self.name}-{uuid.uuid4().hex[:6]}", shard_size=len(images))
        reasons = {}

        def on_failure(failure: Failure) -> None:
            reasons[failure.path] = failure.reason

        extract_into(self.runner, self.model.manifest.model, images, writer, batch_size=self.batch_size,
                     workers=1, on_failure=on_failure)
        return {"key": [image.item.key for image in images],
                "path": [str(image.item.path) for image in images],
                "failure": [reasons.get(str(image.item.path), "") for image in images]}


def extract_on_ray(model, backend: str, device: str, images: list[Labelled], store: FeatureStore, *,
                   address: str | None, replicas: int, shard_size: int, batch_size: int, on_done, on_failure,
                   threads_per_replica: int = 1, precision: str = "exported") -> None:
    with ray_session(address) as ray:
        store.parts.mkdir(parents=True, exist_ok=True)
        rows = [{"key": image.item.key, "path": str(image.item.path.resolve()), "label": image.label}
                for image in images]
        results = map_on_replicas(
            ray, rows, ExtractionReplica,
            {"engine": str(model.manifest_path.resolve()), "backend": backend, "device": device,
             "parts": str(store.parts.resolve()), "batch_size": batch_size, "precision": precision},
            replicas=replicas, device=device, rows_per_call=shard_size, blocks=len(rows) // shard_size,
            threads_per_replica=threads_per_replica)
        for row in results:
            if row["failure"]:
                on_failure(Failure(str(row["path"]), str(row["failure"])))
            else:
                on_done(str(row["key"]))
