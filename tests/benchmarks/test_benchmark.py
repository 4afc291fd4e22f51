"""The benchmark's plain-autograd peer computes what the exported graph computes, so that its row is a
fair comparison (cosine >= 0.9999 per output against the autograd reference)."""

import importlib.util
from pathlib import Path

import pytest
import torch

from interactive_trt.contracts.outputs import output_names
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.exporter.onnx.verify import cosine

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "benchmark.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def built_in(name: str):
    from interactive_trt.exporter.networks.registry import built_in as entry
    from interactive_trt.exporter.networks.weights import random_weights

    spec = entry(name).build(8)
    return spec, random_weights(spec, seed=1)


@pytest.mark.parametrize("network", ["vgg19-w8", "resnet18", "efficientnet_lite0"])
def test_plain_autograd_peer_equals_the_reference(network, small_spec, small_weights, photo_batches):
    """Strided, grouped and 'same'-padded successors included (ResNet, EfficientNet-Lite0)."""
    benchmark = load_benchmark()
    if network != "vgg19-w8":
        small_spec, small_weights = built_in(network)
    batch = photo_batches["chelsea"]
    expected = AutogradReference(small_spec, small_weights)(torch.from_numpy(batch))
    network = benchmark.Network(small_spec, small_weights, "cpu")
    with benchmark.PlainAutograd(network, interactive=True) as peer:
        got = peer.infer({"image": batch})
        peer.bound({"image": batch})()  # what the benchmark times runs too
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name].shape == tuple(value.shape), name
        assert cosine(got[name], value.numpy()) >= 0.9999, name
    with benchmark.PlainAutograd(network, interactive=False) as forward:
        assert list(forward.infer({"image": batch})) == output_names(small_spec, "both", False)


@pytest.mark.parametrize("family", ["efficientnet_b0", "convnext", "textline"])
def test_the_peer_serves_the_part3_rows(family, tmp_path, photo_batches):
    """Issue 23's speed rows: SiLU and gates (EfficientNet-B0), LayerNorm, GELU and a head after the pool
    (ConvNeXt-T), from ONNX files as the benchmark takes them; the peer still equals the reference. And 2x1
    strides (a text line's), whose connection sums the peer spreads back at each axis' own stride."""
    import families
    import onnx_builders as build

    benchmark = load_benchmark()
    path = build.export_torch(families.FAMILIES[family](), tmp_path / f"{family}.onnx", opset=17)
    spec, weights = benchmark.network(str(path), 1)
    batch = photo_batches["chelsea"]
    expected = AutogradReference(spec, weights)(torch.from_numpy(batch))
    with benchmark.PlainAutograd(benchmark.Network(spec, weights, "cpu"), interactive=True) as peer:
        got = peer.infer({"image": batch})
    for name, value in expected.items():
        assert cosine(got[name], value.numpy()) >= 0.9999, name


@pytest.mark.parametrize("schedule", ["sequential", "interleaved"])
def test_the_benchmark_times_every_cpu_backend_through_its_runner(tmp_path, schedule):
    """The script end to end on a width-reduced VGG-19, in either schedule: each backend, the peers
    included, is a runner, and each gives a row per mode and batch; a backend that cannot run is a row
    of its own, not a crash."""
    import json
    import subprocess
    import sys

    out = tmp_path / "rows.json"
    backends = "autograd-plain,autograd-fp32,onnxruntime,onnxruntime+direct,graph-fp32+cl,onnxruntime+bogus"
    done = subprocess.run([sys.executable, str(BENCHMARK), "--model", "vgg19", "--width-divisor", "8", "--size", "224",
                           "--batch", "1,2", "--device", "cpu", "--backends", backends, "--repeat", "1", "--warmup", "0",
                           "--json", str(out), "--schedule", schedule], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    measured = {(row["backend"], row["mode"], row["batch"]) for row in result["rows"] if row["ms"] > 0}
    expected = {(name, mode, batch) for name in backends.split(",")[:-1] for mode in ("forward", "interactive")
                for batch in (1, 2)}
    assert measured == expected
    assert [name for name, _, reason in result["skipped"] if "unknown ONNX Runtime modifier 'bogus'" in reason] == [
        "onnxruntime+bogus", "onnxruntime+bogus"]


def test_the_peer_refuses_what_the_network_cannot_take_as_the_runners_do(small_spec, small_weights):
    """The same one-line checks as a file's runner (contracts/graph.py): float32 N x 3 x H x W, sides the
    network's layers can divide."""
    import numpy as np

    from interactive_trt.common.errors import InterActiveError

    benchmark = load_benchmark()
    network = benchmark.Network(small_spec, small_weights, "cpu")
    with pytest.raises(InterActiveError, match=r"^peer: input must be float32 N x 3 x H x W, got float32 \(1, 1, 224, 224\)$"):
        network.check_input(np.zeros((1, 1, 224, 224), np.float32), "peer")
    with pytest.raises(InterActiveError):
        network.check_input(np.zeros((1, 3, 100, 100), np.float32), "peer")  # under the smallest side
    network.check_input(np.zeros((1, 3, 224, 224), np.float32), "peer")
