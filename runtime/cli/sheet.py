"""`interactive-sheet`: a Figure-3 style contact sheet for one photo from one or more exported models
(typically the 'last' and the 'next' configuration), each run on the photo at the paper's size."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from interactive_trt.common.cli import err, fail, run_app
from interactive_trt.common.errors import InterActiveError
from interactive_trt.common.imaging import bucket_for, load_rgb, prepare

from interactive_trt.runtime.pictures.contact_sheet import contact_sheet
from interactive_trt.runtime.inference.session import open_model, start_runner
from interactive_trt.runtime.inference.writers import write_png
from interactive_trt.runtime.backends import BACKEND_HELP

app = typer.Typer(add_completion=False, no_args_is_help=True)


@app.command()
def sheet(
    image: Path = typer.Argument(..., help="the photo"),
    engines: list[Path] = typer.Option(..., "--engine", help="exported model; repeat for several configurations"),
    out: Path = typer.Option(..., "--out", help="PNG file to write"),
    layers: Optional[str] = typer.Option(None, "--layers", help="comma-separated feature layers, or 'imagenet' "
                                         "(default: every layer with a gamma map)"),
    backend: str = typer.Option("onnxruntime", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    tile_height: int = typer.Option(160, "--tile-height", min=32, help="height of each tile of the sheet, in "
                                    "pixels (its width follows the photo's aspect)"),
) -> None:
    """Gamma of several layers and configurations over the photo, as in the paper's Figure 3."""
    try:
        rgb = load_rgb(image)
        rows, chosen = [], None
        for engine in engines:
            model = open_model(engine)
            manifest = model.manifest
            have = [n.removesuffix(".gamma") for n in manifest.output_names if n.endswith(".gamma")]
            wanted = [part.strip() for part in layers.split(",")] if layers else have
            missing = [layer for layer in wanted if layer not in have]
            if missing:
                fail(f"{model.onnx_path}: no gamma map for {', '.join(missing)}; it has {', '.join(have)}")
            chosen = chosen or wanted
            size = bucket_for(*rgb.shape[:2], manifest.model.resize)
            runner = start_runner(model, backend, device)
            try:
                outputs = runner.infer({manifest.input_name: prepare(rgb, size, manifest.model.preprocessing)[None]})
            finally:
                runner.deactivate()
            caption = f"{manifest.model.name} {manifest.config} p={manifest.p:g}"
            rows.append((caption, {layer: outputs[f"{layer}.gamma"][0] for layer in chosen}))
    except InterActiveError as exc:
        fail(str(exc))
    write_png(out, contact_sheet(rgb, rows, chosen, tile_height=tile_height))
    err.print(f"wrote {out} ({len(rows)} configurations x {len(chosen)} layers)", highlight=False)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
