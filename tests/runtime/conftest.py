"""Runtime fixtures: one exported width-reduced model per session."""

import pytest


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import ExportRequest

    out = tmp_path_factory.mktemp("small-model")
    export_model(ExportRequest(weights="random", width_divisor=8, out=out, verify=False), log=lambda m: None)
    return out

