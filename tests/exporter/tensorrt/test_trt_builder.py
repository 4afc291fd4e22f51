"""The TensorRT builder's settings and its timing cache, against the stand-ins in tests/stubs/gpu_stack:
the stub `tensorrt` plays TensorRT 11.1's builder (a config with TF32 on by default, timing caches that
refuse another platform's entries, as TensorRT's header check does), cuda-python plays a GPU."""

import json
from types import SimpleNamespace

import pytest

from interactive_trt.exporter.tensorrt.cache import Platform

PLATFORM = Platform("11.1.0", "NVIDIA Stub GPU", "9.0")


def manifest(precision="fp32"):
    return SimpleNamespace(input_name="image", precision=precision, onnx_sha256="ab" * 32)


def cache_for(folder, precision="fp32", log=lambda m: None):
    from interactive_trt.exporter.tensorrt.build import engine_cache_for

    (folder / "m.onnx").write_bytes(b"onnx")
    return engine_cache_for(folder / "m.onnx", manifest(precision), folder, PLATFORM, 1, 8, log=log)


def built_configs(cache):
    return cache.builder.builder.builder.built  # EngineCache -> _LazyBuilder -> TensorRTBuilder -> trt.Builder


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tf32_is_off_for_every_precision_and_the_profile_is_tuned_for_batch_4(gpu_stubs, tmp_path, precision):
    """The fp16 graph keeps float32 ops (connection sums, gamma, the head): TF32 would round them to 10 bits.
    The profile's opt shape is the runtime's batch (4), not the largest (8), whose kernels batch 4 would run."""
    cache = cache_for(tmp_path, precision)
    cache.get(64, 96)
    (config,) = built_configs(cache)
    assert not config.get_flag(gpu_stubs.trt.BuilderFlag.TF32)
    assert config.profiles[0].shapes["image"] == ((1, 3, 64, 96), (4, 3, 64, 96), (8, 3, 64, 96))


def read_cache(path):
    return json.loads(path.read_bytes())


def test_the_timing_cache_is_keyed_by_tensorrt_version_and_gpu(gpu_stubs, tmp_path):
    cache_for(tmp_path).get(64, 64)
    (path,) = tmp_path.glob("*.timing-cache")
    assert path.name == "m_trt11.1.0_nvidia-stub-gpu-sm90.timing-cache"
    assert read_cache(path)["stub-timing-cache"] == gpu_stubs.trt.PLATFORM


@pytest.mark.parametrize("content", [
    json.dumps({"stub-timing-cache": "TensorRT 10.9 on NVIDIA A100 sm 8.0", "entries": {"old": 2.0}}).encode(),
    b"\x00garbage",
])
def test_a_rejected_timing_cache_is_said_and_replaced_so_it_recovers(gpu_stubs, tmp_path, content):
    path = tmp_path / "m_trt11.1.0_nvidia-stub-gpu-sm90.timing-cache"
    path.write_bytes(content)
    lines = []
    cache_for(tmp_path, log=lines.append).get(64, 64)
    assert any("TensorRT rejected this timing cache" in line for line in lines)
    data = read_cache(path)
    assert data["stub-timing-cache"] == gpu_stubs.trt.PLATFORM and list(data["entries"]) == ["conv (3, 64, 64) opt 4"]
    lines.clear()
    cache_for(tmp_path, log=lines.append).get(64, 96)  # the next build takes the recovered file
    assert not any("rejected" in line for line in lines)
    assert len(read_cache(path)["entries"]) == 2


def test_two_builders_that_overlap_keep_each_others_timings(gpu_stubs, tmp_path):
    """Process A and B both read the file before either writes (two buckets built at once)."""
    from interactive_trt.exporter.tensorrt.timing_cache import TimingCacheFile

    path = tmp_path / "m.timing-cache"
    first, second = TimingCacheFile(path), TimingCacheFile(path)
    config_a, config_b = gpu_stubs.trt.IBuilderConfig(), gpu_stubs.trt.IBuilderConfig()
    cache_a, cache_b = first.attach(config_a), second.attach(config_b)
    cache_a.entries["bucket a"] = 1.0
    cache_b.entries["bucket b"] = 2.0
    first.save(config_a, cache_a)
    second.save(config_b, cache_b)
    assert read_cache(path)["entries"] == {"bucket a": 1.0, "bucket b": 2.0}
