"""Which ONNX Runtime is installed is the extras' choice: the base names neither package (both install one
`onnxruntime/` folder, and with both the CUDA provider is lost), the GPU extras pin TensorRT and cuda-python
to one CUDA major, and a machine with no ONNX Runtime is told in one line what to install."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from interactive_trt.common.errors import BackendUnavailable

REPO = Path(__file__).resolve().parents[3]
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def project():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def names(requirements):
    return [re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements]


def test_the_base_names_no_onnxruntime_and_the_extras_exactly_one():
    extras = project()["optional-dependencies"]
    assert not {"onnxruntime", "onnxruntime-gpu"} & set(names(project()["dependencies"]))
    assert names(extras["cpu"]) == ["onnxruntime"]
    for extra in ("gpu", "gpu-cu12"):
        assert "onnxruntime-gpu" in names(extras[extra]) and "onnxruntime" not in names(extras[extra])
    (own,) = [item for item in extras["dev"] if item.startswith("interactive-trt[")]
    assert "cpu" in own.removeprefix("interactive-trt[").rstrip("]").split(",")


@pytest.mark.parametrize("extra, cuda_major, tensorrt_major", [("gpu", "13", "11"), ("gpu-cu12", "12", "10")])
def test_tensorrt_and_cuda_python_are_a_matched_pair(extra, cuda_major, tensorrt_major):
    requirements = project()["optional-dependencies"][extra]
    (tensorrt,) = [r for r in requirements if r.startswith("tensorrt")]
    (cuda_python,) = [r for r in requirements if r.startswith("cuda-python")]
    assert tensorrt.startswith(f"tensorrt-cu{cuda_major}>={tensorrt_major}.")
    assert tensorrt.endswith(f"<{int(tensorrt_major) + 1}")
    assert f">={cuda_major}" in cuda_python and cuda_python.endswith(f"<{int(cuda_major) + 1}")


def test_both_packages_installed_is_named_with_the_fix(monkeypatch):
    from interactive_trt.common import ort

    monkeypatch.setattr(ort, "installed_packages", lambda: ["onnxruntime", "onnxruntime-gpu"])
    with pytest.raises(BackendUnavailable, match="both installed and share one folder") as caught:
        ort.session_providers("cuda")  # this machine's ONNX Runtime has no CUDA provider
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in str(caught.value)


@pytest.fixture
def no_onnxruntime(tmp_path):
    """A PYTHONPATH on which `import onnxruntime` fails as it does where no ONNX Runtime is installed."""
    shadow = tmp_path / "shadow"
    (shadow / "onnxruntime").mkdir(parents=True)
    (shadow / "onnxruntime" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'onnxruntime'\")\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")])}


def test_infer_without_onnxruntime_is_one_line(small_model, photos, tmp_path, no_onnxruntime):
    Image.fromarray(photos["chelsea"]).save(tmp_path / "chelsea.png")
    result = subprocess.run([sys.executable, "-m", "interactive_trt.runtime.cli.infer", tmp_path / "chelsea.png",
                             "--engine", small_model], capture_output=True, text=True, cwd=REPO, env=no_onnxruntime,
                            timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: ONNX Runtime is not installed: install the cpu extra (or the gpu extra on "
                                     "a machine with an NVIDIA GPU): pip install '.[cpu]' in the interactive-trt "
                                     "checkout")


def test_export_verification_without_onnxruntime_is_refused_before_any_work(tmp_path, no_onnxruntime):
    result = subprocess.run([sys.executable, "-m", "interactive_trt.exporter.cli", "vgg19", "--weights", "random",
                             "--width-divisor", "8", "--out", tmp_path / "out"], capture_output=True, text=True,
                            cwd=REPO, env=no_onnxruntime, timeout=300)
    assert result.returncode == 1 and "ONNX Runtime is not installed" in result.stderr
    assert not (tmp_path / "out").exists()
