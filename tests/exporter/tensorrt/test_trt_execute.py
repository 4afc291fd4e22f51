"""Running one engine (exporter.tensorrt.execute) against the stand-ins in tests/stubs/gpu_stack, which play
TensorRT's runtime and cuda-python on a GPU machine: what is tested is our side of the calls (sizes copied,
shapes refused, one logger), not TensorRT."""

from types import SimpleNamespace

import numpy as np
import pytest

from interactive_trt.exporter.tensorrt import cuda


def make_slot(stubs, height=32, width=64, max_batch=4):
    from interactive_trt.exporter.tensorrt.execute import ResolutionSlot

    plan = stubs.trt.plan_for("image", (3, height, width), 1, max_batch, max_batch)
    runtime = stubs.trt.Runtime(cuda.logger())
    stream = cuda.call("cudaStreamCreate", stubs.cudart.cudaStreamCreate())
    return ResolutionSlot(runtime, plan, "image", max_batch, height, width), stream


def test_a_partial_batch_copies_exactly_its_bytes_and_gets_its_outputs(gpu_stubs):
    slot, stream = make_slot(gpu_stubs)
    images = np.random.default_rng(0).standard_normal((3, 3, 32, 64), dtype=np.float32)
    out = slot.run(images, stream)
    np.testing.assert_allclose(out["double"], 2 * images)
    np.testing.assert_allclose(out["mean"][:, 0], images.reshape(3, -1).mean(axis=1), rtol=1e-5)
    assert gpu_stubs.cudart.COPIES[0] == ("h2d", images.nbytes)
    assert ("d2h", 3 * 4) in gpu_stubs.cudart.COPIES  # the mean: 3 images x 1 float
    slot.free()


def test_the_copy_is_the_bindings_size_not_the_callers_array(gpu_stubs):
    """A float64 batch used to be copied with its own nbytes: twice the float32 binding, past its end."""
    slot, stream = make_slot(gpu_stubs)
    images = np.ones((4, 3, 32, 64), dtype=np.float64)
    out = slot.run(images, stream)
    assert gpu_stubs.cudart.COPIES[0] == ("h2d", 4 * 3 * 32 * 64 * 4)
    np.testing.assert_allclose(out["double"], 2.0)
    slot.free()


@pytest.mark.parametrize("shape, message", [
    ((5, 3, 32, 64), "takes batches of 1 to 4, not 5"),
    ((2, 3, 64, 32), "TensorRT refused input shape 2x3x64x32 for the 32x64 engine"),
])
def test_a_shape_the_engine_refuses_is_one_line(gpu_stubs, shape, message):
    from interactive_trt.exporter.tensorrt.execute import EngineRunError

    slot, stream = make_slot(gpu_stubs)
    with pytest.raises(EngineRunError, match=message) as caught:
        slot.run(np.zeros(shape, dtype=np.float32), stream)
    assert "\n" not in str(caught.value)
    slot.free()
    assert not gpu_stubs.cudart.DEVICE and not gpu_stubs.cudart.HOST


def test_one_logger_serves_builders_runtimes_and_export(gpu_stubs, tmp_path):
    from interactive_trt.exporter.tensorrt.build import TensorRTBuilder
    from interactive_trt.exporter.tensorrt.verify_engines import run_engine

    manifest = SimpleNamespace(input_name="image", precision="fp32")
    for _ in range(2):
        TensorRTBuilder(tmp_path / "m.onnx", manifest, tmp_path / "m.timing-cache", log=lambda m: None)
    plan = gpu_stubs.trt.plan_for("image", (3, 32, 32), 1, 2, 2)
    run_engine(plan, manifest, [np.zeros((1, 3, 32, 32), np.float32)], 2)
    make_slot(gpu_stubs)
    assert len(gpu_stubs.trt.LOGGERS) == 1
