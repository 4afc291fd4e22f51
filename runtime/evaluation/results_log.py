"""An append-only JSON-lines file of per-item results, so that a killed evaluation resumes.

The first line is a header naming what produced the results (model digest, scales, ...); a later run
with a different header is refused rather than mixed in. Each record is one line written with a
single write and fsync'd; a line torn by a crash is cut off on the next open.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from interactive_trt.common.errors import InterActiveError


class ResultsLog:
    def __init__(self, path: Path, header: dict, overwrite: bool = False):
        self.path = Path(path)
        self.header = header
        self.records: dict[str, dict] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            self.path.unlink(missing_ok=True)
        if self.path.exists():
            self._load()
        else:
            self._write_lines([json.dumps({"header": header})], mode="wb")

    def _load(self) -> None:
        data = self.path.read_bytes()
        good = data if data.endswith(b"\n") else data[: data.rfind(b"\n") + 1]
        lines = good.decode("utf-8", errors="replace").splitlines()
        try:
            header = json.loads(lines[0])["header"] if lines else None
        except (json.JSONDecodeError, KeyError, TypeError):
            header = None
        if header is None:
            raise InterActiveError(f"{self.path}: not a results log of this tool; use another --out or --overwrite")
        if header != self.header:
            changed = sorted(k for k in set(header) | set(self.header) if header.get(k) != self.header.get(k))
            raise InterActiveError(f"{self.path}: earlier results were made with different {', '.join(changed)}; "
                                   f"use another --out, or --overwrite to start again")
        for number, line in enumerate(lines[1:], start=2):
            try:
                record = json.loads(line)
                self.records[record["key"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InterActiveError(f"{self.path}:{number}: damaged record; use --overwrite to start again") from None
        if len(good) != len(data):
            with open(self.path, "r+b") as handle:  # drop the torn tail of a killed run
                handle.truncate(len(good))

    def _write_lines(self, lines: list[str], mode: str = "ab") -> None:
        with open(self.path, mode) as handle:
            handle.write("".join(line + "\n" for line in lines).encode())
            handle.flush()
            os.fsync(handle.fileno())

    def append(self, record: dict) -> None:
        self._write_lines([json.dumps(record)])
        self.records[record["key"]] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records
