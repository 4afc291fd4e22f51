"""CPU benchmark (a script, not a test): images/s and effective GFLOP/s at 512x512, batch 1 and 4, for
the PyTorch autograd reference, the PyTorch explicit graph and ONNX Runtime, forward-only and
forward+InterActive, beside the machine's sgemm rate measured in the same run.

Effective FLOPs count 2 x multiply-adds of every convolution the computation needs: the forward
pass, plus for InterActive the data-gradient (transposed) convolutions from fc7 down to the lowest
successor. Usage: python benchmarks/bench_cpu.py [--width-divisor 1] [--repeats 3] [--batches 1,4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from exporter.export import ExportRequest, export_model
from exporter.graph import InterActiveGraph
from exporter.reference import AutogradReference
from exporter.spec import ModelSpec
from exporter.vgg import vgg19_spec
from exporter.weights import random_weights


def conv_macs(spec: ModelSpec, height: int, width: int, names) -> int:
    sizes = spec.spatial_sizes(height, width)
    total = 0
    for name in names:
        layer = spec.layer(name)
        if layer.op == "conv":
            h, w = sizes[name]
            total += h * w * layer.channels * layer.in_channels * layer.kernel ** 2
    return total


def flops(spec: ModelSpec, graph: InterActiveGraph, height: int, width: int) -> tuple[float, float]:
    forward = 2 * conv_macs(spec, height, width, graph.forward_layers)
    backward_convs = [n for n in graph.gradient_layers
                      if spec.layer(n).op == "conv" and spec.layer(n).inputs[0] in graph.gradient_layers]
    return float(forward), float(forward + 2 * conv_macs(spec, height, width, backward_convs))


def timed(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def sgemm_gflops(n: int = 2048) -> float:
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    seconds = timed(lambda: a @ b, 5)
    return 2 * n ** 3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width-divisor", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    import onnxruntime as ort

    spec = vgg19_spec(width_divisor=args.width_divisor)
    weights = random_weights(spec, 0)
    side = args.size
    print(f"threads: torch {torch.get_num_threads()}, model {spec.name}, input {side}x{side}", flush=True)
    print(f"sgemm (torch, 2048^3): {sgemm_gflops():.1f} GFLOP/s", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        sessions, graphs = {}, {}
        for interactive in (False, True):
            request = ExportRequest(weights="random", width_divisor=args.width_divisor, out=Path(folder),
                                    verify=False, interactive=interactive, head="both")
            path, _ = export_model(request, log=lambda m: None)
            sessions[interactive] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            graphs[interactive] = InterActiveGraph(spec, weights, head="both", interactive=interactive).eval()
        reference = AutogradReference(spec, weights, head="both")
        forward_flops, interactive_flops = flops(spec, graphs[True], side, side)
        for batch in map(int, args.batches.split(",")):
            image = np.random.default_rng(0).standard_normal((batch, 3, side, side), dtype=np.float32)
            tensor = torch.from_numpy(image)

            def torch_graph(interactive):
                with torch.inference_mode():
                    graphs[interactive](tensor)

            cases = [
                ("torch autograd reference", "forward", lambda: torch_graph(False)),
                ("torch autograd reference", "InterActive", lambda: reference(tensor)),
                ("torch explicit graph", "forward", lambda: torch_graph(False)),
                ("torch explicit graph", "InterActive", lambda: torch_graph(True)),
                ("onnxruntime CPU", "forward", lambda: sessions[False].run(None, {"image": image})),
                ("onnxruntime CPU", "InterActive", lambda: sessions[True].run(None, {"image": image})),
            ]
            for name, kind, fn in cases:
                seconds = timed(fn, args.repeats)
                work = (forward_flops if kind == "forward" else interactive_flops) * batch
                rows.append((name, kind, batch, batch / seconds, work / seconds / 1e9, seconds))
                print(f"{name:26s} {kind:12s} batch {batch}: {batch / seconds:7.3f} img/s "
                      f"{work / seconds / 1e9:7.1f} GFLOP/s ({seconds:.2f}s)", flush=True)
    print("\n| backend | pass | batch | images/s | effective GFLOP/s |")
    print("| --- | --- | --- | --- | --- |")
    for name, kind, batch, rate, gflops, _ in rows:
        print(f"| {name} | {kind} | {batch} | {rate:.3f} | {gflops:.1f} |")
    by = {(n, k, b): s for n, k, b, _, _, s in rows}
    for batch in map(int, args.batches.split(",")):
        speedup = by[("torch autograd reference", "InterActive", batch)] / by[("onnxruntime CPU", "InterActive", batch)]
        overhead = by[("onnxruntime CPU", "InterActive", batch)] / by[("onnxruntime CPU", "forward", batch)]
        print(f"batch {batch}: onnxruntime InterActive is {speedup:.2f}x the autograd reference's speed "
              f"(bar >= 1.25); InterActive / forward-only = {overhead:.2f} (bar <= 2.2)")


if __name__ == "__main__":
    main()
