"""`interactive-features`: the nine layers' pooled features of a dataset, one file per split.

Each split is an ImageFolder; the output `<out>/<split>.npz` holds, per feature layer, the Orig and
InterActive AVG/MAX vectors, plus keys, paths, labels, class names and the model's provenance.
Resumable: finished images live in atomic shards until the split is complete.

Exit codes: 0 done, 1 usage or data error (one line), 2 done but some images failed (listed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from interactive_trt.common.cli import err, fail, run_app
from interactive_trt.runtime.cli import PRECISION
from interactive_trt.common.errors import InterActiveError

from interactive_trt.runtime.evaluation.datasets import image_folder, read_synsets
from interactive_trt.runtime.features.extract import extract_into
from interactive_trt.runtime.features.store import FeatureStore, is_feature_output
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.session import open_model, progress_bar, provenance, start_runner
from interactive_trt.runtime.inference.writers import write_failures

app = typer.Typer(add_completion=False, no_args_is_help=True)


def parse_split(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep:
        folder = text
        name = Path(text.rstrip("/")).name or "all"
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise typer.BadParameter(f"{text!r}: a split name may hold letters, digits, - and _ only")
    return name, Path(folder)


@app.command()
def features(
    splits: list[str] = typer.Argument(..., help="ImageFolder datasets, as DIR (split named after the folder) "
                                       "or NAME=DIR"),
    engine: Path = typer.Option(..., "--engine", help="exported model with the feature outputs"),
    out: Path = typer.Option(..., "--out", help="folder for <split>.npz"),
    synsets_file: Optional[Path] = typer.Option(None, "--synsets", help="class list for the labels "
                                                "(default: sorted class folders)"),
    backend: str = typer.Option("onnxruntime", "--backend", help="onnxruntime | openvino | tensorrt | torch"),
    precision: str = PRECISION,
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="images per batch (per resolution)"),
    workers: int = typer.Option(2, "--workers", min=1, help="image decoding threads"),
    shard_size: int = typer.Option(64, "--shard-size", min=1, help="images per shard file while running"),
    ray: bool = typer.Option(False, "--ray", help="run on a Ray cluster (Ray Data, one model per worker)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="cluster address (default: start "
                                              "or join a local one)"),
    ray_workers: int = typer.Option(2, "--ray-workers", min=1, help="model replicas on the cluster"),
    overwrite: bool = typer.Option(False, "--overwrite", help="discard earlier results of these splits"),
) -> None:
    """Extract Orig and InterActive AVG/MAX features of every feature layer, one file per split."""
    parsed = [parse_split(text) for text in splits]
    names = [name for name, _ in parsed]
    if len(set(names)) != len(names):
        fail(f"two splits share a name ({', '.join(names)}); name them with NAME=DIR")
    try:
        model = open_model(engine)
        manifest = model.manifest
        if not any(is_feature_output(name) for name in manifest.output_names):
            fail(f"{model.onnx_path}: no feature outputs; export with --head features (or both)")
        synsets = read_synsets(synsets_file) if synsets_file else None
        datasets = [(name, image_folder(folder, synsets)) for name, folder in parsed]
        # a model the backend cannot load is refused here, not inside a worker half-way through
        runner = start_runner(model, backend, "cpu" if ray else device, precision)
        if ray:
            runner.deactivate()
            runner = None
    except InterActiveError as exc:
        fail(str(exc))
    info = provenance(model, backend, precision)
    err.print("features from " + ", ".join(f"{k}={v}" for k, v in info.items()), highlight=False, soft_wrap=True)
    all_failures: list[Failure] = []
    try:
        for name, dataset in datasets:
            header = {"onnx_sha256": manifest.onnx_sha256, "split": name, "root": str(dataset.root.resolve()),
                      "classes": dataset.classes}
            try:
                store = FeatureStore(out, name, header, overwrite=overwrite)
            except InterActiveError as exc:
                fail(str(exc))
            if store.is_complete():
                err.print(f"{name}: {store.final} is complete already (use --overwrite to redo it)", highlight=False)
                continue
            for skip in dataset.skips:
                err.print(f"{name}: skipped {skip.path}: {skip.reason}", highlight=False, soft_wrap=True, markup=False)
            done = store.done()
            todo = [image for image in dataset.images if image.item.key not in done]
            if done:
                err.print(f"{name}: {len(dataset.images) - len(todo)} of {len(dataset.images)} images already done; "
                          f"resuming", highlight=False)
            failures: list[Failure] = []
            progress = progress_bar()
            with progress:
                task = progress.add_task(name, total=len(dataset.images), completed=len(dataset.images) - len(todo),
                                         status="")

                def on_done(key: str) -> None:
                    progress.advance(task)

                def on_failure(failure: Failure) -> None:
                    failures.append(failure)
                    progress.console.print(f"[red]failed:[/] {failure.path}: {failure.reason}", highlight=False)
                    progress.advance(task)

                if todo and ray:
                    from interactive_trt.runtime.features.ray_scaleout import extract_on_ray

                    extract_on_ray(model, backend, device, todo, store, precision=precision, address=ray_address, replicas=ray_workers,
                                   shard_size=shard_size, batch_size=batch_size, on_done=on_done,
                                   on_failure=on_failure)
                elif todo:
                    extract_into(runner, manifest.model, todo, store.writer(shard_size), batch_size=batch_size,
                                 workers=workers, on_done=on_done, on_failure=on_failure)
            meta = {**info, "scale_out": f"ray ({ray_workers} replicas)" if ray else "single process",
                    "feature_layers": list(manifest.model.feature_layers),
                    "skipped": [vars(s) for s in dataset.skips], "failures": [vars(f) for f in failures]}
            count = store.assemble([(image.item.key, str(image.item.path)) for image in dataset.images], meta)
            write_failures(out / f"{name}.failures.tsv", failures)
            err.print(f"{name}: {count} images -> {store.final}"
                      + (f" ({len(failures)} failed, listed in {name}.failures.tsv)" if failures else ""),
                      highlight=False)
            all_failures += failures
    except InterActiveError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; finished shards are kept: run the same command again to resume", code=130)
    finally:
        if runner is not None:
            runner.deactivate()
    if all_failures:
        raise typer.Exit(2)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
