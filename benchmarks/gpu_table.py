"""One table from what benchmarks/gpu_check.sh left in its folder: the GPU tests (passed, failed, skipped,
and the worst cosine each ONNX Runtime CUDA agreement test recorded), then every benchmark row by model,
backend and batch (ms per batch, the median of its rounds), then issue 22's goals.

    python benchmarks/gpu_table.py OUT_FOLDER
"""

from __future__ import annotations

import importlib.util
import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", Path(__file__).with_name("benchmark.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lines(xml_path: Path) -> list[str]:
    if not xml_path.is_file():
        return [f"- tests: no {xml_path.name} (the step did not finish)"]
    counts, lines = {"passed": 0, "failed": 0, "skipped": 0}, []
    for case in ElementTree.parse(xml_path).iter("testcase"):
        outcome = ("failed" if case.find("failure") is not None or case.find("error") is not None
                   else "skipped" if case.find("skipped") is not None else "passed")
        counts[outcome] += 1
        worst = [p.get("value") for p in case.iter("property") if p.get("name") == "worst_cosine"]
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if worst or outcome == "failed":
            lines.append(f"| {name} | {outcome} | {worst[0] if worst else ''} |")
        if outcome == "skipped":
            reason = case.find("skipped").get("message", "")[:120]
            lines.append(f"| {name} | skipped | {reason} |")
    head = [f"- tests/gpu: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped", "",
            "| test | outcome | worst cosine against ONNX Runtime on the CPU |", "| --- | --- | --- |"]
    return head + lines


def main() -> int:
    folder = Path(sys.argv[1])
    benchmark = load_benchmark()
    print(*test_lines(folder / "tests.xml"), sep="\n")
    # vgg19.json before vgg19-compile.json: a model's main rows first
    files = sorted(folder.glob("*.json"), key=lambda path: (path.stem.split("-")[0], len(path.stem)))
    runs = [json.loads(path.read_text()) for path in files]
    by_model: dict[str, dict] = {}
    for run in runs:
        entry = by_model.setdefault(run["model"], {"rows": {}, "order": [], "batches": set(), "matmul": run})
        for row in run["rows"]:
            if row["mode"] != "interactive":
                continue
            entry["rows"][(row["backend"], row["batch"])] = row
            entry["batches"].add(row["batch"])
            if row["backend"] not in entry["order"]:
                entry["order"].append(row["backend"])
        for name, mode, reason in run.get("skipped", []):
            print(f"- {run['model']} {name}: not run ({reason})")
    for model, entry in by_model.items():
        batches = sorted(entry["batches"])
        run = entry["matmul"]
        print(f"\n{model} at {run['size']}x{run['size']}, forward + InterActive, ms per batch (median); "
              f"{run['matmul']} {run['matmul_tflops']:.0f} TFLOP/s\n")
        print("| backend | " + " | ".join(f"batch {b}" for b in batches) + " | TFLOP/s at the largest |")
        print("| --- |" + " ---: |" * (len(batches) + 1))
        for name in entry["order"]:
            cells = [f"{entry['rows'][(name, b)]['ms']:.1f}" if (name, b) in entry["rows"] else "" for b in batches]
            largest = next((entry["rows"][(name, b)] for b in reversed(batches) if (name, b) in entry["rows"]), None)
            rate = f"{largest['tflops']:.1f}" if largest else ""
            print(f"| {name} | " + " | ".join(cells) + f" | {rate} |")
        keyed = {(name, "interactive", batch): row for (name, batch), row in entry["rows"].items()}
        for batch in batches:
            for label, value in benchmark.gpu_ratios(keyed, batch):
                print(f"- {model}: {label}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
