"""What a runner needs to know of the ONNX file it runs, and nothing else, so one runner serves every
caller: interactive-infer (an exported model, read from its manifest), export verification (the file
just written, before its manifest exists) and import verification (the user's original file, whose
input may be channels-last and whose outputs are the ones the import probes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.spec import ModelSpec


@dataclass(frozen=True)
class OnnxGraph:
    onnx_path: Path
    input_name: str
    output_names: list[str] = field(default_factory=list)
    precision: str = "fp32"  # the file's own: its float16 graphs take float32 in and give float32 out
    spec: ModelSpec | None = None  # where given, the input's size is held to the network's (spatial_sizes)
    layout: str | None = "NCHW"  # of the input; "NHWC" for a channels-last original; None: any float32 array

    def check_input(self, image: np.ndarray, who: str) -> None:
        check_image(image, who, self.layout, self.spec)


def check_image(image: np.ndarray, who: str, layout: str | None = "NCHW", spec: ModelSpec | None = None) -> None:
    """One line naming `who` where `image` is not what a network of `spec` takes in `layout` (None: any
    float32 array); shared by the runners of files and the benchmark's autograd peers."""
    if layout is None:
        if image.dtype != np.float32:
            raise InterActiveError(f"{who}: input must be float32, got {image.dtype}")
        return
    channels = (image.shape[1] if layout == "NCHW" else image.shape[3]) if image.ndim == 4 else None
    if channels != 3 or image.dtype != np.float32:
        shape = "N x 3 x H x W" if layout == "NCHW" else "N x H x W x 3"
        raise InterActiveError(f"{who}: input must be float32 {shape}, got {image.dtype} {tuple(image.shape)}")
    if spec is not None:
        spec.spatial_sizes(image.shape[2], image.shape[3])
