"""Reduced-precision graphs: which dtype a graph computes in, and the loss scale that keeps fp16
gradients from underflowing.

TensorRT 11 builds every network strongly typed (the fp16/bf16 builder flags are gone), and ONNX
Runtime runs whatever types the graph holds, so the precision lives in the ONNX graph itself: the
convolutions, masks, max-pool routing and transposed convolutions run in the compute dtype; seeds,
connection sums, gamma and every output are float32. Because masks and routing compare values of one
dtype with each other, no engine can re-type one side of a comparison (INTERACTIVE.md, "Numerics").

fp16-backward keeps the forward pass, and so every decision (ReLU and ReLU6 masks, max-pool routing),
in float32 and computes only the backward pass's products in float16. An fp16 forward pass rounds
activations: fp16's spacing near ReLU6's upper edge is 1/256, and on EfficientNet-Lite0 the masks it
flips sit on depthwise channels whose gradient has no other path, so gamma fell to cosine 0.98 and
an InterActive average to 0.976; with the forward in float32 every output stays >= 0.9999.

Back-propagated values shrink layer by layer and underflow in fp16 (smallest subnormal 2^-24).
gamma is defined up to a positive scale, so the seed is multiplied by a power of two (exact in every
float format) and gamma is divided by it again in float32: the outputs of an fp16 graph have the same
scale as an fp32 graph's. The factor is calibrated on real inputs at export, like AMP's loss scaling.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from interactive_trt.common.errors import SpecError
from interactive_trt.contracts.outputs import PRECISIONS

WHY_NOT_BF16 = ("bf16 is not offered: ONNX has no bfloat16 convolution before opset 22 (we export opset 17), and "
                "its 8-bit mantissa flips so many ReLU masks and pool arg-maxes that gamma fell to cosine 0.94 "
                "against float32 on the width-reduced VGG-19; use --fp16")
# The largest calibrated backward value is put near 2^10: 64x below fp16's largest finite value
# (65504) leaves room for photos brighter than the calibration ones.
FP16_TARGET_PEAK = 2.0 ** 10
LOSS_SCALE_LIMIT = 2.0 ** 40


def check_precision(precision: str) -> str:
    if precision == "bf16":
        raise SpecError(WHY_NOT_BF16)
    if precision not in PRECISIONS:
        raise SpecError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def torch_dtypes(precision: str):
    """(forward dtype, backward dtype) of a graph."""
    import torch

    check_precision(precision)
    return {"fp32": (torch.float32, torch.float32), "fp16": (torch.float16, torch.float16),
            "fp16-backward": (torch.float32, torch.float16)}[precision]


@dataclass
class BackwardRange:
    """Magnitudes of every back-propagated tensor seen on the calibration inputs (at loss scale 1)."""

    peak: float = 0.0
    smallest: float = math.inf
    tensors: int = 0

    def observe(self, name: str, tensor) -> None:
        magnitude = tensor.detach().abs().float()
        self.tensors += 1
        self.peak = max(self.peak, float(magnitude.max()))
        nonzero = magnitude[magnitude > 0]
        if nonzero.numel():
            self.smallest = min(self.smallest, float(nonzero.min()))

    @property
    def octaves(self) -> float:
        """log2 of the dynamic range; fp16 spans 40 octaves from subnormal to largest."""
        if self.peak == 0 or math.isinf(self.smallest):
            return 0.0
        return math.log2(self.peak / self.smallest)


def loss_scale_for(peak: float, target: float = FP16_TARGET_PEAK) -> float:
    """The power of two that brings `peak` to at most `target`."""
    if not math.isfinite(peak) or peak <= 0:
        return 1.0
    exponent = math.floor(math.log2(target / peak))
    return float(min(max(2.0 ** exponent, 1 / LOSS_SCALE_LIMIT), LOSS_SCALE_LIMIT))


@dataclass
class Calibration:
    precision: str
    loss_scale: float
    peak: float
    smallest: float
    octaves: float
    inputs: list[str]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["smallest"] = None if math.isinf(self.smallest) else self.smallest
        return data


def calibrate_loss_scale(graph, batches, precision: str) -> Calibration:
    """Runs the float32 graph (loss scale 1) over `batches` and scales its backward peak to the target."""
    import torch

    observed = BackwardRange()
    graph.observer = observed.observe
    try:
        with torch.no_grad():
            for _, batch in batches:
                graph(torch.from_numpy(batch))
    finally:
        graph.observer = None
    scale = loss_scale_for(observed.peak) if precision != "fp32" else 1.0
    return Calibration(precision=precision, loss_scale=scale, peak=observed.peak, smallest=observed.smallest,
                       octaves=observed.octaves, inputs=[label for label, _ in batches])
