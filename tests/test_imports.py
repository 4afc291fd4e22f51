"""Imports go one way (issue 24): the runtime reaches the exporter only through
`interactive_trt.exporter.public`; the exporter never imports the runtime; the floor both stand on
(contracts, common, forms, runners) imports neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOOR = ("interactive_trt/contracts", "interactive_trt/common", "interactive_trt/forms", "interactive_trt/runners")


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement in `path` names, at any depth (lazy imports inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
    return found


def offenders(folders, forbidden) -> dict[str, list[str]]:
    found = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            bad = [name for name in imported_modules(path) if forbidden(name)]
            if bad:
                found[path.relative_to(REPO).as_posix()] = bad
    return found


def test_the_scan_sees_lazy_imports():
    names = imported_modules(REPO / "runtime" / "backends" / "torch_graph.py")
    assert "interactive_trt.exporter.public" in names


def test_the_runtime_uses_only_the_exporters_public_surface():
    assert offenders(["runtime"], lambda name: name.startswith("interactive_trt.exporter")
                     and name != "interactive_trt.exporter.public") == {}


def test_the_exporter_never_imports_the_runtime():
    assert offenders(["exporter"], lambda name: name.startswith("interactive_trt.runtime")) == {}


@pytest.mark.parametrize("folder", FLOOR)
def test_the_floor_imports_neither_half(folder):
    assert offenders([folder], lambda name: name.startswith(("interactive_trt.exporter", "interactive_trt.runtime",
                                                             "interactive_trt.api"))) == {}


def test_every_public_name_resolves():
    from interactive_trt.exporter import public

    for name in public.__all__:
        if name in public.NEEDS_TORCH:
            pytest.importorskip("torch")
        assert getattr(public, name) is not None, name


def calls_named(path: Path, attribute: str) -> int:
    return sum(1 for node in ast.walk(ast.parse(path.read_text(), str(path)))
               if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute)


@pytest.mark.parametrize("call, homes", [
    # the canonicaliser's session only writes ONNX Runtime's optimized graph; it never runs one
    ("InferenceSession", {"interactive_trt/runners/onnxrt.py", "exporter/networks/onnx_import/canonical.py"}),
    ("compile_model", {"interactive_trt/forms/openvino.py"}),
])
def test_each_backend_makes_its_session_in_one_place(call, homes):
    """One runner interface (issue 24): the runtime, export and import verification and the benchmark
    all run graphs through interactive_trt.runners, so sessions are made in one place per backend."""
    found = {path.relative_to(REPO).as_posix()
             for folder in ("interactive_trt", "exporter", "runtime", "benchmarks", "scripts")
             for path in (REPO / folder).rglob("*.py") if calls_named(path, call)}
    assert found == homes
