"""What an export is asked to do (`ExportRequest`: the network, its weights, the graph's options, the
precision, the engines) and the weights it resolves to; the first stage of export_model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from interactive_trt.common.errors import SpecError
from interactive_trt.contracts.spec import ModelSpec, Preprocessing
from interactive_trt.exporter.networks.weights import Weights, load_weights, matconvnet_mean

IMPORTED = "onnx"  # ExportRequest.model for a network imported from an ONNX file
def model_spec(model: str, width_divisor: int = 1) -> ModelSpec:
    from interactive_trt.exporter.networks.registry import built_in

    return built_in(model).build(width_divisor)


@dataclass
class ExportRequest:
    model: str = "vgg19"
    weights: str | None = None
    seed: int = 0
    config: str = "last"
    p: float = 2.0
    head: str = "both"
    out: Path = Path("engines")
    seed_scale: float = 1.0
    verify: bool = True
    width_divisor: int = 1
    layers: tuple[str, ...] | None = None  # feature layers; None: the model's own list
    interactive: bool = True
    verify_images: tuple[Path, ...] = ()
    precision: str = "fp32"
    loss_scale: float | None = None  # None: calibrated for fp16 and fp16-backward, 1 otherwise
    trt: bool = False
    buckets: str | None = None  # "512x512,448x576"; None: the common photo aspects (trt_build)
    min_batch: int = 1
    max_batch: int = 32
    opt_batch: int | None = None  # engines tuned for it; None: tensorrt.build.DEFAULT_OPT_BATCH
    # model "onnx": bring your own network (exporter/networks/onnx_import)
    source: Path | None = None  # the ONNX file
    input_size: tuple[int, int] | None = None  # its native size, when its input is dynamic
    preprocessing: Preprocessing | None = None  # what its input expects; None: torchvision's ImageNet
    name: str | None = None  # the exported model's name; None: the file's stem

    @property
    def graph_options(self) -> dict:
        """What the explicit graph and the autograd reference must agree on."""
        return {"config": self.config, "p": self.p, "head": self.head, "seed_scale": self.seed_scale,
                "interactive": self.interactive}

    @property
    def stem(self) -> str:
        p = f"{self.p:g}".replace(".", "_")
        kind = self.config if self.interactive else "forward"
        typed = "" if self.precision == "fp32" else f"_{self.precision}"
        return f"{self.network_name}_{kind}_p{p}_{self.head}{typed}"

    @property
    def network_name(self) -> str:
        if self.model == IMPORTED:
            from interactive_trt.exporter.networks.onnx_import.network import network_name

            return network_name(self.onnx_source, self.name)
        return model_spec(self.model, self.width_divisor).name

    @property
    def onnx_source(self) -> Path:
        if self.source is None:
            raise SpecError("model 'onnx' needs the ONNX file to import (ExportRequest.source)")
        return Path(self.source)

    def import_options(self):
        from interactive_trt.exporter.networks.onnx_import import ImportOptions

        return ImportOptions(input_size=self.input_size, preprocessing=self.preprocessing or Preprocessing(),
                             name=self.name)


def log_default(message: str) -> None:
    print(message, flush=True)


def resolve_weights(request: ExportRequest, spec: ModelSpec) -> tuple[ModelSpec, Weights]:
    """--weights as given; omitted, the built-in's default file (torchvision's cache, an installed package)."""
    from interactive_trt.common.errors import WeightsError
    from interactive_trt.exporter.networks.registry import built_in
    from interactive_trt.exporter.networks.weights import torchvision_cache_path

    source = request.weights
    if source is None:
        entry = built_in(request.model)
        found = entry.default_weights()
        if found is None:
            raise WeightsError(f"no weights given and none found for {request.model}: "
                               + entry.missing_hint.format(path=torchvision_cache_path(request.model))
                               + "; or pass --weights FILE, or --weights random for seeded random weights")
        source = str(found)
    weights = load_weights(source, spec, seed=request.seed)
    if request.weights and Path(request.weights).suffix.lower() == ".mat":
        mean = matconvnet_mean(Path(request.weights))
        spec = replace(spec, preprocessing=Preprocessing(scale=1.0, mean=mean, std=(1.0, 1.0, 1.0)))
    return spec, weights
