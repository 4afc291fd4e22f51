"""Helpers for command tests: the CLIs run as a user runs them (a subprocess, so exit codes and
one-line errors are what a user sees), and synthetic labelled images."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def run_cli(module: str, *args, timeout: int = 600, env=None):
    command = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=timeout, env=env)


def export_onnx(*args, timeout: int = 600):
    """`interactive-export onnx ...` as a user runs it."""
    return run_cli("interactive_trt.exporter.cli", "onnx", *args, timeout=timeout)


def synthetic_image(kind: int, rng: np.random.Generator, size=(240, 320)) -> np.ndarray:
    """Three visually distinct families a linear classifier on any sane features separates:
    0 horizontal stripes, 1 vertical stripes, 2 smooth colour blobs; period, phase, colour vary."""
    height, width = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    period = rng.uniform(10, 24)
    phase = rng.uniform(0, 2 * np.pi)
    colour = rng.uniform(0.3, 1.0, size=3)
    if kind == 0:
        base = 0.5 + 0.5 * np.sin(2 * np.pi * y / period + phase)
    elif kind == 1:
        base = 0.5 + 0.5 * np.sin(2 * np.pi * x / period + phase)
    else:
        cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
        base = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * (rng.uniform(0.15, 0.3) * width) ** 2))
    image = base[..., None] * colour + rng.normal(0, 0.05, size=(height, width, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_image_folder(root: Path, per_class: int, seed: int = 0, classes=("hstripes", "vstripes", "blobs")) -> Path:
    rng = np.random.default_rng(seed)
    for kind, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            Image.fromarray(synthetic_image(kind, rng)).save(root / name / f"{name}_{index:03d}.png")
    return root
