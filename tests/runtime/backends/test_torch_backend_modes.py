"""The torch backend's inference modes (runtime.backends.torch_graph.prepare_graph): channels_last and
torch.compile compute the same outputs as the plain module (the explicit graph's fp32 bound, relative L2
<= 1e-5). On the CPU here; tests/gpu and benchmarks/gpu_check.sh run them on a GPU."""

import numpy as np

from interactive_trt.exporter.onnx.verification import GRAPH_BOUNDS
from interactive_trt.exporter.onnx.verify import compare
from interactive_trt.runtime.backends import make_runner
from interactive_trt.runtime.inference.model import load_model


def test_channels_last_and_compile_equal_the_plain_module(small_model, photo_batches):
    batch = photo_batches["chelsea"]
    outputs = {}
    for label, options in {"plain": {}, "channels_last": {"channels_last": True},
                           "compiled": {"channels_last": True, "compile": True}}.items():
        with make_runner("torch", load_model(small_model), device="cpu", **options) as runner:
            outputs[label] = runner.infer({"image": batch})
    for label in ("channels_last", "compiled"):
        report = compare(f"torch {label} vs plain", outputs[label], outputs["plain"], GRAPH_BOUNDS)
        assert report.passed, [(c.name, c.rel_l2) for c in report.failures]
    assert set(outputs["compiled"]) == set(outputs["plain"]) and all(
        np.isfinite(value).all() for value in outputs["compiled"].values())
