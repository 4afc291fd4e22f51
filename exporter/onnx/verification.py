"""What export verification holds the exported file to, and how: the explicit torch graph against the
float32 autograd reference, then the file itself on every runtime installed here, each through the
same runner interactive-infer runs it with (interactive_trt.runners), on noise and photos.

The reference's outputs are kept (`Checked`) and the torch objects released before any runtime is
made; the runtimes are made one at a time, each released before the next: every session holds the
weights once more in its own form (issue 24: VGG-19's export peaked at 13 GiB with all of them alive;
docs/benchmarks.md has the figures). A miss against the float32 reference is judged again against the
same reference in float64 (`Float64Reference`), which is made only then; a runtime that meets neither is
judged once more where the float64 forward pass has maxima within float32's error of a tie (`tie_judged`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from interactive_trt.common.errors import VerificationError
from interactive_trt.common.imaging import bucket_for, prepare, sample_photo
from interactive_trt.common.memory import return_freed_memory
from interactive_trt.contracts.graph import OnnxGraph
from interactive_trt.contracts.spec import ModelSpec
from interactive_trt.exporter.onnx.request import ExportRequest, log_default
from interactive_trt.exporter.onnx.verify import Bounds, Report, compare, cosine, rel_l2

GRAPH_BOUNDS = Bounds(min_cosine=None, max_rel_l2=1e-5, top1_agreement=1.0)
ONNXRUNTIME_BOUNDS = Bounds(min_cosine=0.9999, max_rel_l2=None, top1_agreement=1.0)
# fp16: issue 3's 0.999 for the average features and class scores (a flipped near-tie may move one class
# in or out of the top 5). Outputs that hang on single positions (gamma maps, interactive max) get 0.98:
# an fp16 forward pass rounds activations, which flips ReLU masks and pool arg-maxes near ties; the
# docs/precision.md gives the measured figures.
REDUCED_BOUNDS = Bounds(min_cosine=0.999, max_rel_l2=None, positional_min_cosine=0.98, top1_agreement=None,
                        top5_overlap=0.8)


# Run-time precisions the export verifies where this machine has them (OpenVINO's bf16): a miss refuses that
# precision for this model at run time (the manifest's `refused_precisions`) and leaves the export, verified
# at its own precision, standing; a user who never asks for bf16 is not stopped by it.
RUN_TIME_PRECISIONS = {"openvino bf16": "bf16"}


def run_time_precision(report: Report) -> str | None:
    """The run-time precision a report verified ('bf16'), or None for the exported precision."""
    return next((precision for name, precision in RUN_TIME_PRECISIONS.items()
                 if report.label.startswith(f"{name} vs ")), None)


def refused_precisions(reports: list[Report]) -> dict[str, str]:
    """precision -> the first miss that refuses it (its report's label and worst output)."""
    refused = {}
    for report in reports:
        precision = run_time_precision(report)
        if precision and not report.passed and precision not in refused:
            worst = min(report.failures, key=lambda check: check.cosine)
            refused[precision] = f"{report.label}: {worst.name} at cosine {worst.cosine:.6f}"
    return refused


def bounds_for(precision: str, candidate: str) -> Bounds:
    """`precision` is the graph's; a candidate named '... bf16' computes part of it in bfloat16."""
    if precision != "fp32" or candidate.endswith("bf16"):
        return REDUCED_BOUNDS
    return GRAPH_BOUNDS if candidate == "torch graph" else ONNXRUNTIME_BOUNDS


def verification_inputs(spec: ModelSpec, images: tuple[Path, ...] = ()) -> list[tuple[str, np.ndarray]]:
    """Noise at the smallest bucket (batch 2; square unless the rule's axes differ) and real photos at their
    own, non-square bucket."""
    from interactive_trt.common.imaging import load_rgb

    rng = np.random.default_rng(1234)
    height, width = spec.resize.smallest
    batches = [(f"noise 2x{height}x{width}", rng.standard_normal((2, 3, height, width), dtype=np.float32))]
    photos = [(str(path), load_rgb(path)) for path in images] or [("scikit-image chelsea", sample_photo("chelsea"))]
    for label, rgb in photos:
        size = bucket_for(*rgb.shape[:2], spec.resize)
        batches.append((f"{label} {size[0]}x{size[1]}", prepare(rgb, size, spec.preprocessing)[None]))
    return batches


def run_onnxruntime(path: Path, feed: np.ndarray, names: list[str], input_name: str = "image") -> dict[str, np.ndarray]:
    """One batch through the file as exported, on ONNX Runtime's CPU provider; any float32 input (the
    tests run single layers through it)."""
    from interactive_trt.runners.onnxrt import OnnxRuntimeRunner

    with OnnxRuntimeRunner(OnnxGraph(Path(path), input_name, list(names), layout=None), device="cpu",
                           convolutions="direct") as runner:
        return runner.infer({input_name: feed})


def runtime_candidates(graph: OnnxGraph, log: Callable[[str], None]) -> dict[str, Callable]:
    """name -> a runner not yet active, for every runtime installed here, as interactive-infer runs it:
    ONNX Runtime on the file as exported, on the graph it runs on a CPU (interactive_trt.forms.cpu), and
    on its CUDA provider (options and form) where onnxruntime-gpu has one; OpenVINO as exported, and
    with bf16 backward convolutions where the CPU has bf16 (an fp32 graph only)."""
    from interactive_trt.common.ort import CUDA_PROVIDER, import_onnxruntime
    from interactive_trt.forms import openvino as ov_runtime
    from interactive_trt.runners.onnxrt import OnnxRuntimeRunner

    candidates = {"onnxruntime": lambda: OnnxRuntimeRunner(graph, device="cpu", convolutions="direct"),
                  "onnxruntime cpu": lambda: OnnxRuntimeRunner(graph, device="cpu", convolutions="auto", form_only=True)}
    if CUDA_PROVIDER in import_onnxruntime().get_available_providers():
        candidates["onnxruntime cuda"] = lambda: OnnxRuntimeRunner(graph, device="cuda", convolutions="auto")
    if ov_runtime.is_installed():
        from interactive_trt.runners.openvino import OpenVinoRunner

        openvino = {"openvino": lambda: OpenVinoRunner(graph, device="cpu", precision="exported")}
        if graph.precision == "fp32" and ov_runtime.has_bf16():
            openvino["openvino bf16"] = lambda: OpenVinoRunner(graph, device="cpu", precision="bf16")
        log(f"  also verifying {', '.join(openvino)} (OpenVINO {ov_runtime.version().split('-')[0]})")
        candidates.update(openvino)
    return candidates


def described(name: str, runner) -> str | None:
    """What a load-time form changed, for the log; None where "onnxruntime cpu" would run the file as
    "onnxruntime" does (its row would repeat that one)."""
    counts = getattr(runner, "counts", {})
    if name == "onnxruntime cpu":
        if not any(counts.values()):
            return None
        return (f"  also verifying onnxruntime cpu (the graph as it loads on a CPU: {counts['winograd']} layers as "
                f"Winograd F(4x4, 3x3), {counts['pointwise']} 1x1 transposed convolutions as convolutions, "
                f"{counts['products']} as products, {counts['spread']} strided depthwise ones as spreads)")
    if name == "onnxruntime cuda":
        taken = ", ".join(f"{form} {count}" for form, count in counts.items() if count) or "none"
        return f"  also verifying onnxruntime cuda (CUDA forms taken: {taken})"
    return ""


@dataclass
class Checked:
    """One verification input and what the autograd reference gave on it (in float32, or in float64 where
    `exact`: the float32 one had missed); kept so the runtimes are compared after the torch objects are
    gone."""

    label: str
    batch: np.ndarray
    expected: dict[str, np.ndarray]
    magnitudes: dict
    exact: bool = False
    float32: dict[str, np.ndarray] | None = None  # where `exact`: the float32 reference's, for as_close_as_autograd


class Float64Reference:
    """The autograd reference in float64 (weights and input cast, the same code), made on first use: the
    judge where a float32 result misses the float32 reference.

    Both sides of a float32 comparison sum in their own order, so either may flip a ReLU mask or a pool's
    arg-max at a near-tie (INTERACTIVE.md, "Numerics that bite"): on Keras' EfficientNetV2-B0 with random
    weights one flipped mask in the score map moved the ImageNet head's gamma by rel L2 3.6e-5 against the
    float32 reference (bound 1e-5), by 9e-8 against float64. A candidate that meets the same bound against
    float64 passes; one that is wrong misses there too. `weights` is called only then, so that the runtimes
    are verified without the torch objects where nothing misses (issue 24's memory).
    """

    def __init__(self, spec, weights: Callable[[], object], request: ExportRequest):
        self.spec, self.weights, self.request, self.reference = spec, weights, request, None

    def made(self):
        import torch

        from interactive_trt.exporter.interactive.reference import AutogradReference

        if self.reference is None:
            self.reference = AutogradReference(self.spec, self.weights(), dtype=torch.float64,
                                               **self.request.graph_options)
        return self.reference

    def __call__(self, batch: np.ndarray) -> tuple[dict, dict]:
        import torch

        reference = self.made()
        expected = {k: v.numpy() for k, v in reference(torch.from_numpy(batch)).items()}
        return expected, dict(reference.magnitudes)

    def near_ties(self, batch: np.ndarray) -> int:
        """How many windows of the float64 forward pass's maxima (max pools, global and channel maxima) hold
        a second value within NEAR_TIE of the largest, relatively: where a float32 run may route the
        gradient elsewhere."""
        import torch
        import torch.nn.functional as F

        from interactive_trt.contracts.spec import INPUT
        from interactive_trt.exporter.interactive.forward import run_forward

        maxima = [layer for layer in self.spec.layers
                  if layer.op in ("maxpool", "gmp", "channel_max") and layer.inputs[0] != INPUT]
        if not maxima:
            return 0
        with torch.no_grad():
            acts, _ = run_forward(self.spec, self.made().params, torch.from_numpy(batch).double(),
                                  [layer.inputs[0] for layer in maxima])
        count = 0
        for layer in maxima:
            x = acts[layer.inputs[0]]
            if layer.op == "maxpool":
                top, left, bottom, right = layer.pad4
                (k_h, k_w), (s_h, s_w) = layer.window, layer.strides
                x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
                rows, columns = F.max_pool2d(x, (k_h, k_w), (s_h, s_w), ceil_mode=layer.ceil_mode).shape[-2:]
                x = F.pad(x, (0, s_w, 0, s_h), value=float("-inf"))  # room for ceil mode's last window
                windows = x.unfold(2, k_h, s_h).unfold(3, k_w, s_w)[:, :, :rows, :columns].flatten(-2)
            else:
                windows = x.flatten(2) if layer.op == "gmp" else x.movedim(1, -1)
            if windows.shape[-1] < 2:
                continue
            best = windows.topk(2, dim=-1).values
            gap = best[..., 0] - best[..., 1]
            count += int(((gap > 0) & (gap <= NEAR_TIE * best[..., 0].abs())).sum())
        return count


# Near-ties: the two largest values of a maximum's window within this share of each other (float32's own
# error in a deep forward pass is a few 1e-7); the outputs one position can move (gamma maps, interactive
# max) are then held to TIE_COSINE where a runtime meets neither reference, every other output to its bound.
NEAR_TIE = 1e-6
TIE_COSINE = 0.999


def label_ends(report: Report) -> tuple[str, str]:
    """A report's label reads '<candidate> vs <reference>, <input>': the candidate and the input."""
    compared, _, batch = report.label.partition(", ")
    return compared.split(" vs ")[0], batch


def against_float64(report: Report, got: dict, expected: dict, magnitudes: dict, bounds: Bounds,
                    why: str = "") -> Report:
    """`report`'s comparison again, against the float64 reference's outputs, labelled so (with `why`)."""
    candidate, batch = label_ends(report)
    return compare(f"{candidate} vs autograd in float64{why}, {batch}", got, expected, bounds, magnitudes)


def tie_judged(report: Report, got: dict, expected: dict, magnitudes: dict, bounds: Bounds, near: int,
               log: Callable[[str], None]) -> Report | None:
    """A miss against float64 where the float64 forward pass itself has near-tied maxima: at a tie every
    routing is a valid gradient, and float32 rounding picks one (timm's ese_vovnet19b_dw on the cat at
    416x640: 882 such windows in three max pools; gamma at cosine 0.99938-0.99949 against float32 on ONNX
    Runtime and OpenVINO, 0.99981 and 0.99956 against float64, the torch graph equal to autograd). The torch
    graph is judged so under the runtimes' bounds (`verify_torch_graph`). None where there is no such window
    or the miss is more."""
    if not near or (bounds.positional_min_cosine or 1.0) <= TIE_COSINE:
        return None
    third = against_float64(report, got, expected, magnitudes, replace(bounds, positional_min_cosine=TIE_COSINE),
                            f" ({near} maxima within {NEAR_TIE:g} of a tie)")
    if not third.passed:
        return None
    candidate, batch = label_ends(report)
    others = "its bound" if bounds.min_cosine is None else f"cosine {bounds.min_cosine:g}"
    log(f"  {candidate} missed on {batch} "
        f"({', '.join(check.name for check in report.failures)}), where {near} maxima of the float64 forward pass "
        f"are within {NEAR_TIE:g} of a tie: its gamma maps and interactive maxima meet cosine {TIE_COSINE}, every "
        f"other output {others}")
    return third


def judged(report: Report, got: dict, expected: dict, magnitudes: dict, bounds: Bounds,
           log: Callable[[str], None]) -> Report | None:
    """`report`'s comparison again, against the float64 reference's outputs; None where it misses there too."""
    second = against_float64(report, got, expected, magnitudes, bounds)
    if not second.passed:
        return None
    candidate, batch = label_ends(report)
    log(f"  {candidate} missed the float32 reference on {batch} "
        f"({', '.join(check.name for check in report.failures)}) and meets the bound against float64")
    return second


AUTOGRAD_SLACK = 2.0  # how much further from float64 than float32 autograd a float32 result may be
# below it float32 autograd is no witness: an output it computes that far from float64 is not float32's
# rounding of the same thing (a judge of another p is at 0.946 on VGG's conv3_3 gamma) and is not relaxed
AUTOGRAD_COSINE = 0.99


def autograd_distances(precise: dict, float32: dict, magnitudes: dict) -> dict[str, tuple[float, float]]:
    """Float32 autograd's own (rel L2, cosine) from float64, per output."""
    return {name: (rel_l2(float32[name], value, magnitudes.get(name)), cosine(float32[name], value))
            for name, value in precise.items() if name in float32}


def autograd_held(bounds: Bounds, distance: tuple[float, float]) -> Bounds:
    """`bounds`, each loosened to AUTOGRAD_SLACK times float32 autograd's own (rel L2, 1 - cosine) from
    float64 where that is the larger, and autograd is within AUTOGRAD_COSINE of float64."""
    error, cos = distance
    if cos < AUTOGRAD_COSINE:
        return bounds
    held = bounds
    if bounds.max_rel_l2 is not None and AUTOGRAD_SLACK * error > bounds.max_rel_l2:
        held = replace(held, max_rel_l2=AUTOGRAD_SLACK * error)
    floor = 1 - AUTOGRAD_SLACK * (1 - cos)
    if bounds.min_cosine is not None and floor < bounds.min_cosine:
        held = replace(held, min_cosine=floor)
    if bounds.positional_min_cosine is not None and floor < bounds.positional_min_cosine:
        held = replace(held, positional_min_cosine=floor)
    return held


def as_close_as_autograd(report: Report, got: dict, precise: dict, magnitudes: dict, float32: dict, bounds: Bounds,
                         log: Callable[[str], None]) -> Report | None:
    """A miss against float64 where float32 itself cannot meet the bound: each output is held to its bounds
    or to AUTOGRAD_SLACK times the float32 autograd reference's own distance from float64 there (relative L2
    for the torch graph, cosine for the runtimes), whichever is looser. On random weights some gammas are
    sums that cancel over many blocks: timm's rexnetr_100 at 416x640, both float32 computations 2.3-2.8e-4
    from float64 on three gammas (bound 1e-5); inception_next_tiny's ImageNet gamma, the graph 5.1e-5 and
    autograd 6.1e-5; random networks of the import's fuzzer on the cat at 416x624, a LayerNorm's and a
    concat's gamma at rel L2 4.4e-2 and 6.6e-2 from float64 for autograd (cosine 0.99905, 0.99781), ONNX
    Runtime as near (0.99894, 0.99846). A wrong graph misses by orders of magnitude more (a derivative's
    sign: rel L2 of order 1). None where the result misses that too or nothing is relaxed."""
    if not float32:
        return None
    distances = autograd_distances(precise, float32, magnitudes)
    held = {name: autograd_held(bounds, distance) for name, distance in distances.items()}
    relaxed = {name: distances[name] for name, loosened in held.items() if loosened != bounds}
    own = compare("float32 autograd", {name: float32[name] for name in distances}, precise, bounds, magnitudes)
    if own.passed or not relaxed:
        return None  # float32 can meet the bounds here: a miss is the result's
    name, batch = label_ends(report)
    label = f"{name} vs autograd in float64 (as close as float32 autograd), {batch}"
    checks = []
    for output, value in precise.items():
        checks += compare(label, {output: got[output]} if output in got else {}, {output: value},
                          held.get(output, bounds), magnitudes).checks
    third = Report(label, checks)
    if not third.passed:
        return None
    log(f"  {name} missed float64 on {batch}, where float32 autograd misses it too: held to "
        f"{AUTOGRAD_SLACK:g}x autograd's own distance from float64 ("
        + ", ".join(f"{output} rel L2 {error:.2g}, cosine {cos:.6f}" for output, (error, cos) in relaxed.items())
        + "), and meets it")
    return third


CANCELLED = 1e-6  # a float64 output this far under float32's is 0 but for rounding: float32 holds only noise


def cancelled_layers(report: Report, precise: dict, float32: dict) -> list[str]:
    """The feature layers whose missed outputs are 0 in float64 on this input (norm under CANCELLED times the
    float32 reference's, which is then rounding alone): a weight map whose successors' gradients cancel in
    eq. 8's channel sum on this input, as a LayerNorm's do with every activation between in its linear range
    (a hardsigmoid on small values). No bound can judge float32's noise there; the static form of the case is
    refused before export (`ModelSpec.cancelled_by_norm`)."""
    layers = []
    for check in report.failures:
        layer, _, kind = check.name.rpartition(".")
        if kind not in ("gamma", "interactive_avg", "interactive_max") or layer == "imagenet" or layer in layers:
            continue
        if check.name in precise and check.name in float32 and np.linalg.norm(precise[check.name]) <= \
                CANCELLED * np.linalg.norm(float32[check.name].astype(np.float64)):
            layers.append(layer)
    return layers


def cancelled_note(spec, layers: list[str]) -> str:
    named = ", ".join(repr(spec.layer(layer).source or layer) for layer in layers)  # as --layers names them
    return (f"The weight map of {named} is 0 in float64 on this input, float32's value rounding alone: its "
            "successors' gradients cancel in eq. 8's channel sum (as a LayerNorm's do, with every activation "
            "between in its linear range). Choose other --layers, or --config next")


def as_near_as_autograd(got: dict, precise: dict, float32: dict, bounds: Bounds, magnitudes: dict) -> set[str]:
    """The outputs of `got` that `as_close_as_autograd` would pass, one by one: within AUTOGRAD_SLACK times
    float32 autograd's own distance from float64, where that rule loosens their bounds."""
    near = set()
    for name, distance in autograd_distances(precise, float32, magnitudes).items():
        held = autograd_held(bounds, distance)
        if name in got and held != bounds and compare("", {name: got[name]}, {name: precise[name]}, held,
                                                      magnitudes).passed:
            near.add(name)
    return near


def unconditioned(report: Report, precise: dict, float32: dict, near: set[str] = frozenset()) -> dict[str, float]:
    """Each missed output mapped to float32 autograd's own cosine from float64, where every miss is one that
    float32 autograd itself computes under AUTOGRAD_COSINE of float64 (sums that nearly cancel: a fuzzer's
    random network on noise, a gamma at a thousandth of its neighbours' norm, float32 autograd and our graph
    both at cosine 0.9887, ONNX Runtime 0.9800, OpenVINO 0.9827), or a feature of a layer whose gamma is
    such an output (X * gamma's mean or maximum: where gamma is float32's noise, so is the position of the
    maximum; the fuzzer's seed 1794, our graph's interactive maximum at rel L2 1.5e-3 from float64 beside a
    gamma at cosine 0.988 for autograd and graph alike); else empty. No float32 result can be judged there.
    A miss in `near` (as near float64 as float32 autograd: `as_near_as_autograd`) is explained already, and
    leaves the others to decide: the fuzzer's seed 1971 missed on a gamma that autograd computes at cosine
    0.976 beside one that both compute 6.7e-3 from float64."""
    def autograd_cosine(name: str) -> float | None:
        return cosine(float32[name], precise[name]) if name in precise and name in float32 else None

    found, derived = {}, []
    for check in report.failures:
        if check.name in near:
            continue
        cos = autograd_cosine(check.name)
        if cos is not None and cos < AUTOGRAD_COSINE:
            found[check.name] = cos
            continue
        layer, _, kind = check.name.rpartition(".")
        gamma = autograd_cosine(f"{layer}.gamma") if kind in ("interactive_avg", "interactive_max") else None
        if gamma is None or not gamma < AUTOGRAD_COSINE:
            return {}
        derived.append(f"{layer}.gamma")
    for name in derived:  # named by the gamma that decides them
        found.setdefault(name, autograd_cosine(name))
    return found


def conditioning_note(spec, report: Report, got: dict, precise: dict, float32: dict, bounds: Bounds,
                      magnitudes: dict) -> str:
    """What a miss of `got` that no float32 computation could avoid on this input says, and what works; ""
    for any other miss. Outputs as near float64 as float32 autograd (`as_near_as_autograd`) are named as
    such and leave the others to decide."""
    if not float32:
        return ""
    if cancelled := cancelled_layers(report, precise, float32):
        return cancelled_note(spec, cancelled)
    near = as_near_as_autograd(got, precise, float32, bounds, magnitudes)
    found = unconditioned(report, precise, float32, near)
    if not found:
        return ""
    explained = [check.name for check in report.failures if check.name in near]
    listing = ", ".join(f"{name} at cosine {cos:.6f}" for name, cos in found.items())
    layers = list(dict.fromkeys(name.rpartition(".")[0] for name in found))
    named = [repr(spec.layer(layer).source or layer) for layer in layers if layer != "imagenet"]  # as --layers
    choices = ([f"--layers other than {', '.join(named)}"] if named else []) + \
        (["--head features"] if "imagenet" in layers else [])
    return (f"Float32 cannot compute this on this input: float32 autograd itself is under cosine "
            f"{AUTOGRAD_COSINE:g} from float64 there ({listing}): float32 rounding decides it (sums that nearly "
            "cancel, maxima tied in float32 alone), as on random or "
            f"untrained weights{held_note(explained)}. Choose {' or '.join(choices)}, or export with --no-verify "
            "at your own judgement")


def held_note(explained: list[str]) -> str:
    if not explained:
        return ""
    return (f"; {', '.join(explained)} {'is' if len(explained) == 1 else 'are'} as near float64 as float32 "
            f"autograd ({AUTOGRAD_SLACK:g}x its distance)")


def verify_torch_graph(spec, weights, request: ExportRequest, graph,
                       log: Callable[[str], None] = log_default) -> tuple[list[Report], list[Checked]]:
    """The explicit torch graph against the float32 autograd reference, on noise and photos (a miss judged
    again against float64: `Float64Reference`); returns the reports and the reference's outputs, against
    which `verify_runtimes` holds the exported file.

    A reduced-precision graph is held to the reduced-precision bounds; its loss scale is invisible in
    its outputs, so the reference is the same for every precision.
    """
    import torch

    from interactive_trt.exporter.interactive.reference import AutogradReference

    reference = AutogradReference(spec, weights, **request.graph_options)
    exact = Float64Reference(spec, lambda: weights, request)
    bounds = bounds_for(request.precision, "torch graph")
    reports, checked = [], []
    for label, batch in verification_inputs(spec, request.verify_images):
        started = time.perf_counter()
        image = torch.from_numpy(batch)
        expected = {k: v.numpy() for k, v in reference(image).items()}
        with torch.no_grad():
            explicit = {k: v.numpy() for k, v in graph.named_outputs(image).items()}
        magnitudes = dict(reference.magnitudes)
        report = compare(f"torch graph{typed(request.precision)} vs autograd, {label}", explicit, expected, bounds,
                         magnitudes)
        item = Checked(label, batch, expected, magnitudes)
        if not report.passed:
            precise, precise_magnitudes = exact(batch)
            second = judged(report, explicit, precise, precise_magnitudes, bounds, log) or as_close_as_autograd(
                report, explicit, precise, precise_magnitudes, expected, bounds, log) or tie_judged(
                report, explicit, precise, precise_magnitudes, bounds_for(request.precision, "onnxruntime"),
                exact.near_ties(batch), log)
            if second is not None:  # the runtimes are held to float64's outputs on this input too
                report = second
                item = Checked(label, batch, {k: v.astype(np.float32) for k, v in precise.items()},
                               precise_magnitudes, exact=True, float32=expected)
            else:
                report.note = conditioning_note(spec, report, explicit, precise, expected, bounds, precise_magnitudes)
        reports.append(report)
        checked.append(item)
        log(f"  verified the torch graph on {label} in {time.perf_counter() - started:.1f}s")
    return reports, checked


def verify_runtimes(graph: OnnxGraph, checked: list[Checked], log: Callable[[str], None] = log_default,
                    exact: Float64Reference | None = None) -> list[Report]:
    """The exported file on every runtime installed here, against the reference's outputs; a miss judged
    again against `exact` (float64) once every runtime is released, where the input's outputs are not
    float64's already."""
    reports, missed = [], []
    for name, make in runtime_candidates(graph, log).items():
        started = time.perf_counter()
        with make() as runner:
            line = described(name, runner)
            if line is None:
                continue
            if line:
                log(line)
            for item in checked:
                try:
                    got = runner.infer({graph.input_name: item.batch})
                except Exception as exc:  # noqa: BLE001 - a file a runtime cannot run is the export's defect
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise VerificationError(f"{name} cannot run {graph.onnx_path} on {item.label}: {first}") from None
                bounds = bounds_for(graph.precision, name)
                report = compare(f"{name}{typed(graph.precision)} vs autograd, {item.label}", got, item.expected,
                                 bounds, item.magnitudes)
                if not report.passed and exact is not None:
                    missed.append((len(reports), item, got, bounds))
                reports.append(report)
        del runner
        return_freed_memory()
        log(f"  verified {name} on {len(checked)} inputs in {time.perf_counter() - started:.1f}s")
    precise, ties = {}, {}
    for index, item, got, bounds in missed:
        if item.exact:  # compared with float64's outputs already
            expected, magnitudes = item.expected, item.magnitudes
        else:
            if item.label not in precise:
                precise[item.label] = exact(item.batch)
            expected, magnitudes = precise[item.label]
            second = judged(reports[index], got, expected, magnitudes, bounds, log)
            if second is not None:
                reports[index] = second
                continue
        if item.label not in ties:
            ties[item.label] = exact.near_ties(item.batch)
        float32 = item.float32 if item.exact else item.expected
        again = (tie_judged(reports[index], got, expected, magnitudes, bounds, ties[item.label], log)
                 or as_close_as_autograd(reports[index], got, expected, magnitudes, float32, bounds, log))
        if again is None:
            reports[index].note = conditioning_note(exact.spec, reports[index], got, expected, float32, bounds,
                                                    magnitudes)
        else:
            reports[index] = again
    return reports


def typed(precision: str) -> str:
    return "" if precision == "fp32" else f" {precision}"
