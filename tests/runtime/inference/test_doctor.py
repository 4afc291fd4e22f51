"""`interactive-doctor` on this machine (CPU only, no TensorRT) says what runs and why the rest does not; with
tests/stubs/gpu_stack on the path (standing for an installed TensorRT 11.1 and cuda-python on a GPU machine)
it finds them, and still says that engine verification needs a torch that can use the GPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from interactive_trt.runtime.inference.doctor import Component, cuda_major_of, stack_problem

REPO = Path(__file__).resolve().parents[3]
STUBS = REPO / "tests" / "stubs" / "gpu_stack"


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def doctor(*args, pythonpath=None):
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "interactive_trt.runtime.cli.doctor", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=300)


def backends(result) -> dict:
    assert result.returncode == 0, result.stderr
    return {b["name"]: b for b in json.loads(result.stdout)["backends"]}


def components(result) -> dict:
    return {c["name"]: c for c in json.loads(result.stdout)["components"]}


def test_importing_the_doctor_imports_nothing_heavy():
    code = ("import sys, interactive_trt.runtime.cli.doctor, interactive_trt.runtime.inference.doctor; "
            "print(sorted({'torch', 'tensorrt', 'onnxruntime', 'cuda'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.skipif(torch_has_cuda(), reason="this machine has a GPU torch can use; the test is for a CPU machine")
def test_on_a_cpu_machine_onnxruntime_cpu_runs_and_the_rest_says_why_not():
    result = doctor("--json")
    found = backends(result)
    assert found["onnxruntime --device cpu"]["ok"] and found["torch --device cpu"]["ok"]
    assert not found["onnxruntime --device cuda"]["ok"]
    assert "no CUDA provider" in found["onnxruntime --device cuda"]["reason"]
    assert not found["torch --device cuda"]["ok"] and "CPU-only build" in found["torch --device cuda"]["reason"]
    assert not found["tensorrt"]["ok"]
    assert found["tensorrt"]["reason"].startswith(("TensorRT is not installed", "TensorRT cannot load"))
    assert not found["interactive-export --trt (verified)"]["ok"]
    parts = components(result)
    assert parts["onnxruntime"]["ok"] and "CPUExecutionProvider" in parts["onnxruntime"]["detail"]
    assert not parts["GPU"]["ok"]
    assert all(b["ok"] or b["reason"] for b in found.values())  # every 'no' has its reason


def test_the_table_is_printed_and_exits_0():
    result = doctor()
    assert result.returncode == 0, result.stderr
    assert "onnxruntime --device cpu" in result.stdout and "Backends" in result.stdout
    assert "[gpu]" in result.stdout or torch_has_cuda()  # the extras' names survive rich's markup


@pytest.mark.skipif(torch_has_cuda(), reason="the test is for a CPU-only torch")
def test_with_tensorrt_and_cuda_python_but_a_cpu_torch():
    result = doctor("--json", pythonpath=STUBS)
    found, parts = backends(result), components(result)
    assert found["tensorrt"]["ok"] and parts["tensorrt"]["version"] == "11.1.0"
    assert parts["GPU"]["detail"] == "NVIDIA Stub GPU (sm 9.0)"
    assert parts["cuda-python"]["detail"] == "the driver supports CUDA 13.0"
    verified = found["interactive-export --trt (verified)"]
    assert not verified["ok"] and verified["reason"].startswith("engine verification needs torch on the GPU")


def test_tensorrt_cuda_python_and_driver_must_agree_on_cuda():
    assert cuda_major_of("tensorrt-cu13-bindings") == 13 and cuda_major_of("tensorrt-cu12") == 12
    assert cuda_major_of("tensorrt") is None
    matched = Component("cuda-python", True, "13.4.4")
    assert stack_problem(13, matched, 13000) is None
    assert "cuda-python is 12.9.10" in stack_problem(13, Component("cuda-python", True, "12.9.10"), 13000)
    old_driver = stack_problem(13, matched, 12080)
    assert "the driver supports CUDA 12.8" in old_driver and ">= 580 or install the gpu-cu12 extra: pip install '.[gpu-cu12]'" in old_driver
    assert stack_problem(None, matched, 12080) is None


def test_openvino_is_diagnosed_with_its_cpu_plugin_and_bf16():
    """The doctor answers for every backend, OpenVINO's too: it runs where its CPU plugin loads, and bf16
    where OpenVINO reports the capability; without OpenVINO both rows say which extra to install."""
    from interactive_trt.forms import openvino as ov_runtime

    result = doctor("--json")
    found, parts = backends(result), components(result)
    if ov_runtime.is_installed():
        assert found["openvino --device cpu"]["ok"] and parts["openvino"]["version"]
        has_bf16 = "BF16" in parts["openvino"]["detail"]
        assert found["openvino --precision bf16"]["ok"] == has_bf16
        assert has_bf16 or "no bfloat16 support" in found["openvino --precision bf16"]["reason"]
    else:
        for name in ("openvino --device cpu", "openvino --precision bf16"):
            assert not found[name]["ok"] and "install the openvino extra" in found[name]["reason"]


def test_without_openvino_the_rows_say_which_extra_to_install(tmp_path):
    """A folder on PYTHONPATH whose `openvino` package fails to import stands for a machine without it."""
    (tmp_path / "openvino").mkdir()
    (tmp_path / "openvino" / "__init__.py").write_text("raise ImportError('No module named openvino')\n")
    found = backends(doctor("--json", pythonpath=tmp_path))
    for name in ("openvino --device cpu", "openvino --precision bf16"):
        assert not found[name]["ok"]
        assert "OpenVINO is not installed: install the openvino extra" in found[name]["reason"]
