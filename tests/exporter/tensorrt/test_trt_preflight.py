"""`--trt` checks everything its GPU work needs before any work. The stand-ins in tests/stubs/gpu_stack play
an installed TensorRT and cuda-python on a machine with a GPU; the torch here is the documented CPU-only
one, which is exactly the install that used to export, verify, and then die in a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from interactive_trt.common.errors import BackendUnavailable

REPO = Path(__file__).resolve().parents[3]
STUBS = REPO / "tests" / "stubs" / "gpu_stack"


def export(out, *extra, pythonpath=STUBS):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "interactive_trt.exporter.cli", "vgg19", "--weights", "random",
                           "--width-divisor", "8", "--trt", "--buckets", "224x224", "--max-batch", "4", "--out", out,
                           *extra], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(torch_has_cuda(), reason="this torch can use a GPU; the refusal is for a CPU-only torch")
def test_cpu_only_torch_is_refused_before_any_work(tmp_path):
    out = tmp_path / "engines"
    result = export(out)
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("error: engine verification runs the autograd reference on the GPU, but torch ")
    assert "is a CPU-only build: install a CUDA build of torch" in line and "--no-verify" in line
    assert not out.exists()


def test_without_verification_the_engines_are_built(tmp_path):
    """The stub builder's plans go through the engine cache, file names and manifest as real ones would."""
    out = tmp_path / "engines"
    result = export(out, "--no-verify")
    assert result.returncode == 0, result.stderr
    (engine,) = out.glob("*.engine")
    assert "224x224_b1-4-opt4_fp32" in engine.name and "trt11.1.0_nvidia-stub-gpu-sm90" in engine.name
    (manifest,) = out.glob("*.json")
    (entry,) = json.loads(manifest.read_text())["engines"]
    assert entry["gpu_name"] == "NVIDIA Stub GPU" and entry["opt_batch"] == 4 and "verified" not in entry


def test_torch_cuda_problem_says_why_on_this_machine():
    import torch

    from interactive_trt.exporter.tensorrt.preflight import torch_cuda_problem

    problem = torch_cuda_problem()
    if torch.cuda.is_available():
        assert problem is None
    else:
        assert problem and str(torch.__version__) in problem


def test_a_tensorrt_whose_libraries_do_not_load_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    """A wheel without its native libraries raises OSError at import, not ImportError."""
    from interactive_trt.exporter.tensorrt import preflight

    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.py").write_text(
        "raise OSError('libnvinfer.so.11: cannot open shared object file: No such file or directory')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    problem = preflight.tensorrt_problem()
    assert problem.startswith("TensorRT cannot load its libraries (libnvinfer.so.11: cannot open shared object")
    with pytest.raises(BackendUnavailable, match="TensorRT cannot load its libraries"):
        preflight.require_tensorrt()


def test_no_visible_gpu_is_a_reason(gpu_stubs):
    from interactive_trt.exporter.tensorrt import preflight

    gpu_stubs.cudart.reset(devices=0)
    assert preflight.tensorrt_problem().startswith("no CUDA GPU is visible")
    gpu_stubs.cudart.reset()
    assert preflight.tensorrt_problem() is None
