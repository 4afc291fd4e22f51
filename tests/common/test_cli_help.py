"""--help is the manual (issue 24): flags show no `<bool>` value, every option says what it does, and the
export's command list gives each command one whole sentence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["interactive_trt.runtime.cli.infer", "interactive_trt.runtime.cli.features",
            "interactive_trt.runtime.cli.sheet", "interactive_trt.runtime.cli.doctor", "interactive_trt.exporter.cli"]


def help_of(module: str, *args: str) -> str:
    env = {**os.environ, "COLUMNS": "160", "TERM": "dumb"}
    result = subprocess.run([sys.executable, "-m", module, *args, "--help"], capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("module", COMMANDS)
def test_flags_show_no_value(module):
    text = help_of(module)
    assert "--help" in text and "<bool>" not in text


def test_every_sheet_option_has_help():
    text = help_of("interactive_trt.runtime.cli.sheet")
    assert "auto | cpu | cuda" in text and "height of each tile" in text


def test_the_onnx_command_is_one_sentence_in_the_list():
    rows = [line for line in help_of("interactive_trt.exporter.cli").splitlines() if " onnx " in line]
    assert len(rows) == 1 and rows[0].rstrip(" │").endswith("export it like a built-in."), rows
