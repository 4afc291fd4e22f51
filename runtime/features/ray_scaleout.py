"""Feature extraction on a Ray cluster: Ray Data feeds (key, path, label) rows to a pool of model
replicas (one per GPU when the device is CUDA); each replica decodes its images itself and writes
its results as shards into the same parts folder the single-process run uses, so resume, assembly
and the final file are the same code. The parts folder must be on storage every worker sees.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from interactive_trt.common.errors import BackendUnavailable

from interactive_trt.runtime.evaluation.datasets import Labelled
from interactive_trt.runtime.features.store import FeatureStore, ShardWriter
from interactive_trt.runtime.inference.inputs import Failure, ImageInput


class ExtractionReplica:
    """Constructed once per Ray actor: opens the model and keeps it for every batch it is given."""

    def __init__(self, engine: str, backend: str, device: str, parts: str, batch_size: int, threads: int,
                 precision: str = "exported"):
        from interactive_trt.runtime.backends import make_runner
        from interactive_trt.runtime.inference.model import load_model

        self.model = load_model(Path(engine))
        threaded = ("onnxruntime", "ort", "onnxrt", "openvino", "ov")
        options = {"threads": threads} if backend in threaded and threads else {}
        self.runner = make_runner(backend, self.model, device=device, precision=precision, **options)
        self.runner.activate()
        self.parts, self.batch_size = Path(parts), batch_size
        self.name = f"ray-{os.getpid()}-{uuid.uuid4().hex[:8]}"

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
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable("--ray needs Ray Data: pip install 'interactive-trt[ray]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 ignore_reinit_error=True)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        store.parts.mkdir(parents=True, exist_ok=True)
        rows = [{"key": image.item.key, "path": str(image.item.path.resolve()), "label": image.label}
                for image in images]
        gpus = 1 if device == "cuda" else 0
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // shard_size)).map_batches(
            ExtractionReplica, batch_size=shard_size, compute=ray.data.ActorPoolStrategy(size=replicas), num_gpus=gpus,
            num_cpus=threads_per_replica, batch_format="numpy",
            fn_constructor_kwargs={"engine": str(model.manifest_path.resolve()), "backend": backend,
                                   "device": device, "parts": str(store.parts.resolve()),
                                   "batch_size": batch_size, "threads": threads_per_replica,
                                   "precision": precision})
        for row in dataset.iter_rows():
            if row["failure"]:
                on_failure(Failure(str(row["path"]), str(row["failure"])))
            else:
                on_done(str(row["key"]))
    finally:
        if started_here:
            ray.shutdown()
