"""Figure 3 of the paper: gamma upsampled to the image size, scaled to [0, 1], drawn over the photo."""

from __future__ import annotations

import numpy as np
from PIL import Image

# a perceptually ordered dark-blue -> red -> yellow ramp (control points of 'inferno'-like colours)
_RAMP = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                  [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float64)


def colourise(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 RGB through the ramp."""
    position = np.clip(values, 0, 1) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - low)[..., None]
    return (_RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac).round().astype(np.uint8)


def upsample_map(gamma: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of one weight map (H x W, or C x H x W) to (height, width), scaled to [0, 1]."""
    height, width = size
    gamma = np.asarray(gamma, dtype=np.float32)
    if gamma.ndim == 3:  # per-channel gamma (a depthwise successor): its channel mean, INTERACTIVE.md
        gamma = gamma.mean(axis=0)
    image = Image.fromarray(gamma, mode="F")
    upsampled = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)
    low, high = upsampled.min(), upsampled.max()
    return (upsampled - low) / (high - low) if high > low else np.zeros_like(upsampled)


def overlay(rgb: np.ndarray, gamma: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    heat = colourise(upsample_map(gamma, rgb.shape[:2]))
    return (rgb.astype(np.float64) * (1 - alpha) + heat * alpha).round().astype(np.uint8)

