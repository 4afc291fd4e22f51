"""Large jobs: a real run killed with SIGKILL part-way finishes on the next run without redoing
finished images and equals an uninterrupted run; the Ray scale-out gives the same features."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from interactive_trt.runtime.features.store import load_features
from runtime_helpers import REPO, run_cli, write_image_folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("jobs") / "shapes", per_class=16)


@pytest.fixture(scope="module")
def uninterrupted(small_model, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run_cli("interactive_trt.runtime.cli.features", dataset, "--engine", small_model, "--out", out,
                     "--batch-size", "1", "--shard-size", "2")
    assert result.returncode == 0, result.stderr
    return load_features(out / "shapes.npz")


def assert_same(a, b):
    assert a.keys == b.keys and a.classes == b.classes
    np.testing.assert_array_equal(a.labels, b.labels)
    assert sorted(a.arrays) == sorted(b.arrays)
    for name in a.arrays:
        if name != "paths":
            np.testing.assert_allclose(a.arrays[name], b.arrays[name], rtol=1e-6, atol=1e-6, err_msg=name)


def test_sigkill_part_way_then_resume_equals_an_uninterrupted_run(small_model, dataset, uninterrupted, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "interactive_trt.runtime.cli.features", str(dataset), "--engine", str(small_model),
               "--out", str(out), "--batch-size", "1", "--shard-size", "2"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / "shapes.parts"
    deadline = time.monotonic() + 300
    while len(list(parts.glob("part-*.npz"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(0).uniform(0, 0.2))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "shapes.npz").exists()
    finished = len(list(parts.glob("part-*.npz"))) * 2
    assert 4 <= finished < 48
    resumed = run_cli("interactive_trt.runtime.cli.features", dataset, "--engine", small_model, "--out", out,
                      "--batch-size", "1", "--shard-size", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished} of 48 images already done; resuming" in resumed.stderr
    assert_same(load_features(out / "shapes.npz"), uninterrupted)
    assert not parts.exists()


def test_ray_scale_out_gives_the_single_process_features(small_model, dataset, uninterrupted, tmp_path):
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'interactive-trt[ray]')")
    out = tmp_path / "out"
    env = dict(os.environ, RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_USAGE_STATS_ENABLED="0")
    result = run_cli("interactive_trt.runtime.cli.features", dataset, "--engine", small_model, "--out", out, "--ray",
                     "--ray-workers", "2", "--shard-size", "5", "--batch-size", "1", env=env)
    assert result.returncode == 0, result.stderr
    features = load_features(out / "shapes.npz")
    assert features.meta["scale_out"] == "ray (2 replicas)"
    assert_same(features, uninterrupted)
