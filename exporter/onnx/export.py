"""Export: build the explicit InterActive graph, write ONNX atomically, verify it, write the manifest.

Generic over the model description: nothing here knows VGG (optimum's split of config and machinery).
"""

from __future__ import annotations

import gc
import os
import platform
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from interactive_trt import __version__
from interactive_trt.common.errors import SpecError
from interactive_trt.common.imaging import bucket_for, prepare, sample_photo
from interactive_trt.contracts.manifest import Manifest, manifest_path_for, sha256_file, temporary_beside
from interactive_trt.contracts.outputs import output_layer, output_shape
from interactive_trt.exporter.interactive.precision import Calibration, calibrate_loss_scale, check_precision
from interactive_trt.contracts.spec import ModelSpec, Preprocessing
from interactive_trt.exporter.onnx.verify import Bounds, Report, compare
from interactive_trt.forms.cpu import cpu_model
from interactive_trt.forms.cuda import chosen_forms, cuda_model
from interactive_trt.exporter.networks.weights import Weights, load_weights, matconvnet_mean

OPSET = 17
IMPORTED = "onnx"  # ExportRequest.model for a network imported from an ONNX file
GRAPH_BOUNDS = Bounds(min_cosine=None, max_rel_l2=1e-5, top1_agreement=1.0)
ONNXRUNTIME_BOUNDS = Bounds(min_cosine=0.9999, max_rel_l2=None, top1_agreement=1.0)
# fp16: issue 3's 0.999 for the average features and class scores (a flipped near-tie may move one class
# in or out of the top 5). Outputs that hang on single positions (gamma maps, interactive max) get 0.98:
# an fp16 forward pass rounds activations, which flips ReLU masks and pool arg-maxes near ties; the
# docs/precision.md gives the measured figures.
REDUCED_BOUNDS = Bounds(min_cosine=0.999, max_rel_l2=None, positional_min_cosine=0.98, top1_agreement=None,
                        top5_overlap=0.8)


def bounds_for(precision: str, candidate: str) -> Bounds:
    """`precision` is the graph's; a candidate named '... bf16' computes part of it in bfloat16."""
    if precision != "fp32" or candidate.endswith("bf16"):
        return REDUCED_BOUNDS
    return GRAPH_BOUNDS if candidate == "torch graph" else ONNXRUNTIME_BOUNDS


def model_spec(model: str, width_divisor: int = 1) -> ModelSpec:
    from interactive_trt.exporter.networks.registry import built_in

    return built_in(model).build(width_divisor)


@dataclass
class ExportRequest:
    model: str = "vgg19"
    weights: str | None = None
    seed: int = 0
    config: str = "last"
    p: float = 2.0
    head: str = "both"
    out: Path = Path("engines")
    seed_scale: float = 1.0
    verify: bool = True
    width_divisor: int = 1
    layers: tuple[str, ...] | None = None  # feature layers; None: the model's own list
    interactive: bool = True
    verify_images: tuple[Path, ...] = ()
    precision: str = "fp32"
    loss_scale: float | None = None  # None: calibrated for fp16 and fp16-backward, 1 otherwise
    trt: bool = False
    buckets: str | None = None  # "512x512,448x576"; None: the common photo aspects (trt_build)
    min_batch: int = 1
    max_batch: int = 32
    opt_batch: int | None = None  # engines tuned for it; None: tensorrt.build.DEFAULT_OPT_BATCH
    # model "onnx": bring your own network (exporter/networks/onnx_import)
    source: Path | None = None  # the ONNX file
    input_size: tuple[int, int] | None = None  # its native size, when its input is dynamic
    preprocessing: Preprocessing | None = None  # what its input expects; None: torchvision's ImageNet
    name: str | None = None  # the exported model's name; None: the file's stem

    @property
    def graph_options(self) -> dict:
        """What the explicit graph and the autograd reference must agree on."""
        return {"config": self.config, "p": self.p, "head": self.head, "seed_scale": self.seed_scale,
                "interactive": self.interactive}

    @property
    def stem(self) -> str:
        p = f"{self.p:g}".replace(".", "_")
        kind = self.config if self.interactive else "forward"
        typed = "" if self.precision == "fp32" else f"_{self.precision}"
        return f"{self.network_name}_{kind}_p{p}_{self.head}{typed}"

    @property
    def network_name(self) -> str:
        if self.model == IMPORTED:
            from interactive_trt.exporter.networks.onnx_import.network import network_name

            return network_name(self.onnx_source, self.name)
        return model_spec(self.model, self.width_divisor).name

    @property
    def onnx_source(self) -> Path:
        if self.source is None:
            raise SpecError("model 'onnx' needs the ONNX file to import (ExportRequest.source)")
        return Path(self.source)

    def import_options(self):
        from interactive_trt.exporter.networks.onnx_import import ImportOptions

        return ImportOptions(input_size=self.input_size, preprocessing=self.preprocessing or Preprocessing(),
                             name=self.name)


