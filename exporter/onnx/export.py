"""Export: build the explicit InterActive graph, write ONNX atomically, verify it, write the manifest.

Generic over the model description: nothing here knows VGG (optimum's split of config and machinery).
The stages in their order and their homes: what is asked (request.py), the graph and its file (here),
verification on torch and on every runtime (verification.py), the manifest and the engines (here).
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from interactive_trt import __version__
from interactive_trt.common.errors import SpecError
from interactive_trt.common.memory import return_freed_memory
from interactive_trt.contracts.graph import OnnxGraph
from interactive_trt.contracts.manifest import Manifest, manifest_path_for, sha256_file, temporary_beside
from interactive_trt.contracts.outputs import output_layer, output_shape
from interactive_trt.contracts.spec import ModelSpec, upstream
from interactive_trt.exporter.interactive.precision import Calibration, calibrate_loss_scale, check_precision
from interactive_trt.exporter.networks.weights import Weights
from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest, log_default, model_spec, resolve_weights
from interactive_trt.exporter.onnx.verification import (Checked, Float64Reference, bounds_for, refused_precisions,
                                                        run_time_precision, verification_inputs, verify_runtimes,
                                                        verify_torch_graph)
from interactive_trt.exporter.onnx.verify import Report

OPSET = 17


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
    export_onnx(graph, onnx_path, torch.zeros(1, 3, *spec.resize.smallest))
    log(f"exported {onnx_path} ({onnx_path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - step:.1f}s")
    reports, checked = verify_torch_graph(spec, weights, request, graph, log) if request.verify else ([], [])
    return Exported(onnx_path, list(graph.output_names), graph.loss_scale, calibration, reports, checked)


def check_weight_maps(spec: ModelSpec, request: ExportRequest) -> None:
    """Refuses, before anything is written, a feature layer whose weight map is identically 0 in the 'last'
    configuration (ModelSpec.cancelled_by_norm): its InterActive features would be rounding noise."""
    if not request.interactive or request.config != "last":
        return
    for name in spec.feature_layers:
        norm = spec.cancelled_by_norm(name)
        if norm:
            successors = ", ".join(repr(layer.source or layer.name) for layer in spec.successors(name))
            raise SpecError(f"feature layer {spec.layer(name).source or name!r}: the gradient at its successor "
                            f"{successors} comes only through LayerNorms (as {spec.layer(norm).source or norm!r}) and "
                            "residual sums, and sums to 0 over the channels, so its weight map is identically 0 with "
                            "--config last; choose another layer (--list-layers) or --config next")


def check_feature_layers(spec: ModelSpec, request: ExportRequest, imported) -> None:
    """Refuses, before anything is written, a features head with no layer in it: an imported network none of
    whose layers is a default (no stage end has a weighted successor reached through weight-free ops)."""
    if request.head == "imagenet" or spec.feature_layers:
        return
    where = request.onnx_source if imported is not None else spec.name
    candidates = imported.candidates if imported is not None else []
    below_t = upstream([spec.last_layer], lambda name: spec.by_name[name].inputs)
    usable = [name for name in candidates if request.config == "next"
              or all(successor.name in below_t for successor in spec.successors(name))]
    named = ", ".join(spec.layer(name).source or name for name in usable or candidates)
    if usable:
        raise SpecError(f"{where}: no default feature layer; name some with --layers (candidates: {named}), or "
                        "export the ImageNet head alone with --head imagenet")
    if candidates:
        raise SpecError(f"{where}: no default feature layer, and the candidates ({named}) feed the classifier, "
                        "above T of --config last: use --layers with --config next, or --head imagenet")
    raise SpecError(f"{where}: no layer can give InterActive features (none has a weighted layer after it reached "
                    "through weight-free ops; see --list-layers); export the ImageNet head alone with --head imagenet")


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
    check_feature_layers(spec, request, imported)
    check_weight_maps(spec, request)
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
    return_freed_memory()
    onnx_path, reports = exported.onnx_path, exported.reports
    if request.verify:
        # the float64 judge of a runtime's miss loads the weights again only then (issue 24's memory)
        again = (lambda: imported.weights) if imported is not None else (lambda: resolve_weights(request, spec)[1])
        reports += verify_runtimes(OnnxGraph(onnx_path, "image", exported.output_names, request.precision),
                                   exported.checked, log, Float64Reference(spec, again, request))
        exported.checked.clear()
        if imported is not None:
            from interactive_trt.exporter.networks.onnx_import import verify_against_source

            reports += verify_against_source(replace(imported, spec=spec), request.verify_images, log)
        if print_report:
            for report in reports:
                print_report(report)
    refused = refused_precisions(reports)
    required = [report for report in reports if run_time_precision(report) is None]
    manifest = Manifest(
        model=spec, onnx_file=onnx_path.name, onnx_sha256=sha256_file(onnx_path),
        weights_source=source_name, weights_sha256=digest, config=request.config, p=request.p,
        head=request.head, seed_scale=request.seed_scale, interactive=request.interactive, opset=OPSET,
        input_name="image", outputs=describe_outputs(spec, exported.output_names), tool_versions=tool_versions(),
        verification={"passed": all(r.passed for r in required) if reports else None,
                      "reports": [r.to_dict() for r in reports], "refused_precisions": refused},
        precision=request.precision, loss_scale=exported.loss_scale,
        calibration=exported.calibration.to_dict() if exported.calibration else {},
        source=imported.record() if imported is not None else {},
    )
    manifest.save(manifest_path_for(onnx_path))
    if request.precision == "fp16" and not all(r.passed for r in reports):
        log("fp16: an fp16 forward pass rounds activations and flips the ReLU masks and max-pool decisions "
            "that set the gradient; --fp16-backward keeps the forward pass in float32 and computes the "
            "backward pass in float16")
    for report in required:
        report.raise_if_failed()
    for precision, miss in refused.items():
        log(f"--precision {precision} missed its reduced bounds ({miss}): interactive-infer refuses it for this "
            "model; the export at its own precision is verified")
    if request.trt:
        engine_reports = add_engines(onnx_path, manifest, spec, weights, request, buckets, log)
        if print_report:
            for report in engine_reports:
                print_report(report)
        for report in engine_reports:
            report.raise_if_failed()
    log(f"done in {time.perf_counter() - started:.1f}s")
    return onnx_path, manifest

