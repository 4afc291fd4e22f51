import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def export(*args, env=None):
    return subprocess.run([sys.executable, "-m", "interactive_trt.exporter.cli", "vgg19", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=600)


def test_missing_default_weights_is_one_clear_line(tmp_path):
    import os

    env = {**os.environ, "TORCH_HOME": str(tmp_path)}
    result = export("--out", tmp_path, env=env)
    assert result.returncode == 1
    assert "vgg19-dcbb9e9d.pth" in result.stderr and "Traceback" not in result.stderr


def test_missing_weights_file(tmp_path):
    result = export("--weights", tmp_path / "nope.pth", "--out", tmp_path)
    assert result.returncode == 1 and "nope.pth: weights file not found" in result.stderr


def test_bad_config(tmp_path):
    result = export("--weights", "random", "--width-divisor", "8", "--config", "middle", "--out", tmp_path)
    assert result.returncode == 1 and "config 'middle'" in result.stderr


def test_two_precisions_are_refused_in_one_line(tmp_path):
    result = export("--weights", "random", "--width-divisor", "8", "--fp16", "--fp16-backward", "--out", tmp_path)
    assert result.returncode == 1 and "choose one precision, not --fp16 and --fp16-backward" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


def test_export_prints_one_line_per_verification_input(tmp_path):
    result = export("--weights", "random", "--width-divisor", "8", "--out", tmp_path, "--p", "1")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if " vs autograd, " in line]
    # (torch graph, onnxruntime, and OpenVINO's candidates where it is installed) x (noise, photo)
    for candidate in ("torch graph", "onnxruntime"):
        assert len([line for line in lines if line.startswith(f"{candidate} vs autograd, ")]) == 2, result.stdout
    assert all(": pass; worst " in line for line in lines)
    photo = [line for line in lines if line.startswith("onnxruntime vs autograd, scikit-image chelsea 416x640: pass")]
    assert len(photo) == 1 and "worst " in photo[0] and "cosine" in photo[0]
    assert "FAIL" not in result.stdout and "pool5.gamma" not in result.stdout
    assert (tmp_path / "vgg19-w8_last_p1_both.onnx").is_file()


def test_export_verbose_prints_every_output(tmp_path):
    result = export("--weights", "random", "--width-divisor", "8", "--out", tmp_path, "--head", "features",
                    "--verbose")
    assert result.returncode == 0, result.stderr
    assert "onnxruntime vs autograd, scikit-image chelsea 416x640" in result.stdout
    tables = result.stdout.count(" vs autograd, ")  # one table per candidate and input
    assert tables >= 4 and result.stdout.count("pool5.gamma") == tables and "FAIL" not in result.stdout
