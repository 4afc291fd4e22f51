"""Engine files are refused, in one line with the rebuild command, when damaged, stale or foreign;
all of it is checked from the header, before TensorRT would see the bytes (no GPU needed)."""

from dataclasses import replace

import pytest

from interactive_trt.contracts.engine_file import EngineError, EngineKey, read_engine, read_header, write_engine

KEY = EngineKey(onnx_sha256="ab" * 32, height=512, width=512, min_batch=1, max_batch=32, precision="fp16",
                tensorrt_version="10.9.0", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
PLAN = bytes(range(256)) * 40


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / KEY.file_name("vgg19_last_p2_both")
    write_engine(path, PLAN, KEY, extra={"build_seconds": 1.5})
    return path


def test_round_trip(engine):
    key, plan = read_engine(engine, expected=replace(KEY, max_batch=8))
    assert key == KEY and plan == PLAN
    assert read_header(engine)[0]["build_seconds"] == 1.5
    assert engine.name == "vgg19_last_p2_both_512x512_b1-32_fp16_trt10.9.0_nvidia-h100-80gb-hbm3-sm90_abababab.engine"


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) - 100], "truncated engine"),
    (lambda data: data[:20], "damaged or truncated engine header"),
    (lambda data: b"", "bad magic"),
    (lambda data: b"\x00" * 64 + data, "bad magic"),
    (lambda data: data[:-1] + bytes([data[-1] ^ 1]), r"corrupted \(digest mismatch\)"),
])
def test_damaged_files(engine, damage, message):
    engine.write_bytes(damage(engine.read_bytes()))
    with pytest.raises(EngineError, match=message) as caught:
        read_engine(engine, expected=KEY)
    assert "\n" not in str(caught.value) and str(engine) in str(caught.value)


@pytest.mark.parametrize("change, message", [
    ({"onnx_sha256": "cd" * 32}, "stale engine, built from another ONNX model"),
    ({"gpu_name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}, "built for NVIDIA H100 80GB HBM3 .sm 9.0."),
    ({"tensorrt_version": "10.13.0"}, "built with TensorRT 10.9.0"),
    ({"height": 448}, "is for 512x512, not 448x512"),
    ({"precision": "fp32"}, "engine is fp16, fp32 was asked for"),
    ({"max_batch": 64}, "takes batches 1..32, not 64"),
])
def test_foreign_or_stale_engines_name_the_rebuild(engine, change, message):
    with pytest.raises(EngineError, match=message) as caught:
        read_engine(engine, expected=replace(KEY, **change))
    if "asked for" not in message and "is for" not in message:
        assert "interactive-export ... --trt" in str(caught.value)


def test_the_batch_an_engine_is_tuned_for_is_part_of_its_key(tmp_path):
    tuned = replace(KEY, opt_batch=4)
    path = tmp_path / tuned.file_name("m")
    assert "_b1-32-opt4_fp16_" in path.name
    write_engine(path, PLAN, tuned)
    assert read_engine(path, expected=tuned)[0].opt_batch == 4
    with pytest.raises(EngineError, match=r"tuned for batch 4, not 8; .* --max-batch 32 --opt-batch 8"):
        read_engine(path, expected=replace(tuned, opt_batch=8))
