"""Random networks of the part 3 vocabulary (tests/support/random_networks.py, the fuzzer's): blocks in orders
no hand-written family has. Each imports exactly, or is refused by name where it holds a block the import
refuses; the rebuilt forward equals the file; the explicit graph equals autograd (judged against float64
where float32 autograd misses, as export verification does). scripts/fuzz_import.py runs thousands."""

from __future__ import annotations

import pytest

from interactive_trt.common.errors import OnnxImportError, SpecError
from interactive_trt.exporter.networks.onnx_import import import_onnx, verify_against_source

import onnx_builders as build
from random_networks import REFUSED, graph_misses, random_net


@pytest.mark.parametrize("seed", range(12))
def test_a_random_network_imports_exactly_or_is_refused_by_name(tmp_path, seed):
    model, described = random_net(seed)
    refused = {block.split()[1] for block in described if block.startswith("extra ")} & REFUSED
    path = build.export_torch(build.randomise_batchnorm(model, seed), tmp_path / f"random{seed}.onnx", "folded",
                              size=64, opset=17)
    if refused:
        with pytest.raises((OnnxImportError, SpecError), match=r"node '[^']+' \(\w+\): "):
            import_onnx(path)
        return
    imported = import_onnx(path)
    assert all(report.passed for report in verify_against_source(imported, ())), described
    assert graph_misses(imported.spec, imported.weights, seed) == [], described
