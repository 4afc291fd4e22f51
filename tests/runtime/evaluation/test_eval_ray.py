"""interactive-eval imagenet --ray on a local Ray instance (CPU, ONNX Runtime, 2 replicas): the same
report as one process on the same images; a driver killed mid-way and re-run, or a replica killed
mid-way, ends in the uninterrupted report with every image scored once and nothing lost."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime_helpers import REPO, run_cli

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'interactive-trt[ray]')")

SYNSETS = [f"n{index:08d}" for index in range(1000)]
IMAGES = 10
ENV = dict(os.environ, RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", RAY_USAGE_STATS_ENABLED="0")


@pytest.fixture(scope="module")
def val(photos, tmp_path_factory):
    """Ten crops of real photos in three synset folders, and the synset list."""
    root = tmp_path_factory.mktemp("ray-val") / "val"
    names = sorted(photos)
    for index in range(IMAGES):
        rgb = photos[names[index % len(names)]]
        top, left = 12 * index, 16 * index
        crop = np.ascontiguousarray(rgb[top:top + 300, left:left + 360])
        folder = root / SYNSETS[index % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(folder / f"image_{index:02d}.png")
    words = root.parent / "synsets.txt"
    words.write_text("".join(f"{s} class {i}\n" for i, s in enumerate(SYNSETS)))
    return root, words


def command(small_model, val, out, *extra):
    root, words = val
    return ["imagenet", "--engine", small_model, "--val", root, "--synsets", words, "--scales", "224,256",
            "--batch-size", "1", "--out", out, *extra]


def read_run(out: Path):
    """report.json and the results log as {key: record}, asserting one record per image."""
    lines = (out / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines[1:]]
    by_key = {record["key"]: record for record in records}
    assert len(by_key) == len(records), "an image was logged twice"
    assert not (out / "results.parts").exists(), "the replicas' logs were not merged"
    return json.loads((out / "report.json").read_text()), json.loads(lines[0]), by_key


@pytest.fixture(scope="module")
def single(small_model, val, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray-single") / "eval"
    result = run_cli("interactive_trt.runtime.cli.eval", *command(small_model, val, out))
    assert result.returncode == 0, result.stderr
    return read_run(out)


def start(small_model, val, out):
    """The --ray command in a session of its own, so that it and the local Ray it starts can be killed."""
    args = [sys.executable, "-m", "interactive_trt.runtime.cli.eval",
            *map(str, command(small_model, val, out, "--ray", "--ray-workers", "2"))]
    return subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def worker_logs(out: Path) -> list[Path]:
    parts = out / "results.parts"
    return sorted(parts.glob("*.jsonl")) if parts.is_dir() else []


def logged_keys(paths) -> set[str]:
    keys = set()
    for path in paths:
        for line in path.read_text().splitlines()[1:]:
            try:
                keys.add(json.loads(line)["key"])
            except json.JSONDecodeError:
                pass  # a torn last line: not a record
    return keys


def wait_for_a_record(process, out: Path) -> Path:
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        for path in worker_logs(out):
            if logged_keys([path]):
                return path
        time.sleep(0.01)
    raise AssertionError("no replica logged a record before the run ended")


def kill_session(process) -> None:
    """SIGKILL to the command and every process of its session (Ray gives its workers process groups
    of their own, in the session of the command that started it); returns once none is left running."""
    def members():
        found = []
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and os.getsid(int(entry)) == process.pid:
                    state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry))
            except (OSError, IndexError):
                pass
        return found

    deadline = time.monotonic() + 60
    while (running := members()) and time.monotonic() < deadline:
        for pid in running:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    process.wait()


def test_ray_report_equals_the_single_process_report(small_model, val, single, tmp_path):
    out = tmp_path / "eval"
    result = run_cli("interactive_trt.runtime.cli.eval", *command(small_model, val, out, "--ray", "--ray-workers", "2"),
                     env=ENV)
    assert result.returncode == 0, result.stderr
    assert f"{IMAGES} images scored, 0 already done" in result.stderr
    report, header, records = read_run(out)
    assert report == single[0] and header == single[1] and records == single[2]
    assert report["summary"]["images"] == IMAGES and all(r["views"] == 4 for r in records.values())


def test_driver_killed_mid_way_then_rerun_equals_an_uninterrupted_run(small_model, val, single, tmp_path):
    out = tmp_path / "eval"
    process = start(small_model, val, out)
    wait_for_a_record(process, out)
    process.send_signal(signal.SIGKILL)  # the driver; then the local Ray it started, as a dead machine would
    process.wait()
    kill_session(process)
    assert process.returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()
    kept = logged_keys(worker_logs(out) + [out / "results.jsonl"])
    assert 1 <= len(kept) < IMAGES, "the run finished before it could be killed"
    resumed = run_cli("interactive_trt.runtime.cli.eval", *command(small_model, val, out, "--ray", "--ray-workers", "2"),
                      env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{IMAGES - len(kept)} images scored, {len(kept)} already done" in resumed.stderr, resumed.stderr
    assert read_run(out) == single


def test_a_replica_killed_mid_way_is_replaced_and_nothing_is_lost(small_model, val, single, tmp_path):
    out = tmp_path / "eval"
    process = start(small_model, val, out)
    try:
        log = wait_for_a_record(process, out)
        replica = int(log.stem.rsplit("-", 2)[1])  # ray-<host>-<pid>-<id>.jsonl
        os.kill(replica, signal.SIGKILL)
        assert process.wait(timeout=300) == 0, "the run did not survive a replica's death"
    finally:
        kill_session(process)
    assert read_run(out) == single
