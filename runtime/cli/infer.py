"""`interactive-infer`: parses options, then calls the runtime's library functions.

Exit codes: 0 every image done, 1 usage or model error (one line), 2 some images failed (listed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.markup import escape

from interactive_trt.common.cli import err, fail, run_app
from interactive_trt.runtime.cli import PRECISION
from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.manifest import atomic_write_bytes

from interactive_trt.runtime.pictures.heatmap import overlay
from interactive_trt.runtime.inference.inputs import Failure, expand_inputs
from interactive_trt.runtime.inference.labels import read_labels
from interactive_trt.runtime.inference.pipeline import Result, batched_inference
from interactive_trt.runtime.inference.session import open_model, progress_bar, start_runner
from interactive_trt.runtime.inference.writers import read_result, result_path, write_failures, write_png, write_result

app = typer.Typer(add_completion=False, no_args_is_help=True)


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected HxW, e.g. 512x512") from None
    return height, width


def top_classes(scores: np.ndarray, labels: list[str], k: int) -> list[tuple[int, str, float]]:
    order = np.argsort(-scores)[:k]
    return [(int(i), labels[i], float(scores[i])) for i in order]


def format_top(top) -> str:
    return ", ".join(f"{name} ({score:.3g})" for _, name, score in top)


@app.command()
def infer(
    paths: list[str] = typer.Argument(..., help="images, folders (searched recursively) or globs"),
    engine: Path = typer.Option(..., "--engine", help="exported model: .onnx file, its .json manifest, "
                                "or a folder holding one model (and its TensorRT engines)"),
    backend: str = typer.Option("onnxruntime", "--backend", help="onnxruntime | openvino | tensorrt | torch"),
    precision: str = PRECISION,
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    out: Optional[Path] = typer.Option(None, "--out", help="write <image>.npz (features and gamma maps) here"),
    heatmaps: bool = typer.Option(False, "--heatmaps", help="also write <image>.<layer>.png overlays"),
    heatmap_layers: Optional[str] = typer.Option(None, "--heatmap-layers", help="comma-separated layers "
                                                 "(default: every gamma map)"),
    labels_file: Optional[Path] = typer.Option(None, "--labels", help="class names (synset words file)"),
    topk: int = typer.Option(5, "--topk", help="classes to print with the ImageNet head"),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="images per batch (per resolution)"),
    workers: int = typer.Option(2, "--workers", min=1, help="image decoding threads"),
    size: Optional[str] = typer.Option(None, "--size", help="force one input size HxW instead of the "
                                       "paper's resize rule"),
    overwrite: bool = typer.Option(False, "--overwrite", help="recompute images whose results exist"),
) -> None:
    """Run an exported InterActive model on images: features, weight maps, heat-maps, ImageNet top-k."""
    if heatmaps and out is None:
        fail("--heatmaps needs --out DIR")
    try:
        forced = parse_size(size)
        model = open_model(engine)
        manifest = model.manifest
        if forced:
            manifest.model.spatial_sizes(*forced)
        gamma_names = [n for n in manifest.output_names if n.endswith("gamma")]
        if heatmap_layers:
            wanted = [f"{layer.strip()}.gamma" if layer.strip() != "imagenet" else "imagenet.gamma"
                      for layer in heatmap_layers.split(",")]
            unknown = [w for w in wanted if w not in gamma_names]
            if unknown:
                fail(f"--heatmap-layers: no gamma map for {', '.join(unknown)}; have {', '.join(gamma_names)}")
            gamma_names = wanted
        has_head = "imagenet.scores_orig" in manifest.output_names
        labels = None
        if has_head:
            classes = manifest.model.channels_of(manifest.model.head_logits)
            labels = read_labels(labels_file, classes)
        runner = start_runner(model, backend, device, precision)
    except InterActiveError as exc:
        fail(str(exc))
    inputs, failures = expand_inputs(paths)
    done, skipped = 0, 0
    predictions = []
    todo = []
    for item in inputs:
        stored = None if (out is None or overwrite) else read_result(result_path(out, item.key), manifest.onnx_sha256)
        if stored is not None and (not heatmaps or all(
                (out / f"{item.key}.{name.removesuffix('.gamma')}.png").exists() for name in gamma_names)):
            skipped += 1
            if has_head:
                predictions.append(prediction_line(item.path, stored[1].get("size"), stored[0], labels, topk))
            continue
        todo.append(item)

    def on_result(result: Result) -> None:
        nonlocal done
        if out is not None:
            meta = {"image": str(result.item.path), "size": list(result.size),
                    "original_size": list(result.rgb.shape[:2]), "onnx_sha256": manifest.onnx_sha256,
                    "weights_sha256": manifest.weights_sha256, "config": manifest.config, "p": manifest.p,
                    "backend": backend, "precision": precision}
            if heatmaps:
                for name in gamma_names:
                    layer = name.removesuffix(".gamma")
                    write_png(out / f"{result.item.key}.{layer}.png", overlay(result.rgb, result.outputs[name]))
            write_result(result_path(out, result.item.key), result.outputs, meta)
        if has_head:
            line = prediction_line(result.item.path, list(result.size), result.outputs, labels, topk)
            predictions.append(line)
            progress.console.print(f"{line['image']} [{line['size'][0]}x{line['size'][1]}]\n"
                                   f"  original:    {format_top(line['original'])}\n"
                                   f"  InterActive: {format_top(line['interactive'])}", highlight=False, soft_wrap=True)
        done += 1
        progress.advance(task)

    def on_failure(failure: Failure) -> None:
        failures.append(failure)
        progress.console.print(f"[red]failed:[/] {escape(str(failure.path))}: {escape(failure.reason)}", highlight=False)
        progress.advance(task)

    progress = progress_bar()
    try:
        with progress:
            task = progress.add_task(runner.name, total=len(todo), status="")
            batched_inference(runner, manifest.model, todo, batch_size=batch_size, workers=workers, size=forced,
                              on_result=on_result, on_failure=on_failure)
    except KeyboardInterrupt:
        fail(f"interrupted after {done} images; run the same command again to resume", code=130)
    finally:
        runner.deactivate()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if predictions:
            lines = "".join(json.dumps(p) + "\n" for p in predictions)
            atomic_write_bytes(out / "predictions.jsonl", lines.encode())
        write_failures(out / "failures.tsv", failures)
    err.print(f"{done} done, {skipped} already done (skipped), {len(failures)} failed", highlight=False)
    if failures:
        err.print("failures:", highlight=False)
        for failure in failures:
            err.print(f"  {failure.path}: {failure.reason}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2)


def prediction_line(path, size, outputs, labels, k) -> dict:
    line = {"image": str(path), "size": size,
            "original": top_classes(np.asarray(outputs["imagenet.scores_orig"]), labels, k)}
    if "imagenet.scores_interactive" in outputs:
        line["interactive"] = top_classes(np.asarray(outputs["imagenet.scores_interactive"]), labels, k)
    else:
        line["interactive"] = []
    return line


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
