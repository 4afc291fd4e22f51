"""What both Ray scale-outs share (feature extraction and the ImageNet evaluation): Ray imported
only when asked for, a session on a cluster, and a pool of model replicas fed by Ray Data.

Rows carry image paths, never pixels: each replica decodes its own images, so the images (and the
model, and the folder results go to) must be on storage every node sees. A replica is a Ray actor
that opens the exported model once and keeps it for every batch of rows it is given; Ray Data
restarts a replica that dies and hands its batch to a live one, so the per-batch work must be
safe to run twice (both users write results that the driver deduplicates by image key).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from interactive_trt.common.errors import BackendUnavailable
from interactive_trt.common.extras import install


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(f"--ray needs Ray Data: {install('ray')}") from exc
    return ray


@contextmanager
def ray_session(address: str | None):
    """Joins the cluster at `address` (default: the one this process is in, else a new local one);
    a session started here is shut down at the end, and with it the replicas it started."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 ignore_reinit_error=True)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        yield ray
    finally:
        if started_here:
            ray.shutdown()


class ModelReplica:
    """Constructed once per Ray actor: opens the model on its backend and keeps it active."""

    def __init__(self, engine: str, backend: str, device: str, threads: int = 1, batch_size: int | None = None,
                 precision: str = "exported"):
        from interactive_trt.runtime.backends import BATCH_SIZED, THREADED, backend_name, make_runner
        from interactive_trt.runtime.inference.model import load_model

        self.model = load_model(Path(engine))
        backend = backend_name(backend)
        options = {"threads": threads} if backend in THREADED and threads else {}
        if backend in BATCH_SIZED and batch_size:
            options["batch_size"] = batch_size  # buffers and engines for the batch this replica runs
        self.runner = make_runner(backend, self.model, device=device, precision=precision, **options)
        self.runner.activate()
        # unique per actor life: a restarted actor is a new writer, never the old one's file
        self.name = f"ray-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def map_on_replicas(ray, rows: list[dict], replica: type, constructor_kwargs: dict, *, replicas: int, device: str,
                    rows_per_call: int, blocks: int, threads_per_replica: int = 1) -> Iterator[dict]:
    """Feeds `rows` to a pool of `replicas` actors of class `replica` in calls of `rows_per_call`
    rows (one GPU each with device 'cuda'); yields the rows they return as they arrive."""
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, blocks)).map_batches(
        replica, batch_size=rows_per_call, compute=ray.data.ActorPoolStrategy(size=replicas),
        num_gpus=1 if device == "cuda" else 0, num_cpus=threads_per_replica, batch_format="numpy",
        fn_constructor_kwargs={**constructor_kwargs, "threads": threads_per_replica})
    return dataset.iter_rows()
