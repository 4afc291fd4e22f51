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
    peer = benchmark.PlainAutograd(small_spec, small_weights, "cpu", interactive=True)
    peer.prepare(batch)
    got = dict(zip(output_names(small_spec, "both", True), peer()))
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        assert cosine(got[name].numpy(), value.numpy()) >= 0.9999, name
    forward = benchmark.PlainAutograd(small_spec, small_weights, "cpu", interactive=False)
    forward.prepare(batch)
    assert len(forward()) == len(output_names(small_spec, "both", False))


@pytest.mark.parametrize("family", ["efficientnet_b0", "convnext"])
def test_the_peer_serves_the_part3_rows(family, tmp_path, photo_batches):
    """Issue 23's speed rows: SiLU and gates (EfficientNet-B0), LayerNorm, GELU and a head after the pool
    (ConvNeXt-T), from ONNX files as the benchmark takes them; the peer still equals the reference."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exporter"))
    import families
    import onnx_builders as build

    benchmark = load_benchmark()
    path = build.export_torch(families.FAMILIES[family](), tmp_path / f"{family}.onnx", opset=17)
    spec, weights = benchmark.network(str(path), 1)
    batch = photo_batches["chelsea"]
    expected = AutogradReference(spec, weights)(torch.from_numpy(batch))
    peer = benchmark.PlainAutograd(spec, weights, "cpu", interactive=True)
    peer.prepare(batch)
    got = dict(zip(output_names(spec, "both", True), peer()))
    for name, value in expected.items():
        assert cosine(got[name].numpy(), value.numpy()) >= 0.9999, name
