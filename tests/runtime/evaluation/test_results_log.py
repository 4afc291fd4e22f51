"""The results log with several writers: each writer's own log is merged in by the log's owner, once
per key, with torn tails cut and logs of another model, scale set or flip setting refused."""

import json

import pytest

from interactive_trt.common.errors import InterActiveError
from interactive_trt.runtime.evaluation.results_log import ResultsLog, WorkerLog, parts_folder

HEADER = {"onnx_sha256": "ab" * 32, "scales": [224, 256], "flips": True}


def record(key: str, label: int = 0) -> dict:
    return {"key": key, "image": f"{key}.png", "label": label, "views": 4, "orig_top5": [0, 1, 2, 3, 4],
            "interactive_top5": [1, 0, 2, 3, 4]}


def keys_in(path):
    return [json.loads(line)["key"] for line in path.read_text().splitlines()[1:]]


def test_worker_logs_are_merged_once_per_key_and_deleted(tmp_path):
    path = tmp_path / "results.jsonl"
    log = ResultsLog(path, HEADER)
    log.append(record("a"))
    parts = parts_folder(path)
    assert parts == tmp_path / "results.parts"
    first, second = WorkerLog(parts, "w1", HEADER), WorkerLog(parts, "w2", HEADER)
    for key in ("a", "b", "c"):
        first.append(record(key))
    for key in ("c", "d"):  # a retried call: 'c' scored by both
        second.append(record(key))
    with open(second.path, "ab") as handle:  # killed while writing
        handle.write(b'{"key": "e", "ima')
    WorkerLog(parts, "w3", HEADER).handle.close()  # started, never scored anything
    (parts / "w4.jsonl").write_bytes(b'{"header": {"onnx')  # killed while writing its header
    with pytest.raises(FileExistsError):
        WorkerLog(parts, "w1", HEADER)  # one writer per file
    assert log.merge_parts() == 3
    assert keys_in(path) == ["a", "b", "c", "d"] and not parts.exists()
    reopened = ResultsLog(path, HEADER)
    assert sorted(reopened.records) == ["a", "b", "c", "d"] and reopened.records["d"] == record("d")


def test_opening_the_log_merges_what_a_killed_run_left(tmp_path):
    path = tmp_path / "results.jsonl"
    ResultsLog(path, HEADER)
    WorkerLog(parts_folder(path), "w1", HEADER).append(record("x"))
    assert "x" in ResultsLog(path, HEADER)  # what any executor opens first
    assert keys_in(path) == ["x"]


def test_a_worker_log_of_other_settings_is_refused(tmp_path):
    path = tmp_path / "results.jsonl"
    ResultsLog(path, HEADER)
    WorkerLog(parts_folder(path), "w1", {**HEADER, "scales": [256]}).append(record("x"))
    with pytest.raises(InterActiveError, match=r"w1\.jsonl: earlier results were made with different scales"):
        ResultsLog(path, HEADER)
    assert keys_in(path) == []
    fresh = ResultsLog(path, HEADER, overwrite=True)  # --overwrite drops the workers' logs too
    assert not fresh.records and not parts_folder(path).exists()


def test_a_writer_outliving_its_run_cannot_start_a_headerless_log(tmp_path):
    path = tmp_path / "results.jsonl"
    log = ResultsLog(path, HEADER)
    late = WorkerLog(parts_folder(path), "old", HEADER)  # a replica of a killed run, not yet gone
    late.append(record("a"))
    log.merge_parts()  # the next run opens the log
    current = WorkerLog(parts_folder(path), "new", HEADER)  # the next run's replica
    late.append(record("b"))  # goes into the merged, deleted file: 'b' is scored again by this run
    current.append(record("b"))
    assert sorted(p.name for p in parts_folder(path).iterdir()) == ["new.jsonl"]
    assert log.merge_parts() == 1 and keys_in(path) == ["a", "b"]
