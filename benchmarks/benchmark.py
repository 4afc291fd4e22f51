"""Throughput of every way to compute InterActive features, forward-only and forward+InterActive.

Prints one table (and writes JSON with --json): per backend, batch and mode the median time per
batch, images/s and effective TFLOP/s (exporter.flops: convolutions and transposed convolutions only),
plus the rate of a dense matrix product measured in the same run as the roofline to compare with
(fp16 on a GPU, fp32 on a CPU, where bf16's is printed too). Backends that cannot run here are listed
with the reason.

Every row is a runner (interactive_trt.runners' interface): each backend as interactive-infer makes it
(runtime.backends.make_runner, on the file exported for its precision; graph-* is the torch backend),
and the autograd peers, which are runners too; what is timed is the runner's bound call (Runner.bound:
input on the device, outputs left there, returning when they are ready).

Each backend is built, timed (the median of its rounds) and freed before the next (`--schedule
sequential`, the default). `--schedule interleaved` builds every backend's runner, then times them in
rounds that visit each one in turn, so that a machine shared with other work slows the rows alike; on
2 CPU cores it does not measure what a backend does alone: a backend's thread pools take time from the
one that follows (interleaved() pauses before each call for that).

On the CPU the process keeps the memory it frees (`--allocator keep`, the default:
interactive_trt.common.memory), so that the torch rows do not pay page faults on every call where the
runtimes reuse their arenas; before 2026-12-06 they did, and that, not the schedule, is what made the
peer's times swing (EfficientNet-B0, InterActive, 512x512: 177 ms alone and 407 ms interleaved then, 144
ms now).

    python benchmarks/benchmark.py --size 512 --batch 1,8,32      # GPU machine, issue 3's table
    python benchmarks/benchmark.py --device cpu --batch 1,4 \
        --backends autograd-plain,onnxruntime,openvino-fp32,openvino-bf16   # issue 16's CPU table
    python benchmarks/benchmark.py --batch 32 --modes interactive --kernels 12 \
        --backends autograd-plain,onnxruntime,onnxruntime+direct,onnxruntime-fp16,graph-fp16+cl  # issue 22's

A backend name may carry modifiers after "+": for ONNX Runtime `direct` (the file as exported, no
load-time form), `winograd`, `products`, `sums` (exactly these CUDA forms), `tf32` / `notf32` (the CUDA
provider's use_tf32), `heuristic` (cuDNN heuristics mode A instead of B), `fuse` (fuse_conv_bias),
`nhwc` (prefer_nhwc); for graph-* and the torch backend's modes `cl` (channels_last) and `compile`
(torch.compile). On a GPU the sequential schedule is also what fits: several ONNX Runtime sessions at
batch 32 each keep their own memory arena.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import InterActiveError
from interactive_trt.common.memory import keep_freed_memory
from interactive_trt.contracts.graph import check_image
from interactive_trt.contracts.outputs import output_names
from interactive_trt.exporter.interactive.flops import graph_flops
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.exporter.networks.weights import random_weights
from interactive_trt.exporter.onnx.export import export_model
from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest, model_spec
from interactive_trt.runners.base import Runner

CPU_BACKENDS = "autograd-fp32,autograd-plain,onnxruntime,openvino-fp32,openvino-bf16"


def timed(run, repeat: int, warmup: int, synchronize=lambda: None, best: bool = False) -> float:
    """Median (or best) seconds of `repeat` calls after `warmup` calls (the roofline's matmul)."""
    for _ in range(warmup):
        run()
    synchronize()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        synchronize()
        times.append(time.perf_counter() - started)
    return min(times) if best else statistics.median(times)


def matmul_rate(device: str, dtype=None) -> tuple[str, float]:
    import torch

    if device == "cuda":
        n, dtype = 8192, dtype or torch.float16
    else:
        n, dtype = 2048, dtype or torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    seconds = timed(lambda: a @ b, repeat=10, warmup=3, synchronize=sync, best=True)  # a roofline: the best seen
    return f"{n}^3 {str(dtype).replace('torch.', '')} matmul", 2 * n ** 3 / seconds


class Network:
    """What the autograd peers run: the network itself, not a file (a runner's model, as OnnxGraph is
    for the exported file), with one copy of its weights on the device for every peer of the run."""

    input_name = "image"

    def __init__(self, spec, weights, device: str):
        self.spec, self.weights, self.device, self.params = spec, weights, device, None

    def check_input(self, image: np.ndarray, who: str) -> None:
        check_image(image, who, spec=self.spec)

    def torch_params(self) -> dict:
        if self.params is None:
            from interactive_trt.exporter.interactive.forward import weight_tensors

            self.params = {name: (w.to(self.device), b.to(self.device))
                           for name, (w, b) in weight_tensors(self.spec, self.weights).items()}
        return self.params


class TorchPeer(Runner):
    """A peer's computation behind the runner interface: torch set up as a careful user sets it (TF32
    off, cuDNN's timed plans), the input uploaded once for a bound call, which synchronizes the GPU."""

    def __init__(self, model: Network, interactive: bool):
        super().__init__(model)
        self.interactive = interactive

    def activate_impl(self) -> None:
        import torch

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        self.torch = torch
        self.prepare()

    def prepare(self) -> None:
        """Builds what run() needs."""

    def run(self, image) -> dict:
        raise NotImplementedError

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.run(self.torch.from_numpy(image).to(self.model.device))
        return {name: value.detach().float().cpu().numpy() for name, value in outputs.items()}

    def bound_impl(self, image: np.ndarray):
        on_device = self.torch.from_numpy(image).to(self.model.device)
        synchronize = self.torch.cuda.synchronize if self.model.device == "cuda" else (lambda: None)

        def call() -> None:
            self.run(on_device)
            synchronize()

        return call

    def deactivate_impl(self) -> None:
        pass


class Autograd(TorchPeer):
    """The PyTorch autograd reference, fp32 or under fp16 autocast (what a user without us would run)."""

    name = "autograd"

    def __init__(self, model: Network, interactive: bool, autocast: bool = False):
        super().__init__(model, interactive)
        self.autocast = autocast

    def prepare(self) -> None:
        from interactive_trt.exporter.interactive.reference import AutogradReference

        self.reference = AutogradReference(self.model.spec, self.model.weights, interactive=self.interactive,
                                           device=self.model.device)
        self.reference.params = self.model.torch_params()

    def run(self, image) -> dict:
        torch = self.torch
        with torch.autocast(self.model.device, dtype=torch.float16, enabled=self.autocast):
            return self.reference(image)


class PlainAutograd(TorchPeer):
    """The peer: what a careful PyTorch user writes without us. The network's forward pass, one
    torch.autograd.grad from the seed to every successor's pre-activation (plus the trivial one of the
    ImageNet head), gamma as the channel sum spread by an all-ones transposed convolution; the same
    outputs as the exported graph ('last', p = 2, both heads). Forward-only: the plain forward pass.
    """

    name = "autograd-plain"

    def __init__(self, model: Network, interactive: bool, p: float = 2.0):
        super().__init__(model, interactive)
        spec = model.spec
        self.p = p
        routes = {t: spec.successor_routes(t) for t in spec.feature_layers}
        if any(route for group in routes.values() for _, route in group):
            raise InterActiveError(f"{spec.name}: the plain-autograd peer does not map gamma through channel "
                                   "bookkeeping (Split, Slice, Concat, shuffle)")
        self.successors = {t: [s for s, _ in group] for t, group in routes.items()}
        self.successor_names = sorted({s.name for group in self.successors.values() for s in group})
        self.output_names = output_names(spec, "both", interactive)

    def prepare(self) -> None:
        self.params = self.model.torch_params()

    def spread(self, score, successor, x):
        """The score summed over each group's output channels and spread back over its windows (grouped,
        strided, dilated and 'same'-padded successors: rows no window reaches get zero, extra ones are cut)."""
        torch, F = self.torch, self.torch.nn.functional
        groups, window = successor.groups, successor.window
        summed = score.unflatten(1, (groups, score.shape[1] // groups)).sum(dim=2)
        top, left, _, _ = successor.pad4
        ones = torch.ones(groups, 1, *window, device=x.device)
        strides = successor.strides
        natural = [step * (n - 1) + k - 2 * pad
                   for n, k, pad, step in zip(summed.shape[2:], successor.extent, (top, left), strides)]
        extra = [min(max(size - n, 0), step - 1) for size, n, step in zip(x.shape[2:], natural, strides)]
        gamma = F.conv_transpose2d(summed, ones, stride=strides, padding=(top, left), output_padding=extra,
                                   groups=groups, dilation=successor.dilation)
        gamma = F.pad(gamma, (0, x.shape[3] - gamma.shape[3], 0, x.shape[2] - gamma.shape[2]))
        if 1 < groups < x.shape[1]:
            gamma = gamma.repeat_interleave(x.shape[1] // groups, dim=1)
        return gamma

    def run(self, image) -> dict:
        return dict(zip(self.output_names, self.outputs(image), strict=True))

    def outputs(self, image) -> list:
        from interactive_trt.exporter.interactive.forward import run_forward

        torch, spec = self.torch, self.model.spec
        logits_name = spec.head_logits
        if not self.interactive:  # the class scores as the network computes them (a classifier after the pool)
            from interactive_trt.exporter.interactive.forward import class_scores, scored_map

            with torch.inference_mode():
                acts, _ = run_forward(spec, self.params, image, list(spec.feature_layers) + [scored_map(spec)])
                outputs = [f(acts[t]) for t in spec.feature_layers for f in (self.average, self.peak)]
                return outputs + [class_scores(spec, self.params, acts)]
        F = torch.nn.functional
        with torch.enable_grad():
            image = image.detach().requires_grad_(True)
            targets = list(spec.feature_layers) + self.successor_names + [spec.last_layer, logits_name]
            acts, pre = run_forward(spec, self.params, image, targets)
            loss = acts[spec.last_layer].mean(dim=(2, 3)).pow(self.p).sum()
            scores = dict(zip(self.successor_names,
                              torch.autograd.grad(loss, [pre[name] for name in self.successor_names],
                                                  retain_graph=True)))
            logits = pre[logits_name]
            scored = spec.head_successor().name if spec.head_pooled else logits_name  # gamma's layer score
            (head_score,) = torch.autograd.grad(F.relu(logits).mean(dim=(2, 3)).pow(self.p).sum(), pre[scored])
        outputs = []
        with torch.no_grad():
            for t in spec.feature_layers:
                x = acts[t].detach()
                gamma = 0
                for successor in self.successors[t]:
                    gamma = gamma + self.spread(scores[successor.name], successor, x)
                weighted = x * gamma
                outputs += [gamma, self.average(weighted), self.peak(weighted), self.average(x), self.peak(x)]
            gamma = head_score.sum(dim=1, keepdim=True)
            mean = gamma.mean(dim=(2, 3), keepdim=True)
            gamma = torch.where(mean > 0, gamma / torch.where(mean > 0, mean, torch.ones_like(mean)),
                                torch.ones_like(gamma))
            penultimate = acts[spec.head_input].detach()
            if spec.head_pooled:  # the head of the pooled map, as the network computes its scores
                from interactive_trt.exporter.interactive.forward import apply_head

                original = apply_head(spec, self.params, penultimate.mean(dim=(2, 3), keepdim=True)).flatten(1)
                rescored = apply_head(spec, self.params, (penultimate * gamma).mean(dim=(2, 3), keepdim=True))
                outputs += [original, rescored.flatten(1), gamma]
                return outputs
            weight, bias = self.params[logits_name]
            if spec.layer(logits_name).commutes_with_mean:  # the classifier of the pooled map
                rescored = F.conv2d((penultimate * gamma).mean(dim=(2, 3), keepdim=True), weight, bias)
            else:
                rescored = F.conv2d(penultimate * gamma, weight, bias)
                rescored = F.relu(rescored) if spec.layer(logits_name).relu else rescored
            outputs += [self.average(acts[logits_name].detach()), self.average(rescored), gamma]
        return outputs

    @staticmethod
    def average(x):
        return x.mean(dim=(2, 3))

    @staticmethod
    def peak(x):
        return x.amax(dim=(2, 3))


# benchmark modifiers of ONNX Runtime backends: CUDA provider options
CUDA_MODIFIERS = {"tf32": ("use_tf32", 1), "notf32": ("use_tf32", 0), "heuristic": ("cudnn_conv_algo_search", "HEURISTIC"),
                  "fuse": ("fuse_conv_bias", 1), "nhwc": ("prefer_nhwc", 1)}
TORCH_MODIFIERS = ("cl", "compile")


def onnxruntime_options(modifiers) -> dict:
    """interactive-infer's ONNX Runtime runner unless modified: "direct" (no load-time form), the CUDA
    forms named (forms.cuda.FORMS) and provider options (CUDA_MODIFIERS), for measurements."""
    from interactive_trt.forms.cuda import FORMS

    unknown = [m for m in modifiers if m not in CUDA_MODIFIERS and m not in FORMS and m != "direct"]
    if unknown:
        raise InterActiveError(f"unknown ONNX Runtime modifier {unknown[0]!r}")
    return {"convolutions": "direct" if "direct" in modifiers else "auto",
            "cuda_forms": ",".join(m for m in modifiers if m in FORMS) or None,
            "cuda_overrides": dict(CUDA_MODIFIERS[m] for m in modifiers if m in CUDA_MODIFIERS)}


def torch_options(modifiers) -> dict:
    unknown = [m for m in modifiers if m not in TORCH_MODIFIERS]
    if unknown:
        raise InterActiveError(f"unknown torch graph modifier {unknown[0]!r} ({', '.join(TORCH_MODIFIERS)})")
    return {"channels_last": "cl" in modifiers, "compile": "compile" in modifiers}


def export_variant(folder: Path, model: str, width_divisor: int, precision: str, interactive: bool):
    if model.endswith(".onnx"):  # an imported network, with the file's own weights
        request = ExportRequest(model=IMPORTED, source=Path(model), out=folder, verify=False, precision=precision,
                                interactive=interactive)
    else:
        request = ExportRequest(model=model, weights="random", width_divisor=width_divisor, out=folder, verify=False,
                                precision=precision, interactive=interactive)
    return export_model(request, log=lambda m: None)


def network(model: str, width_divisor: int):
    """A built-in with random weights, or an ONNX file's network with its own."""
    if model.endswith(".onnx"):
        from interactive_trt.exporter.networks.onnx_import import import_onnx

        imported = import_onnx(Path(model))
        return imported.spec, imported.weights
    spec = model_spec(model, width_divisor)
    return spec, random_weights(spec, seed=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vgg19", help="any built-in: vgg19, squeezenet1.1, efficientnet_lite0, "
                        "resnet18, resnet50 (random weights: the arithmetic is the same), or an ONNX file to "
                        "import (benchmarks/part3_models.py writes EfficientNet-B0 and ConvNeXt-T)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--width-divisor", type=int, default=1)
    parser.add_argument("--backends", default=None, help="any of autograd-plain, autograd-fp32/fp16 (the "
                        "reference), graph-fp32/fp16, onnxruntime[-fp16|-fp16-backward], openvino-fp32/bf16, "
                        "tensorrt-fp32/fp16, with +modifiers (above; +direct: without the load-time forms) "
                        f"(default on cuda: autograd-fp32,autograd-fp16,graph-fp16,onnxruntime,tensorrt-fp32,"
                        f"tensorrt-fp16; on cpu: {CPU_BACKENDS})")
    parser.add_argument("--modes", default="forward,interactive", help="forward,interactive (both, the default) "
                        "or either one")
    parser.add_argument("--schedule", choices=["interleaved", "sequential"], default="sequential",
                        help="time the backends one after another, each freed before the next is built "
                        "(the default), or in rounds that visit each")
    parser.add_argument("--kernels", type=int, default=0, help="on cuda, at the largest batch: the N GPU kernels "
                        "that take the most time in one call of each backend (torch.profiler, which sees ONNX "
                        "Runtime's kernels too)")
    parser.add_argument("--allocator", choices=["keep", "system"], default="keep",
                        help="keep: glibc keeps freed memory in the process, so that the torch rows do not pay "
                        "page faults on every call (the default; interactive_trt.common.memory); system: glibc's "
                        "own thresholds")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.backends is None:
        args.backends = CPU_BACKENDS if args.device == "cpu" else ("autograd-fp32,autograd-fp16,graph-fp16,"
                                                                   "onnxruntime,tensorrt-fp32,tensorrt-fp16")
    kept = args.allocator == "keep" and keep_freed_memory()
    batches = [int(b) for b in args.batch.split(",")]
    spec, weights = network(args.model, args.width_divisor)
    size = args.size
    flops = {mode: graph_flops(InterActiveGraph(spec, weights, interactive=mode == "interactive"), size, size).total
             for mode in ("forward", "interactive")}
    roofline_name, roofline = matmul_rate(args.device)
    print(f"# {spec.name} at {size}x{size} on {args.device}; {roofline_name}: {roofline / 1e12:.2f} TFLOP/s")
    print(f"# allocator: {'freed memory kept in the process' if kept else 'the system malloc as it is'}")
    if args.device == "cpu":
        import torch

        name, rate = matmul_rate("cpu", torch.bfloat16)
        print(f"# {name}: {rate / 1e12:.2f} TFLOP/s")
    print(f"# GFLOP per image: forward {flops['forward'] / 1e9:.1f}, forward+InterActive "
          f"{flops['interactive'] / 1e9:.1f}")
    rows, skipped = [], []
    workdir = Path(tempfile.mkdtemp(prefix="interactive-bench-"))
    exports = {}

    def exported(precision, mode):
        if (precision, mode) not in exports:
            exports[(precision, mode)] = export_variant(workdir / f"{precision}-{mode}", args.model, args.width_divisor,
                                                        precision, mode == "interactive")
        return exports[(precision, mode)]

    peers = Network(spec, weights, args.device)

    def make(name, mode, batch):
        """The runner a backend name stands for (not yet active): the peers on the network, every other
        backend as interactive-infer makes it (make_runner) on the file exported for its precision."""
        from interactive_trt.runtime.backends import make_runner
        from interactive_trt.runtime.inference.model import load_model

        interactive = mode == "interactive"
        backend, modifiers = parse_backend(name)
        if backend == "autograd-plain":
            return PlainAutograd(peers, interactive)
        if backend.startswith("autograd"):
            if backend.endswith("fp16") and args.device != "cuda":
                raise InterActiveError("fp16 autocast is a GPU mode")
            return Autograd(peers, interactive, autocast=backend.endswith("fp16"))
        precision = backend.removeprefix("onnxruntime").removeprefix("-") or "fp32"
        if backend.startswith("graph"):
            return make_runner("torch", load_model(exported(backend.split("-", 1)[1], mode)[0]), device=args.device,
                               keep_memory=args.allocator == "keep", **torch_options(modifiers))
        if backend.startswith("onnxruntime"):
            return make_runner("onnxruntime", load_model(exported(precision, mode)[0]), device=args.device,
                               **onnxruntime_options(modifiers))
        if backend.startswith("openvino"):
            if args.device != "cpu":
                raise InterActiveError("OpenVINO runs on the CPU (--device cpu)")
            return make_runner("openvino", load_model(exported("fp32", mode)[0]), device="cpu",
                               precision="bf16" if backend.endswith("bf16") else "exported",
                               convolutions="direct" if "direct" in modifiers else "auto")
        # an engine per batch, tuned for exactly that batch, as a deployment that always runs it would build
        return make_runner("tensorrt", load_model(exported(backend.rsplit("-", 1)[1], mode)[0]), device="cuda",
                           max_batch=batch, opt_batch=batch, batch_size=batch,
                           log=lambda m: print(f"  {m}", file=sys.stderr))

    names = args.backends.split(",")

    def save():
        """The JSON so far, written atomically after every row: a run cut short keeps what it measured."""
        if args.json:
            temporary = args.json.with_name(args.json.name + ".partial")
            temporary.write_text(json.dumps({"model": spec.name, "size": size, "device": args.device,
                                             "freed_memory_kept": kept,
                                             "matmul": roofline_name, "matmul_tflops": roofline / 1e12, "rows": rows,
                                             "skipped": skipped}, indent=2))
            temporary.replace(args.json)

    def record(name, mode, batch, seconds, best):
        rate = flops[mode] * batch / seconds
        rows.append({"backend": name, "mode": mode, "batch": batch, "ms": 1e3 * seconds, "best_ms": 1e3 * best,
                     "images_per_s": batch / seconds, "tflops": rate / 1e12, "of_matmul": rate / roofline})
        print(f"  {name:28s} {mode:11s} batch {batch:3d}: {1e3 * seconds:9.2f} ms (best {1e3 * best:.2f})",
              file=sys.stderr)

    def skip(name, mode, exc):
        if (name, mode) not in {(b, m) for b, m, _ in skipped}:
            skipped.append((name, mode, (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]))
        print(f"  {name:28s} {mode:11s}: not run ({skipped[-1][2]})", file=sys.stderr)

    def built(name, mode, images):
        """An active runner and its bound call on `images`, or None (the failure is a row)."""
        runner = None
        try:
            runner = make(name, mode, len(images)).activate()
            return runner, runner.bound({"image": images})
        except Exception as exc:  # noqa: BLE001 - one backend's failure (ORT's own types, out of memory) is a row
            if runner is not None:
                runner.deactivate()
            skip(name, mode, exc)
            return None

    inputs = {batch: np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
              for batch in batches}
    for mode in args.modes.split(","):
        if args.schedule == "sequential":  # one runner on the device at a time
            for name in names:
                for batch in batches:
                    made = built(name, mode, inputs[batch])
                    if made is None:
                        continue
                    runner, call = made
                    try:
                        ((seconds, best),) = interleaved({name: call}, args.repeat, args.warmup).values()
                        record(name, mode, batch, seconds, best)
                        if args.kernels and batch == max(batches):
                            rows[-1]["kernels"] = kernel_table(call, args.kernels)
                    except Exception as exc:  # noqa: BLE001 - out of memory at one batch is a row too
                        skip(name, mode, exc)
                    runner.deactivate()
                    del runner, call, made
                    release_device_memory(args.device)
                    save()
            continue
        for batch in batches:
            made = {name: pair for name in names if (pair := built(name, mode, inputs[batch])) is not None}
            timings = interleaved({name: call for name, (_, call) in made.items()}, args.repeat, args.warmup,
                                  settle=SETTLE_S if args.device == "cpu" else 0.0)
            for name, (seconds, best) in timings.items():
                record(name, mode, batch, seconds, best)
            for runner, _ in made.values():
                runner.deactivate()
            del made
            gc.collect()
            save()
    rows.sort(key=lambda row: (row["batch"], names.index(row["backend"]), row["mode"]))
    print()
    print("| backend | mode | batch | ms / batch (median) | best | images/s | TFLOP/s | of matmul |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['backend']} | {row['mode']} | {row['batch']} | {row['ms']:.2f} | {row['best_ms']:.2f} | "
              f"{row['images_per_s']:.1f} | {row['tflops']:.2f} | {100 * row['of_matmul']:.0f}% |")
    for backend, mode, reason in skipped:
        print(f"- {backend} {mode}: not run ({reason})")
    by_key = {(r["backend"], r["mode"], r["batch"]): r for r in rows}
    print()
    for batch in batches:
        for label, value in ratios(by_key, batch, args.device):
            print(f"- {label}: {value}")
    save()
    return 0


def parse_backend(name: str) -> tuple[str, tuple[str, ...]]:
    """'onnxruntime-fp16+direct+tf32' -> ('onnxruntime-fp16', ('direct', 'tf32')); the older spelling
    'onnxruntime-direct' and 'openvino-fp32-direct' reads as '+direct'."""
    base, *modifiers = name.split("+")
    if base.endswith("-direct"):
        base, modifiers = base.removesuffix("-direct"), modifiers + ["direct"]
    return base, tuple(modifiers)


def release_device_memory(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def kernel_table(call, top: int) -> list[dict]:
    """The `top` GPU kernels by time in one call, from CUPTI through torch.profiler (it records every
    kernel of the process, ONNX Runtime's too), with each one's share of all kernel time."""
    from torch.profiler import ProfilerActivity, profile

    call()
    with profile(activities=[ProfilerActivity.CUDA]) as trace:
        call()
    totals: dict[str, list] = {}
    for event in trace.events():
        if str(getattr(event, "device_type", "")).endswith("CUDA") and event.device_time_total:  # kernels
            entry = totals.setdefault(event.name, [0.0, 0])
            entry[0] += event.device_time_total
            entry[1] += 1
    total = sum(us for us, _ in totals.values()) or 1.0
    table = [{"kernel": name[:110], "ms": us / 1e3, "calls": calls, "share": us / total}
             for name, (us, calls) in sorted(totals.items(), key=lambda item: -item[1][0])[:top]]
    print(f"    kernels: {total / 1e3:.2f} ms in all", file=sys.stderr)
    for row in table:
        print(f"    {row['ms']:8.2f} ms {100 * row['share']:5.1f}% x{row['calls']:<4d} {row['kernel']}", file=sys.stderr)
    return table


SETTLE_S = 1.0  # pause before each timed call of an interleaved round, see interleaved()


def interleaved(calls: dict, repeat: int, warmup: int, settle: float = 0.0) -> dict:
    """(median, best) seconds per bound call (Runner.bound: it returns when its outputs are ready), timed
    in `repeat` rounds that visit every call once each.

    `settle` seconds pass before each timed call (the CPU's rounds): the thread pools of the backend
    that ran last (ONNX Runtime's, OpenMP's) keep spinning for a while after their call returns, and on
    2 cores they took the next backend's time. Measured 2026-12-06 on EfficientNet-B0 at 512x512:
    without the pause, OpenVINO's forward pass took 48-50 ms after ONNX Runtime's, 34 ms alone."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {key: [] for key in calls}
    for _ in range(repeat):
        for key, call in calls.items():
            if settle:
                time.sleep(settle)
            started = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - started)
    return {key: (statistics.median(values), min(values)) for key, values in times.items()}


def ratios(by_key, batch, device="cuda"):
    """Issue 3's bars (GPU) and issue 16's (CPU) at one batch, where both sides of a ratio were measured."""
    def ms(backend, mode="interactive"):
        row = by_key.get((backend, mode, batch))
        return row["ms"] if row else None

    def best(backend, mode="interactive"):
        row = by_key.get((backend, mode, batch))
        return row["best_ms"] if row else None

    if device == "cpu":
        return cpu_ratios(ms, best, batch)

    checks = [(f"TensorRT fp16 vs autograd fp32, batch {batch} (bar >= 5x)", ms("autograd-fp32"), ms("tensorrt-fp16")),
              (f"TensorRT fp16 vs autograd fp16 autocast, batch {batch} (bar >= 2x)", ms("autograd-fp16"),
               ms("tensorrt-fp16")),
              (f"InterActive / forward-only, TensorRT fp16, batch {batch} (bar <= 2.1x)", ms("tensorrt-fp16"),
               ms("tensorrt-fp16", "forward")),
              (f"InterActive / forward-only, ONNX Runtime, batch {batch}", ms("onnxruntime"),
               ms("onnxruntime", "forward"))]
    out = []
    for label, numerator, denominator in checks:
        if numerator is not None and denominator is not None:
            out.append((label, f"{numerator / denominator:.2f}x"))
    row = by_key.get(("tensorrt-fp16", "interactive", batch))
    if row:
        out.append((f"TensorRT fp16 share of the matmul rate, batch {batch} (bar >= 40%)", f"{100 * row['of_matmul']:.0f}%"))
    return out + gpu_ratios(by_key, batch)


def gpu_ratios(by_key, batch):
    """Issue 22's goals, for every variant measured: ONNX Runtime CUDA float32 against the plain-autograd
    peer (>= 1x); its reduced-precision files and the torch graph in fp16 against autocast (>= 1.5x)."""
    out = []
    peer, autocast = (by_key.get((name, "interactive", batch)) for name in ("autograd-plain", "autograd-fp16"))
    for (name, mode, size), row in by_key.items():
        if mode != "interactive" or size != batch:
            continue
        base, _ = parse_backend(name)
        if base == "onnxruntime" and peer:
            out.append((f"{name} vs plain autograd fp32, batch {batch} (goal >= 1x)", f"{peer['ms'] / row['ms']:.2f}x"))
        elif base in ("onnxruntime-fp16", "onnxruntime-fp16-backward", "graph-fp16") and autocast:
            out.append((f"{name} vs autograd fp16 autocast, batch {batch} (goal >= 1.5x)",
                        f"{autocast['ms'] / row['ms']:.2f}x"))
    return out


def cpu_ratios(ms, best, batch):
    """Issue 16's goals: OpenVINO's lead over ONNX Runtime, InterActive's cost over the same runtime's
    forward pass, and the lead over the plain-autograd peer (fastest fp32 backend, and reduced
    precision); from the medians, and from the best rounds (the least disturbed by other work)."""
    def ratio(numerator, denominator):
        return f"{ms(*numerator) / ms(*denominator):.2f}x (best rounds {best(*numerator) / best(*denominator):.2f}x)"

    out = []
    fp32 = [b for b in ("onnxruntime", "openvino-fp32") if ms(b)]
    for backend in fp32 + [b for b in ("openvino-bf16",) if ms(b)]:
        if ms(backend, "forward"):
            out.append((f"InterActive / forward-only, {backend}, batch {batch} (goal <= 1.95x)",
                        ratio((backend,), (backend, "forward"))))
    if ms("onnxruntime") and ms("openvino-fp32"):
        out.append((f"OpenVINO fp32 vs ONNX Runtime, InterActive, batch {batch} (goal >= 1.1x)",
                    ratio(("onnxruntime",), ("openvino-fp32",))))
    if ms("autograd-plain") and fp32:
        fastest = min(fp32, key=ms)
        out.append((f"{fastest} (fastest fp32) vs plain autograd, InterActive, batch {batch} (goal >= 1.7x)",
                    ratio(("autograd-plain",), (fastest,))))
        if ms("openvino-bf16"):
            out.append((f"openvino-bf16 vs plain autograd, InterActive, batch {batch} (goal >= 2x)",
                        ratio(("autograd-plain",), ("openvino-bf16",))))
    return out


if __name__ == "__main__":
    sys.exit(main())
