"""Throughput of every way to compute InterActive features, forward-only and forward+InterActive.

Prints one table (and writes JSON with --json): per backend, batch and mode the median time per
batch, images/s and effective TFLOP/s (exporter.flops: convolutions and transposed convolutions only),
plus the rate of a dense matrix product measured in the same run as the roofline to compare with
(fp16 on a GPU, fp32 on a CPU, where bf16's is printed too). Backends that cannot run here are listed
with the reason.

Per batch size and mode, every backend's runner is built, then timed in rounds that visit each one in
turn, so that a machine shared with other work slows the rows compared alike (each row is the median
of its rounds); the runners are freed before the next mode (all at once do not fit 24 GB at batch 4).

    python benchmarks/benchmark.py --size 512 --batch 1,8,32      # GPU machine, issue 3's table
    python benchmarks/benchmark.py --device cpu --batch 1,4 \
        --backends autograd-plain,onnxruntime,openvino-fp32,openvino-bf16   # issue 16's CPU table
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
from interactive_trt.exporter.onnx.export import ExportRequest, export_model, model_spec
from interactive_trt.exporter.interactive.flops import graph_flops
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.exporter.networks.weights import random_weights

CPU_BACKENDS = "autograd-fp32,autograd-plain,onnxruntime,openvino-fp32,openvino-bf16"


def timed(run, repeat: int, warmup: int, synchronize=lambda: None, best: bool = False) -> float:
    """Median (or best) seconds of `repeat` calls after `warmup` calls."""
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


class Autograd:
    """The PyTorch autograd reference, fp32 or under fp16 autocast (what a user without us would run)."""

    def __init__(self, spec, weights, device, interactive, autocast, params=None):
        import torch

        from interactive_trt.exporter.interactive.reference import AutogradReference

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        self.torch, self.device, self.autocast = torch, device, autocast
        self.reference = AutogradReference(spec, weights, interactive=interactive, device=device)
        if params is not None:  # one copy of the weights for every torch runner of the run
            self.reference.params = params

    def prepare(self, batch: np.ndarray):
        self.image = self.torch.from_numpy(batch).to(self.device)

    def __call__(self):
        torch = self.torch
        with torch.autocast(self.device, dtype=torch.float16, enabled=self.autocast):
            return self.reference(self.image)

    def synchronize(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def torch_params(spec, weights, device):
    from interactive_trt.exporter.interactive.forward import weight_tensors

    return {name: (w.to(device), b.to(device)) for name, (w, b) in weight_tensors(spec, weights).items()}


class PlainAutograd:
    """The peer: what a careful PyTorch user writes without us. The network's forward pass, one
    torch.autograd.grad from the seed to every successor's pre-activation (plus the trivial one of the
    ImageNet head), gamma as the channel sum spread by an all-ones transposed convolution; the same
    outputs as the exported graph ('last', p = 2, both heads). Forward-only: the plain forward pass.
    """

    def __init__(self, spec, weights, device, interactive, p: float = 2.0, params=None):
        import torch

        self.torch, self.device, self.spec, self.interactive, self.p = torch, device, spec, interactive, p
        self.params = params if params is not None else torch_params(spec, weights, device)
        self.successors = {t: spec.successors(t) for t in spec.feature_layers}
        self.successor_names = sorted({s.name for group in self.successors.values() for s in group})

    def prepare(self, batch: np.ndarray):
        self.image = self.torch.from_numpy(batch).to(self.device)

    def spread(self, score, successor, x):
        """The score summed over each group's output channels and spread back over its windows (grouped,
        strided and 'same'-padded successors: rows no window reaches get zero, extra ones are cut)."""
        torch, F = self.torch, self.torch.nn.functional
        groups, k = successor.groups, successor.kernel
        summed = score.unflatten(1, (groups, score.shape[1] // groups)).sum(dim=2)
        top, left, _, _ = successor.pad4
        ones = torch.ones(groups, 1, k, k, device=x.device)
        stride = successor.stride
        natural = [stride * (n - 1) + k - 2 * pad for n, pad in zip(summed.shape[2:], (top, left))]
        extra = [min(max(size - n, 0), stride - 1) for size, n in zip(x.shape[2:], natural)]
        gamma = F.conv_transpose2d(summed, ones, stride=stride, padding=(top, left), output_padding=extra,
                                   groups=groups)
        gamma = F.pad(gamma, (0, x.shape[3] - gamma.shape[3], 0, x.shape[2] - gamma.shape[2]))
        if 1 < groups < x.shape[1]:
            gamma = gamma.repeat_interleave(x.shape[1] // groups, dim=1)
        return gamma

    def __call__(self):
        from interactive_trt.exporter.interactive.forward import run_forward

        torch, spec = self.torch, self.spec
        logits_name = spec.head_logits
        if not self.interactive:
            with torch.inference_mode():
                acts, _ = run_forward(spec, self.params, self.image, list(spec.feature_layers) + [logits_name])
                outputs = [f(acts[t]) for t in spec.feature_layers for f in (self.average, self.peak)]
                return outputs + [self.average(acts[logits_name])]
        F = torch.nn.functional
        with torch.enable_grad():
            image = self.image.detach().requires_grad_(True)
            targets = list(spec.feature_layers) + self.successor_names + [spec.last_layer, logits_name]
            acts, pre = run_forward(spec, self.params, image, targets)
            loss = acts[spec.last_layer].mean(dim=(2, 3)).pow(self.p).sum()
            scores = dict(zip(self.successor_names,
                              torch.autograd.grad(loss, [pre[name] for name in self.successor_names],
                                                  retain_graph=True)))
            logits = pre[logits_name]
            (head_score,) = torch.autograd.grad(F.relu(logits).mean(dim=(2, 3)).pow(self.p).sum(), logits)
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
            weight, bias = self.params[logits_name]
            rescored = F.conv2d(acts[spec.head_penultimate].detach() * gamma, weight, bias)
            rescored = F.relu(rescored) if spec.layer(logits_name).relu else rescored
            outputs += [self.average(acts[logits_name].detach()), self.average(rescored), gamma]
        return outputs

    @staticmethod
    def average(x):
        return x.mean(dim=(2, 3))

    @staticmethod
    def peak(x):
        return x.amax(dim=(2, 3))

    def synchronize(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


class ExplicitGraph:
    """The exported graph's own PyTorch module (no autograd), in its compute precision."""

    def __init__(self, spec, weights, device, interactive, precision):
        import torch

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        self.torch, self.device = torch, device
        self.graph = InterActiveGraph(spec, weights, interactive=interactive, precision=precision).eval().to(device)

    def prepare(self, batch: np.ndarray):
        self.image = self.torch.from_numpy(batch).to(self.device)

    def __call__(self):
        with self.torch.inference_mode():
            return self.graph(self.image)

    def synchronize(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


class OnnxRuntime:
    """interactive-infer's session: on the CPU the graph's CPU forms unless `convolutions` is "direct"."""

    def __init__(self, onnx_path: Path, device: str, convolutions: str = "auto"):
        import onnxruntime as ort

        from interactive_trt.runtime.backends.onnxrt import choose_providers, session_source

        options = ort.SessionOptions()
        options.log_severity_level = 3
        providers = choose_providers(device)
        source, _ = session_source(onnx_path, providers, convolutions)
        self.session = ort.InferenceSession(source, options, providers=providers)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.ort = ort

    def prepare(self, batch: np.ndarray):
        """Inputs and outputs stay on the device, as they do for the other backends."""
        self.binding = self.session.io_binding()
        value = self.ort.OrtValue.ortvalue_from_numpy(batch, self.device, 0)
        self.binding.bind_ortvalue_input("image", value)
        for output in self.session.get_outputs():
            self.binding.bind_output(output.name, self.device)
        self.value = value

    def __call__(self):
        self.session.run_with_iobinding(self.binding)

    def synchronize(self):
        pass  # run_with_iobinding returns when the outputs are ready


class OpenVino:
    """interactive-infer's OpenVINO graph (the exporter's loader), its infer request timed alone; the
    input is shared, not copied, and the outputs stay in OpenVINO's buffers (as ONNX Runtime's bound ones)."""

    def __init__(self, onnx_path: Path, precision: str, convolutions: str = "auto"):
        from interactive_trt.exporter.onnx.openvino import CompiledGraph

        self.graph = CompiledGraph(onnx_path, "bf16" if precision == "bf16" else "exported",
                                   convolutions=convolutions)

    def prepare(self, batch: np.ndarray):
        self.batch = batch

    def __call__(self):
        self.graph.request.infer([self.batch], share_inputs=True)

    def synchronize(self):
        pass  # infer() returns when the outputs are ready


class TensorRT:
    """interactive-infer's TensorRT runner at the benchmark's size, timed on execute_async_v3 alone (inputs
    already on the GPU, like the other backends). Each batch gets its own engine, tuned for exactly that
    batch (its optimization profile's opt and max shapes), as a deployment that always runs it would build."""

    def __init__(self, onnx_path: Path, size: int):
        from interactive_trt.exporter.tensorrt.cuda import call, cudart

        self.onnx_path, self.size, self.runner, self.batch = onnx_path, size, None, None
        self.call, self.cudart = call, cudart()

    def _runner_for(self, batch: int):
        from interactive_trt.runtime.backends import make_runner
        from interactive_trt.runtime.inference.model import load_model

        if self.runner is not None:
            self.runner.deactivate()  # one batch's engine and buffers on the GPU at a time
        self.runner = make_runner("tensorrt", load_model(self.onnx_path), device="cuda", max_batch=batch,
                                  opt_batch=batch, batch_size=batch,
                                  log=lambda m: print(f"  {m}", file=sys.stderr)).activate()
        self.slot, self.batch = self.runner.slot(self.size, self.size), batch

    def prepare(self, batch: np.ndarray):
        if batch.shape[0] != self.batch:
            self._runner_for(batch.shape[0])
        self.slot.run(batch, self.runner.stream)  # uploads the batch, sets the shape and the activation memory

    def __call__(self):
        self.slot.enqueue(self.runner.stream)

    def synchronize(self):
        self.call("cudaStreamSynchronize", self.cudart.cudaStreamSynchronize(self.runner.stream))


def export_variant(folder: Path, model: str, width_divisor: int, precision: str, interactive: bool):
    request = ExportRequest(model=model, weights="random", width_divisor=width_divisor, out=folder, verify=False,
                            precision=precision, interactive=interactive)
    return export_model(request, log=lambda m: None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vgg19", help="any built-in: vgg19, squeezenet1.1, efficientnet_lite0, "
                        "resnet18, resnet50 (random weights: the arithmetic is the same)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--width-divisor", type=int, default=1)
    parser.add_argument("--backends", default=None, help="any of autograd-plain, autograd-fp32/fp16 (the "
                        "reference), graph-fp32/fp16, onnxruntime, openvino-fp32/bf16, tensorrt-fp32/fp16; "
                        "onnxruntime and openvino-* with -direct appended: without the CPU's Winograd form "
                        f"(default on cuda: autograd-fp32,autograd-fp16,graph-fp16,onnxruntime,tensorrt-fp32,"
                        f"tensorrt-fp16; on cpu: {CPU_BACKENDS})")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.backends is None:
        args.backends = CPU_BACKENDS if args.device == "cpu" else ("autograd-fp32,autograd-fp16,graph-fp16,"
                                                                   "onnxruntime,tensorrt-fp32,tensorrt-fp16")
    batches = [int(b) for b in args.batch.split(",")]
    spec = model_spec(args.model, args.width_divisor)
    weights = random_weights(spec, seed=0)
    size = args.size
    flops = {mode: graph_flops(InterActiveGraph(spec, weights, interactive=mode == "interactive"), size, size).total
             for mode in ("forward", "interactive")}
    roofline_name, roofline = matmul_rate(args.device)
    print(f"# {spec.name} at {size}x{size} on {args.device}; {roofline_name}: {roofline / 1e12:.2f} TFLOP/s")
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

    params = {}

    def shared_params():
        if not params:
            params.update(torch_params(spec, weights, args.device))
        return params

    def make(backend, mode):
        interactive = mode == "interactive"
        if backend == "autograd-plain":
            return PlainAutograd(spec, weights, args.device, interactive, params=shared_params())
        if backend.startswith("autograd"):
            if backend.endswith("fp16") and args.device != "cuda":
                raise InterActiveError("fp16 autocast is a GPU mode")
            return Autograd(spec, weights, args.device, interactive, autocast=backend.endswith("fp16"),
                            params=shared_params())
        if backend.startswith("graph"):
            return ExplicitGraph(spec, weights, args.device, interactive, backend.rsplit("-", 1)[1])
        convolutions = "direct" if backend.endswith("-direct") else "auto"
        backend = backend.removesuffix("-direct")
        if backend == "onnxruntime":
            return OnnxRuntime(exported("fp32", mode)[0], args.device, convolutions)
        if backend.startswith("openvino"):
            if args.device != "cpu":
                raise InterActiveError("OpenVINO runs on the CPU (--device cpu)")
            return OpenVino(exported("fp32", mode)[0], backend.rsplit("-", 1)[1], convolutions)
        path, _ = exported(backend.rsplit("-", 1)[1], mode)
        return TensorRT(path, size)

    for batch in batches:
        images = np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
        for mode in ("forward", "interactive"):
            runners = {}
            for backend in args.backends.split(","):
                try:
                    runners[backend] = make(backend, mode)
                    runners[backend].prepare(images)
                except (InterActiveError, ImportError, OSError) as exc:
                    runners.pop(backend, None)
                    if (backend, mode) not in {(b, m) for b, m, _ in skipped}:
                        skipped.append((backend, mode, str(exc).splitlines()[0][:160]))
            for backend, (seconds, best) in interleaved(runners, args.repeat, args.warmup).items():
                rate = flops[mode] * batch / seconds
                rows.append({"backend": backend, "mode": mode, "batch": batch, "ms": 1e3 * seconds,
                             "best_ms": 1e3 * best, "images_per_s": batch / seconds, "tflops": rate / 1e12,
                             "of_matmul": rate / roofline})
                print(f"  {backend:14s} {mode:11s} batch {batch:3d}: {1e3 * seconds:9.2f} ms (best {1e3 * best:.2f})",
                      file=sys.stderr)
            del runners
            gc.collect()
    rows.sort(key=lambda row: (row["batch"], args.backends.split(",").index(row["backend"]), row["mode"]))
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
    if args.json:
        args.json.write_text(json.dumps({"size": size, "device": args.device, "matmul": roofline_name,
                                         "matmul_tflops": roofline / 1e12, "rows": rows,
                                         "skipped": skipped}, indent=2))
    return 0


def interleaved(runners: dict, repeat: int, warmup: int) -> dict:
    """(median, best) seconds per runner, timed in `repeat` rounds that visit every runner once each."""
    for runner in runners.values():
        for _ in range(warmup):
            runner()
        runner.synchronize()
    times = {key: [] for key in runners}
    for _ in range(repeat):
        for key, runner in runners.items():
            started = time.perf_counter()
            runner()
            runner.synchronize()
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
