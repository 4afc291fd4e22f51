"""What of the TensorRT path runs without a GPU: bucket options, batch ranges, refusing --trt early."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from interactive_trt.exporter.tensorrt.cache import Platform
from interactive_trt.common.errors import SpecError
from interactive_trt.exporter.tensorrt.build import check_batch_range, default_buckets, parse_buckets

REPO = Path(__file__).resolve().parents[3]
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def test_default_buckets_follow_the_resize_rule_at_common_aspects(small_spec):
    buckets = default_buckets(small_spec)
    assert buckets[0] == (512, 512)
    assert (448, 576) in buckets and (576, 448) in buckets
    for height, width in buckets:
        assert height % 32 == 0 and width % 32 == 0
        assert abs(height * width - 512 * 512) / (512 * 512) < 0.05


def test_buckets_are_parsed_checked_and_deduplicated(small_spec):
    assert parse_buckets("512x512, 448X576,512x512", small_spec) == [(512, 512), (448, 576)]
    assert parse_buckets(None, small_spec) == default_buckets(small_spec)


@pytest.mark.parametrize("text, message", [
    ("512", "expected HEIGHTxWIDTH"),
    ("512x", "expected HEIGHTxWIDTH"),
    ("-32x64", "expected HEIGHTxWIDTH"),
    ("500x512", "multiples of 32"),
])
def test_bad_buckets_are_refused(small_spec, text, message):
    with pytest.raises(SpecError, match=message):
        parse_buckets(text, small_spec)


def test_batch_range():
    check_batch_range(1, 32)
    with pytest.raises(SpecError):
        check_batch_range(0, 4)
    with pytest.raises(SpecError):
        check_batch_range(8, 4)


def test_runtime_uses_the_batch_range_export_built_for_this_gpu():
    from interactive_trt.runtime.backends.tensorrt import prebuilt_batches

    here = Platform("11.4.0", "NVIDIA H100 80GB HBM3", "9.0")
    engines = [{"max_batch": 8, "opt_batch": 2, "gpu_name": "NVIDIA H100 80GB HBM3", "tensorrt_version": "11.4.0"},
               {"max_batch": 64, "gpu_name": "NVIDIA A100", "tensorrt_version": "11.4.0"}]
    assert prebuilt_batches(engines, here) == (8, 2)
    assert prebuilt_batches([], here) is None


def test_engines_are_tuned_for_the_runtime_batch_inside_the_range():
    from interactive_trt.exporter.tensorrt.build import DEFAULT_OPT_BATCH, opt_batch_for

    assert DEFAULT_OPT_BATCH == 4  # interactive-infer's --batch-size
    assert opt_batch_for(1, 32) == 4 and opt_batch_for(1, 2) == 2 and opt_batch_for(8, 32) == 8
    assert opt_batch_for(1, 32, 16) == 16
    check_batch_range(1, 32, 4)
    with pytest.raises(SpecError, match="batch 64 to tune for is outside the batch range 1..32"):
        check_batch_range(1, 32, 64)


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here; the GPU tests cover --trt")
def test_trt_without_tensorrt_is_refused_before_any_work(tmp_path):
    out = tmp_path / "engines"
    result = subprocess.run([sys.executable, "-m", "interactive_trt.exporter.cli", "vgg19", "--weights", "random", "--width-divisor",
                             "8", "--trt", "--out", out], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: TensorRT is not installed: install the gpu extra (TensorRT 11 for CUDA 13, "
                                     "NVIDIA driver >= 580): pip install '.[gpu]' in the interactive-trt checkout, or "
                                     "the gpu-cu12 extra (TensorRT 10 for CUDA 12), on a machine with an NVIDIA GPU")
    assert not out.exists()
