"""Fuzz `interactive-export onnx` with random networks (tests/support/random_networks.py): each seed's network
goes through torch.onnx (an exporter and opset drawn from the seed), the import, the rebuilt forward against
the file, and the explicit graph against autograd on noise (judged against float64 where float32 misses, as
export verification does); with --full, the whole export with every check. One JSON line per seed is
appended to --out (seeds already there are skipped: a run can be resumed); a summary is printed at the end.

    .venv/bin/python scripts/fuzz_import.py --seeds 0:200 --full --out fuzz.jsonl

What it found on 2026-12-07 is in docs/onnx-import.md ("Fuzzing the import")."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def outcome(seed: int, work: Path, full: bool, dynamo: bool) -> dict:
    import onnx_builders as build
    from random_networks import graph_misses, random_net
    from interactive_trt.common.errors import InterActiveError, OnnxImportError, SpecError
    from interactive_trt.exporter.networks.onnx_import import import_onnx, verify_against_source

    record: dict = {"seed": seed}
    model, described = random_net(seed)
    record["net"] = described
    model = build.randomise_batchnorm(model, seed)
    draw = random.Random(seed + 1000)
    exporter = draw.choice(["folded", "unfolded", "folded"] + (["dynamo"] if dynamo else []))
    opset = draw.choice([13, 14, 15, 16, 17, 18])
    record["export"] = f"{exporter} opset {opset}"
    try:
        path = build.export_torch(model, work / f"fuzz{seed}.onnx", exporter, size=64, opset=opset)
    except Exception as exc:  # noqa: BLE001 - torch.onnx's own failure: not the import's
        return {**record, "result": "not exported", "why": f"{type(exc).__name__}: {str(exc)[:200]}"}
    try:
        imported = import_onnx(path)
    except (SpecError, OnnxImportError) as exc:
        return {**record, "result": "refused", "why": str(exc).split(": ", 1)[-1][:300]}
    misses = [report.summary() for report in verify_against_source(imported, ()) if not report.passed]
    misses += graph_misses(imported.spec, imported.weights, seed)
    if full:
        from interactive_trt.exporter.onnx.export import export_model
        from interactive_trt.exporter.onnx.request import IMPORTED, ExportRequest

        try:
            export_model(ExportRequest(model=IMPORTED, source=path, out=work / f"export{seed}"), log=lambda line: None)
        except SpecError as exc:  # refused in one line before any file (no default feature layer)
            if not misses:
                return {**record, "result": "refused", "why": f"export: {str(exc).split(': ', 1)[-1][:300]}"}
            misses.append(f"export: {str(exc)[:400]}")
        except InterActiveError as exc:
            misses.append(f"export: {str(exc)[:400]}")
    return {**record, "result": "miss" if misses else "ok", "misses": misses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0:50", help="FIRST:END, END excluded")
    parser.add_argument("--full", action="store_true", help="also the whole export with every check")
    parser.add_argument("--dynamo", action="store_true", help="draw torch.onnx's dynamo exporter too (onnxscript)")
    parser.add_argument("--out", type=Path, default=Path("fuzz.jsonl"))
    args = parser.parse_args()
    sys.path[:0] = [str(REPO / "tests" / "support")]
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(2)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["seed"] for line in args.out.read_text().splitlines() if line.strip()}
    first, end = (int(part) for part in args.seeds.split(":"))
    with tempfile.TemporaryDirectory(prefix="fuzz-import-") as folder:
        for seed in range(first, end):
            if seed in done:
                continue
            started = time.perf_counter()
            try:
                record = outcome(seed, Path(folder), args.full, args.dynamo)
            except Exception as exc:  # noqa: BLE001 - a traceback is a finding
                record = {"seed": seed, "result": "crash", "why": f"{type(exc).__name__}: {exc}",
                          "trace": traceback.format_exc()[-2000:]}
            record["seconds"] = round(time.perf_counter() - started, 1)
            with args.out.open("a") as stream:
                stream.write(json.dumps(record) + "\n")
            print(seed, record["result"], (record.get("why") or "; ".join(record.get("misses", [])))[:160], flush=True)
    records = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    print(", ".join(f"{result} {count}" for result, count in Counter(r["result"] for r in records).most_common()),
          f"of {len(records)}")


if __name__ == "__main__":
    main()
