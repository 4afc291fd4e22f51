"""Throughput of every way to compute InterActive features, forward-only and forward+InterActive.

Prints one table (and writes JSON with --json): per backend, batch and mode the median time per
batch, images/s and effective TFLOP/s (exporter.flops: convolutions and transposed convolutions only),
plus the rate of a dense matrix product measured in the same run as the roofline to compare with
(fp16 on a GPU, fp32 on a CPU). Backends that cannot run here are listed with the reason.

    python benchmarks/benchmark.py --size 512 --batch 1,8,32      # GPU machine, issue 3's table
    python benchmarks/benchmark.py --device cpu --batch 1 --backends autograd-fp32,graph-fp32,onnxruntime
"""

from __future__ import annotations

import argparse
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


def matmul_rate(device: str) -> tuple[str, float]:
    import torch

    if device == "cuda":
        n, dtype = 8192, torch.float16
    else:
        n, dtype = 2048, torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    seconds = timed(lambda: a @ b, repeat=10, warmup=3, synchronize=sync, best=True)  # a roofline: the best seen
    return f"{n}^3 {str(dtype).replace('torch.', '')} matmul", 2 * n ** 3 / seconds


class Autograd:
    """The PyTorch autograd reference, fp32 or under fp16 autocast (what a user without us would run)."""

    def __init__(self, spec, weights, device, interactive, autocast):
        import torch

        from interactive_trt.exporter.interactive.reference import AutogradReference

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        self.torch, self.device, self.autocast = torch, device, autocast
        self.reference = AutogradReference(spec, weights, interactive=interactive, device=device)

    def prepare(self, batch: np.ndarray):
        self.image = self.torch.from_numpy(batch).to(self.device)

    def __call__(self):
        torch = self.torch
        with torch.autocast(self.device, dtype=torch.float16, enabled=self.autocast):
            return self.reference(self.image)

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
    def __init__(self, onnx_path: Path, device: str):
        import onnxruntime as ort

        from interactive_trt.runtime.backends.onnxrt import choose_providers

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), options, providers=choose_providers(device))
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
    parser.add_argument("--backends", default="autograd-fp32,autograd-fp16,graph-fp16,onnxruntime,tensorrt-fp32,"
                        "tensorrt-fp16", help="any of autograd-fp32/fp16, graph-fp32/fp16, onnxruntime, "
                        "tensorrt-fp32/fp16")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    spec = model_spec(args.model, args.width_divisor)
    weights = random_weights(spec, seed=0)
    size = args.size
    flops = {mode: graph_flops(InterActiveGraph(spec, weights, interactive=mode == "interactive"), size, size).total
             for mode in ("forward", "interactive")}
    roofline_name, roofline = matmul_rate(args.device)
    print(f"# {spec.name} at {size}x{size} on {args.device}; {roofline_name}: {roofline / 1e12:.1f} TFLOP/s")
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

    def make(backend, mode):
        interactive = mode == "interactive"
        if backend.startswith("autograd"):
            if backend.endswith("fp16") and args.device != "cuda":
                raise InterActiveError("fp16 autocast is a GPU mode")
            return Autograd(spec, weights, args.device, interactive, autocast=backend.endswith("fp16"))
        if backend.startswith("graph"):
            return ExplicitGraph(spec, weights, args.device, interactive, backend.rsplit("-", 1)[1])
        if backend == "onnxruntime":
            return OnnxRuntime(exported("fp32", mode)[0], args.device)
        path, _ = exported(backend.rsplit("-", 1)[1], mode)
        return TensorRT(path, size)

    for backend in args.backends.split(","):
        for mode in ("forward", "interactive"):
            try:
                runner = make(backend, mode)
            except (InterActiveError, ImportError, OSError) as exc:
                skipped.append((backend, mode, str(exc).splitlines()[0][:160]))
                continue
            for batch in batches:
                images = np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
                runner.prepare(images)
                seconds = timed(runner, args.repeat, args.warmup, runner.synchronize)
                rate = flops[mode] * batch / seconds
                rows.append({"backend": backend, "mode": mode, "batch": batch, "ms": 1e3 * seconds,
                             "images_per_s": batch / seconds, "tflops": rate / 1e12, "of_matmul": rate / roofline})
                print(f"  {backend:14s} {mode:11s} batch {batch:3d}: {1e3 * seconds:9.2f} ms", file=sys.stderr)
    print()
    print("| backend | mode | batch | ms / batch | images/s | TFLOP/s | of matmul |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['backend']} | {row['mode']} | {row['batch']} | {row['ms']:.2f} | {row['images_per_s']:.1f} | "
              f"{row['tflops']:.2f} | {100 * row['of_matmul']:.0f}% |")
    for backend, mode, reason in skipped:
        print(f"- {backend} {mode}: not run ({reason})")
    by_key = {(r["backend"], r["mode"], r["batch"]): r for r in rows}
    top = max(batches)
    print()
    for label, value in ratios(by_key, top):
        print(f"- {label}: {value}")
    if args.json:
        args.json.write_text(json.dumps({"size": size, "device": args.device, "matmul": roofline_name,
                                         "matmul_tflops": roofline / 1e12, "rows": rows,
                                         "skipped": skipped}, indent=2))
    return 0


def ratios(by_key, batch):
    """Issue 3's bars at the largest batch, where both sides of a ratio were measured."""
    def ms(backend, mode="interactive"):
        row = by_key.get((backend, mode, batch))
        return row["ms"] if row else None

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


if __name__ == "__main__":
    sys.exit(main())
