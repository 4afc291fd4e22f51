"""The TensorRT runner's GPU memory, against the stand-ins in tests/stubs/gpu_stack (stub `tensorrt` plays
TensorRT 11.1's runtime with user-managed activation memory; stub cuda-python holds 'device memory' in Python,
so what is allocated, shared and freed can be counted): contexts share one activation block sized for the
batch run, buffers are sized for that batch, least recently used engines are unloaded past the budget."""

from types import SimpleNamespace

import numpy as np
import pytest

ACTIVATION = 1 << 20  # the stub engine's activation bytes per image


def io_bytes(height, width, batch):
    return batch * (2 * 3 * height * width * 4 + 4)  # image, double (3 x H x W floats) and mean (1 float)


@pytest.fixture
def model(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    manifest = SimpleNamespace(input_name="image", precision="fp32", onnx_sha256="ab" * 32, engines=[],
                               model=None)
    return SimpleNamespace(manifest=manifest, onnx_path=tmp_path / "m.onnx", folder=tmp_path)


def runner_for(model, lines=None, **options):
    from interactive_trt.runtime.backends.tensorrt import TensorRTRunner

    runner = TensorRTRunner(model, device="cuda", log=(lines.append if lines is not None else lambda m: None),
                            **options)
    runner.activate_impl()
    return runner


def images(batch, height, width, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, height, width), dtype=np.float32)


def test_contexts_share_one_activation_block_sized_for_the_batch_run(gpu_stubs, model):
    runner = runner_for(model, batch_size=2, max_batch=8)
    for height, width in ((64, 64), (96, 64)):
        batch = images(2, height, width)
        np.testing.assert_allclose(runner.infer_impl(batch)["double"], 2 * batch)
    first, second = runner.slots.values()
    assert first.context.device_memory[0] == second.context.device_memory[0] == runner.scratch.pointer
    assert runner.scratch.size == 2 * ACTIVATION  # batch 2, not the engines' 8
    assert (first.capacity, first.io_bytes) == (2, io_bytes(64, 64, 2))
    assert first.context.strategy == gpu_stubs.trt.ExecutionContextAllocationStrategy.USER_MANAGED
    runner.deactivate_impl()
    assert not gpu_stubs.cudart.DEVICE and not gpu_stubs.cudart.HOST  # everything handed back


def test_engines_are_tuned_for_the_batch_the_command_runs(gpu_stubs, model):
    runner = runner_for(model, batch_size=2)
    runner.infer_impl(images(2, 64, 64))
    (engine,) = model.folder.glob("*.engine")
    assert "_b1-32-opt2_" in engine.name
    runner.deactivate_impl()


def test_least_recently_used_engines_are_unloaded_past_the_budget(gpu_stubs, model):
    lines = []
    one = io_bytes(64, 64, 1) + 400  # a slot's buffers plus its (stub-sized) plan
    runner = runner_for(model, lines, batch_size=1, max_batch=4, memory_budget=ACTIVATION + int(2.5 * one))
    sizes = [(64, 64), (128, 32), (32, 128)]  # one area, so one slot's size
    for size in sizes:
        runner.infer_impl(images(1, *size))
    assert list(runner.slots) == sizes[1:] and any("unloaded the 64x64 engine" in line for line in lines)
    runner.infer_impl(images(1, 128, 32))  # used again: now the most recent
    runner.infer_impl(images(1, 64, 64))
    assert list(runner.slots) == [(128, 32), (64, 64)]
    assert runner.held_bytes() <= runner.memory_budget
    live = sum(len(block) for block in gpu_stubs.cudart.DEVICE.values())
    assert live == runner.scratch.size + sum(slot.io_bytes for slot in runner.slots.values())
    runner.deactivate_impl()


def test_a_larger_batch_grows_the_buffers_and_a_too_large_one_is_split(gpu_stubs, model):
    runner = runner_for(model, batch_size=2, max_batch=4)
    batch = images(7, 32, 32)
    out = runner.infer_impl(batch)
    np.testing.assert_allclose(out["double"], 2 * batch)
    np.testing.assert_allclose(out["mean"][:, 0], batch.reshape(7, -1).mean(axis=1), rtol=1e-5)
    (slot,) = runner.slots.values()
    assert slot.capacity == 4 and runner.scratch.size == 4 * ACTIVATION
    runner.deactivate_impl()


def test_the_default_budget_is_three_quarters_of_the_free_gpu_memory(gpu_stubs, model):
    gpu_stubs.cudart.reset(total=8 << 30)
    runner = runner_for(model)
    assert runner.memory_budget == 6 << 30
    runner.deactivate_impl()


def test_without_user_managed_memory_each_context_owns_its_activations(gpu_stubs, model, monkeypatch):
    """TensorRT before 10 has no ExecutionContextAllocationStrategy: contexts allocate their own."""
    monkeypatch.delattr(gpu_stubs.trt, "ExecutionContextAllocationStrategy")
    runner = runner_for(model, batch_size=1, max_batch=4)
    runner.infer_impl(images(1, 32, 32))
    (slot,) = runner.slots.values()
    assert slot.scratch is None and runner.scratch.size == 0
    assert slot.device_bytes == slot.plan_bytes + slot.io_bytes + 4 * ACTIVATION
    runner.deactivate_impl()
