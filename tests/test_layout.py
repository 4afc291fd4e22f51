"""The tests mirror the source tree (issue 24): a test folder is named for the source folder it checks,
so a reader finds a module's tests where the module lives. tests/gpu gathers what needs a device,
tests/support what several folders share, tests/stubs the stand-ins for the GPU stack."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# test folder -> the source folder it mirrors (the rest of a test folder's path is the same below it)
ROOTS = {"contracts": "interactive_trt/contracts", "common": "interactive_trt/common",
         "forms": "interactive_trt/forms", "runners": "interactive_trt/runners", "api": "interactive_trt",
         "exporter": "exporter", "runtime": "runtime", "benchmarks": "benchmarks"}
OWN = {"gpu", "support", "stubs"}


def test_every_test_folder_mirrors_a_source_folder():
    strays = []
    for path in sorted(TESTS.rglob("test_*.py")):
        parts = path.relative_to(TESTS).parent.parts
        if not parts:
            continue  # tests of the whole tree: imports, layout, packaging
        if parts[0] in OWN:
            continue
        source = REPO / ROOTS.get(parts[0], "<none>") / Path(*parts[1:])
        if parts[0] not in ROOTS or not source.is_dir():
            strays.append(path.relative_to(REPO).as_posix())
    assert strays == []

