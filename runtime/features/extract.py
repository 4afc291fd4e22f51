"""The feature-extraction loop shared by a single process and each Ray worker: run the model over
labelled images at the paper's resize rule and hand every image's pooled features to a shard writer."""

from __future__ import annotations

from typing import Callable

from interactive_trt.runtime.evaluation.datasets import Labelled
from interactive_trt.runtime.features.store import ShardWriter
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.pipeline import batched_inference


def extract_into(runner, spec, images: list[Labelled], writer: ShardWriter, *, batch_size: int = 4,
                 workers: int = 2, on_done: Callable[[str], None] = lambda key: None,
                 on_failure: Callable[[Failure], None] = lambda failure: None) -> None:
    labels = {image.item.key: image.label for image in images}

    def on_result(result) -> None:
        writer.add(result.item.key, labels[result.item.key], result.outputs)
        on_done(result.item.key)

    try:
        batched_inference(runner, spec, [image.item for image in images], batch_size=batch_size,
                          workers=workers, on_result=on_result, on_failure=on_failure)
    finally:
        writer.flush()
