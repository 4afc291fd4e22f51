"""TensorRT engines from the exported ONNX graph: one engine per input resolution (bucket).

Why one engine per resolution and not one dynamic-shape engine: TensorRT picks its tactics for the
shapes of an optimization profile, and the paper's resize rule gives a small, known set of sizes
(H*W about 512^2, sides multiples of 32), so each bucket gets kernels tuned for exactly its shape and
only the batch stays dynamic. A resolution that was not prebuilt is built on first use, under a lock
(engine_cache.EngineCache), rather than served by a slower catch-all engine.

Precision is not a builder flag: TensorRT 11 builds every network strongly typed, and the fp16 graph
carries its types (precision.py). TF32 is switched off for every precision: TF32 convolutions round
float32 inputs to 10 mantissa bits, as many as fp16, which the float32 bound (cosine 0.9999) does not
allow, and the fp16 graph keeps float32 ops too (connection sums with all-ones kernels, gamma, the head)
that must stay float32. All buckets of a model share one timing cache file per TensorRT version and GPU
(timing_cache.py), so later builds reuse the kernel timings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from interactive_trt.exporter.tensorrt.cuda import logger, tensorrt
from interactive_trt.exporter.tensorrt.cache import EngineCache, Platform
from interactive_trt.exporter.tensorrt.timing_cache import TimingCacheFile, timing_cache_path
from interactive_trt.contracts.engine_file import EngineKey
from interactive_trt.common.errors import InterActiveError, SpecError
from interactive_trt.common.imaging import bucket_for
from interactive_trt.contracts.manifest import Manifest
from interactive_trt.contracts.spec import ModelSpec

# Photo aspect ratios whose buckets are prebuilt when --buckets is not given (height : width).
COMMON_ASPECTS = ((1, 1), (3, 4), (4, 3), (2, 3), (3, 2))
WORKSPACE_BYTES = 8 << 30
# The batch the optimization profile is tuned for (its 'opt' shape): the --batch-size that interactive-infer,
# interactive-features and interactive-eval use by default. TensorRT picks each layer's kernels for the opt
# shape; with opt at the largest batch, batch 4 would run kernels chosen for 32.
DEFAULT_OPT_BATCH = 4


class EngineBuildError(InterActiveError):
    """TensorRT could not parse the graph or build an engine; the message carries its first errors."""


def default_buckets(spec: ModelSpec) -> list[tuple[int, int]]:
    buckets = []
    for aspect_h, aspect_w in COMMON_ASPECTS:
        bucket = bucket_for(aspect_h * 1000, aspect_w * 1000, spec.resize)
        if bucket not in buckets:
            buckets.append(bucket)
    return buckets


def parse_buckets(text: str | None, spec: ModelSpec) -> list[tuple[int, int]]:
    """'512x512,448x576' -> [(512, 512), (448, 576)]; every size must be one the network accepts."""
    if not text:
        return default_buckets(spec)
    buckets = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise SpecError(f"bucket {item.strip()!r}: expected HEIGHTxWIDTH, e.g. 512x512")
        height, width = int(parts[0]), int(parts[1])
        spec.spatial_sizes(height, width)  # raises SpecError for a size the layers cannot take
        if (height, width) not in buckets:
            buckets.append((height, width))
    return buckets


def check_batch_range(min_batch: int, max_batch: int, opt_batch: int | None = None) -> None:
    if not 1 <= min_batch <= max_batch:
        raise SpecError(f"batch range {min_batch}..{max_batch}: need 1 <= min batch <= max batch")
    if opt_batch is not None and not min_batch <= opt_batch <= max_batch:
        raise SpecError(f"batch {opt_batch} to tune for is outside the batch range {min_batch}..{max_batch}")


def opt_batch_for(min_batch: int, max_batch: int, wanted: int | None = None) -> int:
    """The batch to tune for: `wanted` (default DEFAULT_OPT_BATCH) brought inside the batch range."""
    return min(max(wanted or DEFAULT_OPT_BATCH, min_batch), max_batch)


def make_progress_monitor(trt, log: Callable[[str], None]):
    """Reports the builder's phases with their durations (an engine of VGG-19 takes minutes)."""

    class BuildProgress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.started: dict[str, float] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.started[phase_name] = time.perf_counter()
            if parent_phase is None:
                log(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            return True  # keep building

        def phase_finish(self, phase_name):
            began = self.started.pop(phase_name, None)
            if began is not None and time.perf_counter() - began > 5:
                log(f"  {phase_name} done in {time.perf_counter() - began:.0f}s")

    return BuildProgress()


class TensorRTBuilder:
    """Callable EngineKey -> plan bytes, for EngineCache; parses the ONNX file once."""

    def __init__(self, onnx_path: Path, manifest: Manifest, timing_cache: Path,
                 log: Callable[[str], None] = print, workspace_bytes: int = WORKSPACE_BYTES):
        self.onnx_path, self.manifest = Path(onnx_path), manifest
        self.timing_cache = TimingCacheFile(timing_cache, log)
        self.log, self.workspace_bytes = log, workspace_bytes
        self.trt = tensorrt()
        self.logger = logger()
        self.builder = self.trt.Builder(self.logger)
        self.network = None

    def parse(self):
        if self.network is not None:
            return self.network
        trt = self.trt
        flags = 0
        strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly_typed is not None:  # TensorRT 10; TensorRT 11 is always strongly typed
            flags |= 1 << int(strongly_typed)
        network = self.builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        started = time.perf_counter()
        if not parser.parse_from_file(str(self.onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(min(parser.num_errors, 3)))
            raise EngineBuildError(f"{self.onnx_path}: TensorRT cannot parse it: {errors}")
        self.log(f"parsed {self.onnx_path.name} for TensorRT {trt.__version__} in {time.perf_counter() - started:.1f}s")
        self.network, self.parser = network, parser
        return network

    def _config(self, key: EngineKey):
        trt = self.trt
        config = self.builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        if hasattr(trt.BuilderFlag, "TF32"):  # every precision: the fp16 graph has float32 ops too
            config.clear_flag(trt.BuilderFlag.TF32)
        profile = self.builder.create_optimization_profile()
        shape = (3, key.height, key.width)
        opt = key.opt_batch or key.max_batch
        profile.set_shape(self.manifest.input_name, (key.min_batch, *shape), (opt, *shape), (key.max_batch, *shape))
        config.add_optimization_profile(profile)
        config.progress_monitor = make_progress_monitor(trt, self.log)
        return config

    def __call__(self, key: EngineKey) -> bytes:
        if key.precision != self.manifest.precision:
            raise EngineBuildError(f"{self.onnx_path}: the graph is {self.manifest.precision}, "
                                   f"a {key.precision} engine needs a {key.precision} export")
        network = self.parse()
        config = self._config(key)
        cache = self.timing_cache.attach(config)
        started = time.perf_counter()
        plan = self.builder.build_serialized_network(network, config)
        if plan is None:
            raise EngineBuildError(f"{self.onnx_path}: TensorRT failed to build the {key.height}x{key.width} "
                                   f"{key.precision} engine (its log above says why)")
        self.timing_cache.save(config, cache)
        self.log(f"built {key.height}x{key.width} {key.precision} batch {key.min_batch}-{key.max_batch} (tuned for "
                 f"{key.opt_batch or key.max_batch}) in "
                 f"{time.perf_counter() - started:.0f}s")
        return bytes(plan)


def engine_cache_for(onnx_path: Path, manifest: Manifest, folder: Path, platform: Platform, min_batch: int,
                     max_batch: int, log: Callable[[str], None] = print, opt_batch: int | None = None) -> EngineCache:
    """The engines of one exported model, built with TensorRT when missing, tuned for `opt_batch`
    (default: DEFAULT_OPT_BATCH, inside the range)."""
    opt_batch = opt_batch_for(min_batch, max_batch, opt_batch) if opt_batch is None else opt_batch
    check_batch_range(min_batch, max_batch, opt_batch)
    stem = Path(onnx_path).stem
    builder = _LazyBuilder(onnx_path, manifest, timing_cache_path(folder, stem, platform), log)
    return EngineCache(folder, stem, manifest.onnx_sha256, platform, manifest.precision, min_batch, max_batch,
                       builder, log, opt_batch=opt_batch)


class _LazyBuilder:
    """Creates the TensorRT builder only when an engine is actually missing."""

    def __init__(self, *args):
        self.args, self.builder = args, None

    def __call__(self, key: EngineKey) -> bytes:
        if self.builder is None:
            self.builder = TensorRTBuilder(*self.args)
        return self.builder(key)