def log_default(message: str) -> None:
    print(message, flush=True)


def resolve_weights(request: ExportRequest, spec: ModelSpec) -> tuple[ModelSpec, Weights]:
    """--weights as given; omitted, the built-in's default file (torchvision's cache, an installed package)."""
    from interactive_trt.common.errors import WeightsError
    from interactive_trt.exporter.networks.registry import built_in
    from interactive_trt.exporter.networks.weights import torchvision_cache_path

    source = request.weights
    if source is None:
        entry = built_in(request.model)
        found = entry.default_weights()
        if found is None:
            raise WeightsError(f"no weights given and none found for {request.model}: "
                               + entry.missing_hint.format(path=torchvision_cache_path(request.model))
                               + "; or pass --weights FILE, or --weights random for seeded random weights")
        source = str(found)
    weights = load_weights(source, spec, seed=request.seed)
    if request.weights and Path(request.weights).suffix.lower() == ".mat":
        mean = matconvnet_mean(Path(request.weights))
        spec = replace(spec, preprocessing=Preprocessing(scale=1.0, mean=mean, std=(1.0, 1.0, 1.0)))
    return spec, weights


def export_onnx(graph, path: Path, sample) -> None:
    """torch.onnx (TorchScript exporter): batch, height and width stay dynamic in the graph. Then the
    ONNX-level rewrite of `rewrite.py` (same-padded backward ConvTransposes as Convs)."""
    import onnx
    import torch

    from interactive_trt.forms.rewrite import transposed_as_convolutions

    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}}
    for name in graph.output_names:
        dynamic[name] = {0: "batch", 2: f"{name}.height", 3: f"{name}.width"} if name.endswith("gamma") else {0: "batch"}
    temporary = temporary_beside(path)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, (sample,), str(temporary), dynamo=False, input_names=["image"],
                              output_names=graph.output_names, dynamic_axes=dynamic, opset_version=OPSET,
                              do_constant_folding=True)
        proto = onnx.load(str(temporary))
        if transposed_as_convolutions(proto):
            onnx.save(proto, str(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def verification_inputs(spec: ModelSpec, images: tuple[Path, ...] = ()) -> list[tuple[str, np.ndarray]]:
    """Noise at the smallest square bucket (batch 2) and real photos at their own, non-square bucket."""
    from interactive_trt.common.imaging import load_rgb

    rng = np.random.default_rng(1234)
    side = spec.resize.min_side
    batches = [(f"noise 2x{side}x{side}", rng.standard_normal((2, 3, side, side), dtype=np.float32))]
    photos = [(str(path), load_rgb(path)) for path in images] or [("scikit-image chelsea", sample_photo("chelsea"))]
    for label, rgb in photos:
        size = bucket_for(*rgb.shape[:2], spec.resize)
        batches.append((f"{label} {size[0]}x{size[1]}", prepare(rgb, size, spec.preprocessing)[None]))
    return batches


class OnnxRuntimeGraph:
    """One ONNX Runtime session over the file, or over a serialized model (a load-time form): named
    float32 arrays in, named arrays out, as `openvino.CompiledGraph`. Made once per candidate; on the CPU
    provider unless `providers` says otherwise (common.ort.session_providers)."""

    def __init__(self, source: Path | str | bytes, providers: list | None = None):
        from interactive_trt.common.ort import CPU_PROVIDER, import_onnxruntime

        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(source if isinstance(source, bytes) else str(source), options,
                                            providers=providers or [CPU_PROVIDER])

    def __call__(self, feed: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        return dict(zip(names, self.session.run(names, {"image": feed})))


def run_onnxruntime(path: Path | bytes, feed: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """One batch through ONNX Runtime's CPU provider."""
    return OnnxRuntimeGraph(path)(feed, names)


def onnxruntime_candidates(onnx_path: Path, precision: str, log: Callable[[str], None]) -> dict:
    """ONNX Runtime on the file, on the graph it runs on a CPU (interactive_trt.forms.cpu) when that differs, and
    on its CUDA provider as interactive-infer runs it (options and form) where onnxruntime-gpu has one.

    Each is a factory, made and released in turn by `verify_runtimes` (each session holds the weights once
    more, in its own form); a factory returns None where its form would change nothing."""
    from interactive_trt.common.ort import CUDA_PROVIDER, import_onnxruntime, session_providers

    def cpu_form():
        with cpu_model(onnx_path, "onnxruntime") as (source, counts):
            if not any(counts.values()):
                return None
            log(f"  also verifying onnxruntime cpu (the graph as it loads on a CPU: {counts['winograd']} layers as "
                f"Winograd F(4x4, 3x3), {counts['pointwise']} 1x1 transposed convolutions as convolutions, "
                f"{counts['products']} as products)")
            return OnnxRuntimeGraph(source)

    def cuda_form():
        with cuda_model(onnx_path, chosen_forms()) as (source, counts):
            taken = ", ".join(f"{form} {count}" for form, count in counts.items() if count) or "none"
            log(f"  also verifying onnxruntime cuda (CUDA forms taken: {taken})")
            return OnnxRuntimeGraph(source, session_providers("cuda", precision))

    candidates = {"onnxruntime": lambda: OnnxRuntimeGraph(onnx_path), "onnxruntime cpu": cpu_form}
    if CUDA_PROVIDER in import_onnxruntime().get_available_providers():
        candidates["onnxruntime cuda"] = cuda_form
    return candidates


def openvino_candidates(onnx_path: Path, precision: str, log: Callable[[str], None]) -> dict:
    """OpenVINO, when installed, as one more runtime: as exported, and with bf16 backward convolutions
    where the CPU has bf16 (an fp32 graph only); factories, as above. Empty when OpenVINO is not installed."""
    from interactive_trt.forms import openvino as ov_runtime

    if not ov_runtime.is_installed():
        return {}
    candidates = {"openvino": lambda: ov_runtime.CompiledGraph(onnx_path, "exported", precision)}
    if precision == "fp32" and ov_runtime.has_bf16():
        candidates["openvino bf16"] = lambda: ov_runtime.CompiledGraph(onnx_path, "bf16", precision)
    log(f"  also verifying {', '.join(candidates)} (OpenVINO {ov_runtime.version().split('-')[0]})")
    return candidates


@dataclass
class Checked:
    """One verification input and what the float32 autograd reference gave on it; kept so the runtimes
    are compared after the torch objects are gone."""

    label: str
    batch: np.ndarray
    expected: dict[str, np.ndarray]
    magnitudes: dict


def verify_torch_graph(spec, weights, request: ExportRequest, graph,
                       log: Callable[[str], None] = log_default) -> tuple[list[Report], list[Checked]]:
    """The explicit torch graph against the float32 autograd reference, on noise and photos; returns the
    reports and the reference's outputs, against which `verify_runtimes` holds the exported file.

    A reduced-precision graph is held to the reduced-precision bounds; its loss scale is invisible in
    its outputs, so the reference is the same for every precision.
    """
    import torch

    from interactive_trt.exporter.interactive.reference import AutogradReference

    reference = AutogradReference(spec, weights, **request.graph_options)
    reports, checked = [], []
    for label, batch in verification_inputs(spec, request.verify_images):
        started = time.perf_counter()
        image = torch.from_numpy(batch)
        expected = {k: v.numpy() for k, v in reference(image).items()}
        with torch.no_grad():
            explicit = {k: v.numpy() for k, v in graph.named_outputs(image).items()}
        magnitudes = dict(reference.magnitudes)
        reports.append(compare(f"torch graph{typed(request.precision)} vs autograd, {label}", explicit, expected,
                               bounds_for(request.precision, "torch graph"), magnitudes))
        checked.append(Checked(label, batch, expected, magnitudes))
        log(f"  verified the torch graph on {label} in {time.perf_counter() - started:.1f}s")
    return reports, checked


def verify_runtimes(onnx_path: Path, checked: list[Checked], output_names: list[str], precision: str,
                    log: Callable[[str], None] = log_default) -> list[Report]:
    """ONNX Runtime (as exported, and in its load-time forms) and, when installed, OpenVINO on the file,
    against the reference's outputs.

    The runtimes are made one at a time, each released before the next, and after the torch objects:
    every session holds the weights once more in its own form (issue 24: VGG-19's export peaked at
    13 GiB with all of them alive; docs/benchmarks.md has the figures).
    """
    reports = []
    candidates = {**onnxruntime_candidates(onnx_path, precision, log), **openvino_candidates(onnx_path, precision, log)}
    for name, make in candidates.items():
        started = time.perf_counter()
        candidate = make()
        if candidate is None:
            continue
        for item in checked:
            reports.append(compare(f"{name}{typed(precision)} vs autograd, {item.label}",
                                   candidate(item.batch, output_names), item.expected,
                                   bounds_for(precision, name), item.magnitudes))
        del candidate
        gc.collect()
        log(f"  verified {name} on {len(checked)} inputs in {time.perf_counter() - started:.1f}s")
    return reports


def typed(precision: str) -> str:
    return "" if precision == "fp32" else f" {precision}"


def calibrate(graph, spec: ModelSpec, request: ExportRequest, log: Callable[[str], None]) -> Calibration:
    """The loss scale of a reduced-precision export, from the float32 graph's backward pass."""
    step = time.perf_counter()
    batches = verification_inputs(spec, request.verify_images)
    calibration = calibrate_loss_scale(graph, batches, request.precision)
    if request.loss_scale is not None:
        calibration.loss_scale = float(request.loss_scale)
    if request.interactive and request.head != "imagenet":
        log(f"{request.precision}: back-propagated values span {calibration.octaves:.0f} octaves, peak "
            f"{calibration.peak:.3g}; loss scale {calibration.loss_scale:g} "
            f"({time.perf_counter() - step:.1f}s)")
    return calibration


def add_engines(onnx_path: Path, manifest: Manifest, spec: ModelSpec, weights: Weights, request: ExportRequest,
                buckets, log) -> list[Report]:
    """Builds (or finds) the engines, verifies them, and records them in the manifest."""
    from interactive_trt.exporter.tensorrt.verify_engines import build_engines

    bounds = bounds_for(request.precision, "tensorrt") if request.verify else None
    entries, reports = build_engines(onnx_path, manifest, spec, weights, buckets, request.min_batch,
                                     request.max_batch, bounds, request.graph_options, log, opt_batch=request.opt_batch)
    known = {entry["file"]: entry for entry in manifest.engines}
    known.update({entry["file"]: entry for entry in entries})
    manifest.engines = list(known.values())
    if reports:
        manifest.verification.setdefault("engine_reports", []).extend(r.to_dict() for r in reports)
        manifest.verification["passed"] = bool(manifest.verification.get("passed", True)) and all(
            r.passed for r in reports)
    manifest.save(manifest_path_for(onnx_path))
    return reports


def tool_versions() -> dict:
    import onnx
    import torch

    versions = {"interactive-trt": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "onnx": onnx.__version__}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    from interactive_trt.forms import openvino as ov_runtime

    if ov_runtime.is_installed():
        versions["openvino"] = ov_runtime.version()
    return versions


def describe_outputs(spec: ModelSpec, names: list[str]) -> list[dict]:
    return [{"name": name, "layer": output_layer(spec, name), "kind": name.split(".", 1)[1],
             "shape": output_shape(spec, name, "batch")} for name in names]


@dataclass
class Exported:
    """What the torch phase leaves: the file, what its outputs are, and the reference's outputs."""

    onnx_path: Path
    output_names: list[str]
    loss_scale: float
    calibration: Calibration | None
    reports: list[Report]
    checked: list[Checked]


def export_graph(spec: ModelSpec, weights: Weights, request: ExportRequest, log: Callable[[str], None]) -> Exported:
    """Builds the explicit graph (calibrated for a reduced precision), writes the ONNX file and verifies
    the torch graph against autograd; the graph and the reference are released when this returns."""
    import torch

    from interactive_trt.exporter.interactive.graph import InterActiveGraph

    graph = InterActiveGraph(spec, weights, **request.graph_options).eval()
    calibration = None
    if request.precision != "fp32":
        calibration = calibrate(graph, spec, request, log)
        graph = InterActiveGraph(spec, weights, **request.graph_options, precision=request.precision,
                                 loss_scale=calibration.loss_scale).eval()
    onnx_path = Path(request.out) / f"{request.stem}.onnx"
    step = time.perf_counter()
    side = spec.resize.min_side
    export_onnx(graph, onnx_path, torch.zeros(1, 3, side, side))
    log(f"exported {onnx_path} ({onnx_path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - step:.1f}s")
    reports, checked = verify_torch_graph(spec, weights, request, graph, log) if request.verify else ([], [])
    return Exported(onnx_path, list(graph.output_names), graph.loss_scale, calibration, reports, checked)


def export_model(request: ExportRequest, log: Callable[[str], None] = log_default,
                 print_report: Callable[[Report], None] | None = None) -> tuple[Path, Manifest]:
    """The whole export; returns the ONNX path and its manifest (written beside it)."""
    started = time.perf_counter()
    check_precision(request.precision)
    imported, trt_stack = None, None
    if request.model == IMPORTED:
        from interactive_trt.exporter.networks.onnx_import import import_onnx

        if request.trt:  # the import takes a moment: what --trt needs is refused before it
            from interactive_trt.exporter.tensorrt.preflight import require_tensorrt

            trt_stack = require_tensorrt(request.verify)
        imported = import_onnx(request.onnx_source, request.import_options())
        spec = imported.spec
        log(f"imported {request.onnx_source} ({imported.canonical.producer}, opset {imported.canonical.opset}, "
            f"{imported.canonical.layout} {imported.canonical.native_size[0]}x{imported.canonical.native_size[1]}): "
            f"{len(spec.layers)} layers, classifier {spec.layer(spec.head_logits).source!r} in {imported.seconds:.1f}s")
        if request.layers:
            spec = replace(spec, feature_layers=imported.resolve_layers(request.layers))
    else:
        spec = model_spec(request.model, request.width_divisor)
        if request.layers:
            spec = replace(spec, feature_layers=tuple(request.layers))  # validated by ModelSpec
    if request.verify:
        from interactive_trt.common.ort import import_onnxruntime

        import_onnxruntime()  # verification runs the file in ONNX Runtime: refuse now, not after the export
    buckets = []
    if request.trt:
        from interactive_trt.exporter.tensorrt.preflight import require_tensorrt
        from interactive_trt.exporter.tensorrt.build import check_batch_range, opt_batch_for, parse_buckets

        buckets = parse_buckets(request.buckets, spec)
        check_batch_range(request.min_batch, request.max_batch, request.opt_batch)
        request = replace(request, opt_batch=request.opt_batch or opt_batch_for(request.min_batch, request.max_batch))
        log(f"engines: {', '.join(f'{h}x{w}' for h, w in buckets)} with "
            f"{trt_stack or require_tensorrt(request.verify)}")
    if imported is None:
        spec, weights = resolve_weights(request, spec)
    else:
        weights = imported.weights
    source_name, digest = weights.source, weights.digest
    log(f"weights: {source_name} (sha256 {digest[:12]}) in {time.perf_counter() - started:.1f}s")
    exported = export_graph(spec, weights, request, log)
    if not request.trt:
        del weights  # the torch objects are gone too (export_graph): the runtimes are verified without them
    gc.collect()
    onnx_path, reports = exported.onnx_path, exported.reports
    if request.verify:
        reports += verify_runtimes(onnx_path, exported.checked, exported.output_names, request.precision, log)
        exported.checked.clear()
        if imported is not None:
            from interactive_trt.exporter.networks.onnx_import import verify_against_source

            reports += verify_against_source(replace(imported, spec=spec), request.verify_images, log)
        if print_report:
            for report in reports:
                print_report(report)
    manifest = Manifest(
        model=spec, onnx_file=onnx_path.name, onnx_sha256=sha256_file(onnx_path),
        weights_source=source_name, weights_sha256=digest, config=request.config, p=request.p,
        head=request.head, seed_scale=request.seed_scale, interactive=request.interactive, opset=OPSET,
        input_name="image", outputs=describe_outputs(spec, exported.output_names), tool_versions=tool_versions(),
        verification={"passed": all(r.passed for r in reports) if reports else None,
                      "reports": [r.to_dict() for r in reports]},
        precision=request.precision, loss_scale=exported.loss_scale,
        calibration=exported.calibration.to_dict() if exported.calibration else {},
        source=imported.record() if imported is not None else {},
    )
    manifest.save(manifest_path_for(onnx_path))
    if request.precision == "fp16" and not all(r.passed for r in reports):
        log("fp16: an fp16 forward pass rounds activations and flips the ReLU masks and max-pool decisions "
            "that set the gradient; --fp16-backward keeps the forward pass in float32 and computes the "
            "backward pass in float16")
    for report in reports:
        report.raise_if_failed()
    if request.trt:
        engine_reports = add_engines(onnx_path, manifest, spec, weights, request, buckets, log)
        if print_report:
            for report in engine_reports:
                print_report(report)
        for report in engine_reports:
            report.raise_if_failed()
    log(f"done in {time.perf_counter() - started:.1f}s")
    return onnx_path, manifest

