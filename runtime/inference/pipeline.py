"""Decode ahead on worker threads, group images by input resolution (bucket), run full batches.

Images of one bucket share an engine shape; a bucket's batch is run when it is full and the rest
at the end, so memory holds at most batch_size-1 images per bucket while decoding runs ahead.
An image may be run as several variants (dense evaluation: scales and flips); it is decoded once,
and each variant joins the batch of its own resolution.
"""

from __future__ import annotations

from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from interactive_trt.common.errors import ImageError, InterActiveError
from interactive_trt.common.imaging import bucket_for, load_rgb, prepare
from interactive_trt.contracts.spec import ModelSpec

from interactive_trt.runtime.inference.inputs import Failure, ImageInput


Variant = tuple[tuple[int, int], bool]  # (input size, horizontal flip)
Planner = Callable[[int, int], list[Variant]]


@dataclass
class Prepared:
    item: ImageInput
    rgb: np.ndarray
    size: tuple[int, int]
    tensor: np.ndarray
    variant: int = 0
    variants: int = 1
    flip: bool = False


@dataclass
class Result:
    item: ImageInput
    rgb: np.ndarray
    size: tuple[int, int]
    outputs: dict[str, np.ndarray]
    variant: int = 0
    variants: int = 1
    flip: bool = False


def paper_bucket(spec: ModelSpec, size: tuple[int, int] | None = None) -> Planner:
    """One variant per image: a forced size, or the paper's resize rule (section 3.1)."""
    return lambda height, width: [(size or bucket_for(height, width, spec.resize), False)]


def prepare_image(item: ImageInput, spec: ModelSpec, plan: Planner) -> list[Prepared]:
    rgb = load_rgb(item.path) if item.rgb is None else item.rgb
    variants = plan(rgb.shape[0], rgb.shape[1])
    return [Prepared(item, rgb, size, prepare(rgb, size, spec.preprocessing, flip=flip), index, len(variants), flip)
            for index, (size, flip) in enumerate(variants)]


def batched_inference(runner, spec: ModelSpec, items: Iterable[ImageInput], *, batch_size: int = 4,
                      workers: int = 2, size: tuple[int, int] | None = None, plan: Planner | None = None,
                      on_result: Callable[[Result], None], on_failure: Callable[[Failure], None]) -> None:
    """Every item ends in exactly one on_failure, or in on_result once per variant."""
    if size is not None:
        spec.spatial_sizes(*size)
    plan = plan or paper_bucket(spec, size)
    pending: dict[tuple[int, int], list[Prepared]] = defaultdict(list)
    failed: set[ImageInput] = set()
    input_name = runner.model.manifest.input_name

    def flush(bucket: tuple[int, int]) -> None:
        group = pending.pop(bucket, [])
        if not group:
            return
        batch = np.stack([p.tensor for p in group])
        try:
            outputs = runner.infer({input_name: batch})
        except InterActiveError as exc:
            for prepared in group:
                if prepared.item not in failed:
                    failed.add(prepared.item)
                    on_failure(Failure(str(prepared.item.path), f"inference failed: {exc}"))
            return
        for index, prepared in enumerate(group):
            if prepared.item in failed:
                continue
            per_image = {name: value[index] for name, value in outputs.items()}
            on_result(Result(prepared.item, prepared.rgb, prepared.size, per_image,
                             prepared.variant, prepared.variants, prepared.flip))

    lookahead = max(2 * workers, batch_size * 2)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        queue: deque = deque()
        iterator = iter(items)
        exhausted = False
        while True:
            while not exhausted and len(queue) < lookahead:
                try:
                    item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                queue.append((item, pool.submit(prepare_image, item, spec, plan)))
            if not queue:
                break
            item, future = queue.popleft()
            try:
                variants = future.result()
            except ImageError as exc:
                on_failure(Failure(str(item.path), str(exc).removeprefix(f"{item.path}: ")))
                continue
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not end the run
                on_failure(Failure(str(item.path), f"cannot prepare image ({type(exc).__name__}: {exc})"))
                continue
            for prepared in variants:
                pending[prepared.size].append(prepared)
                if len(pending[prepared.size]) >= batch_size:
                    flush(prepared.size)
        for bucket in list(pending):
            flush(bucket)
