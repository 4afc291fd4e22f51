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


def test_equal_parameters_that_torch_onnx_stores_once_are_read_back(tmp_path, photos):
    """torch.onnx keeps one of several equal parameters and names the others by Identity nodes (here the
    zero biases of a ConvNeXt's depthwise convs, as timm initialises them); the torch backend reads them back
    through those nodes and computes what ONNX Runtime computes from the same file."""
    import onnx

    import families
    import onnx_builders as build
    from interactive_trt.common.imaging import prepare
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

    model = families.randomise(families.ConvNeXt())
    for block in model.modules():
        if isinstance(block, families.ConvNeXtBlock):
            block.dw.bias.data.zero_()
    source = build.export_torch(model, tmp_path / "zero_biases.onnx", opset=17)
    onnx_path, _ = export_model(ExportRequest(model=IMPORTED, source=source, out=tmp_path, verify=False),
                                log=lambda message: None)
    graph = onnx.load(str(onnx_path)).graph
    stored = {item.name for item in graph.initializer}
    assert any(node.op_type == "Identity" and node.input[0] in stored and node.output[0].endswith("__bias")
               for node in graph.node)
    loaded = load_model(onnx_path)
    batch = prepare(photos["chelsea"], (224, 288), loaded.manifest.model.preprocessing)[None]
    outputs = {}
    for backend, options in (("torch", {"device": "cpu"}), ("onnxruntime", {})):
        with make_runner(backend, loaded, **options) as runner:
            outputs[backend] = runner.infer({"image": batch})
    report = compare("torch vs onnxruntime", outputs["torch"], outputs["onnxruntime"], GRAPH_BOUNDS)
    assert report.passed, [(c.name, c.rel_l2) for c in report.failures]
