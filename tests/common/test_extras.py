"""Every extra a message names exists in pyproject.toml, and no message sends a newcomer to PyPI, where
interactive-trt is not (issue 24: two hints named a `[torch]` extra that never existed)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from interactive_trt.common.extras import install

REPO = Path(__file__).resolve().parents[2]
SOURCES = [path for folder in ("interactive_trt", "exporter", "runtime", "benchmarks")
           for path in (REPO / folder).rglob("*.py")]
EXTRAS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def named_extras(text: str) -> set[str]:
    calls = re.findall(r"""install\(\s*["']([\w-]+)["']""", text)
    spelled = re.findall(r"""the ([\w-]+) extra""", text)
    return set(calls) | {name for name in spelled if name not in ("one", "same")}


def test_the_hint_says_how_to_install_from_a_checkout():
    assert install("eval", "the SVM protocol") == ("install the eval extra (the SVM protocol): pip install '.[eval]' "
                                                   "in the interactive-trt checkout")


def test_every_extra_a_message_names_is_in_pyproject():
    found = {path.relative_to(REPO).as_posix(): named_extras(path.read_text()) for path in SOURCES}
    assert sum(map(len, found.values())) >= 10  # the scan reads the hints (it would pass vacuously otherwise)
    unknown = {path: names - EXTRAS for path, names in found.items() if names - EXTRAS}
    assert unknown == {}


@pytest.mark.parametrize("pattern", [r"pip install '?interactive-trt\[", r"interactive-trt\[torch\]"])
def test_no_message_installs_from_pypi(pattern):
    offending = [path.relative_to(REPO).as_posix() for path in SOURCES if re.search(pattern, path.read_text())]
    assert offending == []
