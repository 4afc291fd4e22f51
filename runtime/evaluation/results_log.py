"""An append-only JSON-lines file of per-item results, so that a killed evaluation resumes.

The first line is a header naming what produced the results (model digest, scales, ...); a later run
with a different header is refused rather than mixed in. Each record is one line written with a
single write and fsync'd; a line torn by a crash is cut off on the next open.

A file has one writer. Several writers at once (Ray replicas) each append to a log of their own,
`<log>.parts/<writer>.jsonl`, created new under the same header (a restarted replica is a new
writer with a new file); the owner of the main log merges them in when it opens the log and after
its writers are done: records of keys it lacks are appended in one write, then the part is deleted.
A crash between the two leaves the part, whose records the next merge finds already present. So no
two processes ever append to one file, and no record is lost or counted twice.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from interactive_trt.common.errors import InterActiveError

PARTS_SUFFIX = ".parts"


def parts_folder(path: Path) -> Path:
    """Where the writers of the log at `path` keep their own logs: results.jsonl -> results.parts/."""
    path = Path(path)
    return path.with_name(path.stem + PARTS_SUFFIX)


def _append(path: Path, lines: list[str], mode: str = "ab") -> None:
    with open(path, mode) as handle:
        handle.write("".join(line + "\n" for line in lines).encode())
        handle.flush()
        os.fsync(handle.fileno())


def _complete_lines(data: bytes) -> bytes:
    """The bytes up to the last newline: what a crash mid-write cannot have torn."""
    return data if data.endswith(b"\n") else data[: data.rfind(b"\n") + 1]


def _read_records(path: Path, lines: list[str], header: dict) -> dict[str, dict]:
    """Records by key after the header line, which must equal `header`."""
    try:
        stored = json.loads(lines[0])["header"] if lines else None
    except (json.JSONDecodeError, KeyError, TypeError):
        stored = None
    if stored is None:
        raise InterActiveError(f"{path}: not a results log of this tool; use another --out or --overwrite")
    if stored != header:
        changed = sorted(k for k in set(stored) | set(header) if stored.get(k) != header.get(k))
        raise InterActiveError(f"{path}: earlier results were made with different {', '.join(changed)}; "
                               f"use another --out, or --overwrite to start again")
    records = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
            records[record["key"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InterActiveError(f"{path}:{number}: damaged record; use --overwrite to start again") from None
    return records


class ResultsLog:
    def __init__(self, path: Path, header: dict, overwrite: bool = False):
        self.path = Path(path)
        self.parts = parts_folder(self.path)
        self.header = header
        self.records: dict[str, dict] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            self.path.unlink(missing_ok=True)
            shutil.rmtree(self.parts, ignore_errors=True)
        if self.path.exists():
            self._load()
        else:
            _append(self.path, [json.dumps({"header": header})], mode="wb")
        self.merge_parts()

    def _load(self) -> None:
        data = self.path.read_bytes()
        good = _complete_lines(data)
        self.records = _read_records(self.path, good.decode("utf-8", errors="replace").splitlines(), self.header)
        if len(good) != len(data):
            with open(self.path, "r+b") as handle:  # drop the torn tail of a killed run
                handle.truncate(len(good))

    def append(self, record: dict) -> None:
        _append(self.path, [json.dumps(record)])
        self.records[record["key"]] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def merge_parts(self) -> int:
        """Moves the records of the writers' own logs into this one; returns how many were new.

        Call it only while no writer of this log runs (before they start, after they are done). A
        part of another model, scale set or flip setting is refused like the main log's header."""
        if not self.parts.is_dir():
            return 0
        added = 0
        for part in sorted(self.parts.glob("*.jsonl")):
            lines = _complete_lines(part.read_bytes()).decode("utf-8", errors="replace").splitlines()
            records = _read_records(part, lines, self.header) if lines else {}  # no line: died creating it
            new = [record for key, record in records.items() if key not in self.records]
            if new:
                _append(self.path, [json.dumps(record) for record in new])
                self.records.update((record["key"], record) for record in new)
                added += len(new)
            part.unlink()
        try:
            self.parts.rmdir()
        except OSError:
            pass  # something else is in there: left alone
        return added


class WorkerLog:
    """One writer's own log in the parts folder of a ResultsLog: created new and kept open (so it has
    exactly one writer, and a writer outliving its run, whose file a later run merged and deleted,
    writes into the deleted file instead of starting a headerless one); each record is one write,
    fsync'd before the writer reports the image done."""

    def __init__(self, parts: Path, writer: str, header: dict):
        self.path = Path(parts) / f"{writer}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "xb")
        self._write(json.dumps({"header": header}))

    def _write(self, line: str) -> None:
        self.handle.write((line + "\n").encode())
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def append(self, record: dict) -> None:
        self._write(json.dumps(record))

    def close(self) -> None:
        self.handle.close()
