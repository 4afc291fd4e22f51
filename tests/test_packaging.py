"""The distribution installs one top-level name, interactive_trt, holding every module of the tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAPPED = {"interactive_trt": "interactive_trt", "exporter": "interactive_trt/exporter",
          "runtime": "interactive_trt/runtime"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (path,) = out.glob("interactive_trt-*.whl")
    return path


def test_one_top_level_name_and_every_source_module(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = {name.split("/", 1)[0] for name in names}
        dist_info = next(name for name in top_level if name.endswith(".dist-info"))
        assert top_level == {"interactive_trt", dist_info}
        record = archive.read(f"{dist_info}/RECORD").decode()
    installed = {line.split(",", 1)[0] for line in record.splitlines()}
    expected = {f"{MAPPED[source.parts[0]]}/{'/'.join(source.parts[1:])}"
                for folder in MAPPED for source in (p.relative_to(REPO) for p in (REPO / folder).rglob("*.py"))}
    assert expected - installed == set(), "modules missing from the wheel"
    assert "interactive_trt/runtime/inference/imagenet_classes.txt" in installed


def test_installed_package_imports_and_generic_names_do_not(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # a wheel's contents are what pip puts in site-packages
    env = {**os.environ, "PYTHONPATH": str(site)}
    check = ("import interactive_trt, interactive_trt.exporter.cli, interactive_trt.runtime.cli.infer\n"
             "print(interactive_trt.__file__)\n"
             "print(callable(interactive_trt.load), callable(interactive_trt.export))\n")
    ok = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [str(site / "interactive_trt" / "__init__.py"), "True True"]
    for generic in ("exporter", "runtime"):
        refused = subprocess.run([sys.executable, "-c", f"import {generic}"], cwd=tmp_path, env=env,
                                 capture_output=True, text=True)
        assert refused.returncode == 1 and f"No module named '{generic}'" in refused.stderr
