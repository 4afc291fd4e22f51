"""`interactive-export ... --trt`: build the engines of an exported model and hold each one to the
autograd reference on the GPU, on noise and on a real photo at the engine's own resolution.

The reference runs in float32 on the same GPU; an fp16 engine meets the reduced-precision bounds
(verification.REDUCED_BOUNDS) and its report lists the fraction of gamma zeroed by underflow. Every engine's
lowest cosine per kind of output is logged and kept in the manifest (`engines[].agreement`): for fp16
these are the figures of TensorRT's fp16 kernels, which ONNX Runtime's CPU provider (it runs fp16
convolutions in float32 between inserted Casts) cannot give.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from interactive_trt.exporter.tensorrt.cuda import call, cudart, gpu_platform, logger, tensorrt
from interactive_trt.common.imaging import prepare, sample_photo
from interactive_trt.contracts.manifest import Manifest
from interactive_trt.contracts.spec import ModelSpec
from interactive_trt.exporter.tensorrt.build import engine_cache_for
from interactive_trt.exporter.onnx.verify import Bounds, Report, compare, describe_lowest, lowest_cosines
from interactive_trt.exporter.networks.weights import Weights


def engine_inputs(spec: ModelSpec, height: int, width: int, batch: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(4321)
    noise = rng.standard_normal((min(batch, 2), 3, height, width), dtype=np.float32)
    photo = prepare(sample_photo("chelsea"), (height, width), spec.preprocessing)[None]
    return [(f"noise {noise.shape[0]}x{height}x{width}", noise), (f"chelsea {height}x{width}", photo)]


def run_engine(plan: bytes, manifest: Manifest, batches: list[np.ndarray], max_batch: int) -> list[dict]:
    """Outputs of one engine for each batch (all of its resolution), deserialized once."""
    from interactive_trt.exporter.tensorrt.execute import ResolutionSlot, SharedScratch

    trt = tensorrt()
    runtime = trt.Runtime(logger())
    height, width = batches[0].shape[2:]
    scratch = SharedScratch()
    slot = ResolutionSlot(runtime, plan, manifest.input_name, max_batch, height, width, scratch=scratch,
                          batch=max(batch.shape[0] for batch in batches))
    stream = call("cudaStreamCreate", cudart().cudaStreamCreate())
    try:
        return [slot.run(batch, stream) for batch in batches]
    finally:
        slot.free()
        scratch.free()
        cudart().cudaStreamDestroy(stream)


def verify_engine(plan: bytes, manifest: Manifest, spec: ModelSpec, height: int, width: int, max_batch: int,
                  reference: Callable[[np.ndarray], dict], bounds: Bounds, platform,
                  log: Callable[[str], None]) -> tuple[list[Report], dict]:
    """One engine on noise and a photo against `reference` (float32 autograd on the same GPU): its reports,
    and the lowest cosine per kind of output, the figures docs/precision.md's fp16 table gives for ONNX Runtime on
    a CPU, here measured with TensorRT's own kernels."""
    inputs = engine_inputs(spec, height, width, max_batch)
    outputs = run_engine(plan, manifest, [batch for _, batch in inputs], max_batch)
    reports = [compare(f"tensorrt {manifest.precision} vs autograd, {label}", got, reference(batch), bounds)
               for (label, batch), got in zip(inputs, outputs)]
    agreement = {"reference": f"autograd float32 on {platform.gpu_name}", "inputs": [label for label, _ in inputs],
                 "lowest_cosine": lowest_cosines(reports)}
    log(f"  {manifest.precision} engine {height}x{width} vs {agreement['reference']}, lowest cosine: "
        f"{describe_lowest(agreement['lowest_cosine'])}")
    return reports, agreement


def build_engines(onnx_path: Path, manifest: Manifest, spec: ModelSpec, weights: Weights,
                  buckets: list[tuple[int, int]], min_batch: int, max_batch: int, bounds: Bounds | None,
                  reference_options: dict, log: Callable[[str], None],
                  opt_batch: int | None = None) -> tuple[list[dict], list[Report]]:
    """Engines for `buckets` (built or found in the cache) and, unless bounds is None, their reports."""
    import torch

    from interactive_trt.exporter.interactive.reference import AutogradReference

    platform = gpu_platform()
    cache = engine_cache_for(onnx_path, manifest, Path(onnx_path).parent, platform, min_batch, max_batch, log,
                             opt_batch=opt_batch)
    reference = None
    if bounds is not None:
        # TF32 convolutions would make the reference itself as coarse as fp16
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        reference = AutogradReference(spec, weights, device="cuda", **reference_options)
    entries, reports = [], []
    for index, (height, width) in enumerate(buckets, 1):
        started = time.perf_counter()
        log(f"engine {index}/{len(buckets)}: {height}x{width}")
        path, plan = cache.get(height, width)
        entry = {"file": path.name, "height": height, "width": width, "min_batch": min_batch,
                 "max_batch": max_batch, "opt_batch": cache.opt_batch, "precision": manifest.precision,
                 "tensorrt_version": platform.tensorrt_version, "gpu_name": platform.gpu_name,
                 "compute_capability": platform.compute_capability, "bytes": path.stat().st_size}
        if reference is not None:
            engine_reports, entry["agreement"] = verify_engine(
                plan, manifest, spec, height, width, max_batch,
                lambda batch: {k: v.cpu().numpy() for k, v in reference(torch.from_numpy(batch).cuda()).items()},
                bounds, platform, log)
            reports.extend(engine_reports)
            entry["verified"] = all(report.passed for report in engine_reports)
        entries.append(entry)
        log(f"  {path.name} ready in {time.perf_counter() - started:.0f}s")
    return entries, reports
