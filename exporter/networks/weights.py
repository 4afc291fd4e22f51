"""Weights as plain arrays keyed by layer name, whatever file they came from.

Convolution weights are OIHW float32; fully connected layers arrive already reshaped to convs
(VGG's classifier.0: 4096x25088 -> 4096x512x7x7), so the graph has one kind of layer with weights.
Nothing is ever downloaded: a missing file is an error that says which file to get and where.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import WeightsError
from interactive_trt.contracts.spec import ModelSpec

TORCHVISION_FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "squeezenet1.1": "squeezenet1_1-b8a52dc0.pth"}


@dataclass
class Weights:
    """Per-layer (weight, bias) arrays plus where they came from."""

    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    source: str

    @property
    def digest(self) -> str:
        sha = hashlib.sha256()
        for name in sorted(self.arrays):
            weight, bias = self.arrays[name]
            for array in (weight, bias):
                sha.update(name.encode())
                sha.update(str(array.shape).encode())
                sha.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
        return sha.hexdigest()

    def check(self, spec: ModelSpec, origin: str | None = None) -> None:
        """Refuse weights whose shapes do not match the layer table, listing every mismatch."""
        origin = origin or self.source
        problems = []
        for layer in spec.conv_layers():
            want = (layer.channels, layer.in_channels, layer.kernel, layer.kernel)
            if layer.name not in self.arrays:
                problems.append(f"{layer.name} missing")
                continue
            weight, bias = self.arrays[layer.name]
            if tuple(weight.shape) != want:
                problems.append(f"{layer.name} weight {tuple(weight.shape)}, expected {want}")
            if tuple(bias.shape) != (layer.channels,):
                problems.append(f"{layer.name} bias {tuple(bias.shape)}, expected ({layer.channels},)")
        if problems:
            raise WeightsError(f"{origin}: weights do not fit {spec.name}: " + "; ".join(problems))


def random_weights(spec: ModelSpec, seed: int = 0) -> Weights:
    """Seeded He-normal weights, identical on every machine (numpy's PCG64, not torch's RNG).

    Small random biases keep pre-activations away from exact zeros, as trained networks do.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer in spec.conv_layers():
        fan_in = layer.in_channels * layer.kernel * layer.kernel
        shape = (layer.channels, layer.in_channels, layer.kernel, layer.kernel)
        weight = (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in)))
        bias = (rng.standard_normal(layer.channels, dtype=np.float32) * np.float32(0.01))
        arrays[layer.name] = (weight, bias)
    return Weights(arrays=arrays, source=f"random(seed={seed})")


def torchvision_cache_path(spec_name: str) -> Path:
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    return hub / TORCHVISION_FILES.get(spec_name, f"{spec_name}.pth")


def default_weights_path(spec: ModelSpec) -> Path:
    path = torchvision_cache_path(spec.name)
    if not path.is_file():
        raise WeightsError(
            f"no weights given and none found at {path}: get torchvision's "
            f"{TORCHVISION_FILES.get(spec.name, spec.name + '.pth')} (ImageNet VGG-19) and put it there, "
            "or pass --weights FILE, or --weights random for seeded random weights"
        )
    return path


def load_state_dict_weights(path: Path, spec: ModelSpec) -> Weights:
    """torchvision-style state dict: keys '<weight_key>.weight' / '.bias', linear layers reshaped."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency of the exporter
        raise WeightsError("reading .pth weights needs torch: pip install torch") from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict (a mapping of names to tensors)")
    arrays, missing = {}, []
    for layer in spec.conv_layers():
        keys = (f"{layer.weight_key}.weight", f"{layer.weight_key}.bias")
        if any(key not in state for key in keys):
            missing.append(keys[0])
            continue
        weight = state[keys[0]].detach().float().numpy()
        bias = state[keys[1]].detach().float().numpy()
        want = (layer.channels, layer.in_channels, layer.kernel, layer.kernel)
        if weight.ndim == 2 and weight.size == int(np.prod(want)):
            weight = weight.reshape(want)
        arrays[layer.name] = (np.ascontiguousarray(weight), np.ascontiguousarray(bias))
    if missing:
        raise WeightsError(f"{path}: keys missing for {spec.name}: {', '.join(missing)}")
    weights = Weights(arrays=arrays, source=str(path))
    weights.check(spec, origin=str(path))
    return weights


def load_matconvnet_weights(path: Path, spec: ModelSpec) -> Weights:
    """MatConvNet's imagenet-vgg-verydeep-19.mat: conv layers in order, filters HxWxInxOut.

    Its preprocessing (0-255 minus a mean colour) differs from torchvision's; the caller records
    `matconvnet_preprocessing` in the manifest.
    """
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise WeightsError("reading MatConvNet .mat weights needs scipy: pip install scipy") from exc
    try:
        mat = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"{path}: not a readable MATLAB file ({type(exc).__name__})") from None
    if "layers" not in mat:
        raise WeightsError(f"{path}: no 'layers' entry; expected MatConvNet's imagenet-vgg-verydeep-19.mat")
    conv_entries = []
    for entry in np.atleast_1d(mat["layers"]):
        if getattr(entry, "type", None) == "conv":
            conv_entries.append(entry)
    convs = spec.conv_layers()
    if len(conv_entries) != len(convs):
        raise WeightsError(f"{path}: {len(conv_entries)} conv layers, {spec.name} needs {len(convs)}")
    arrays = {}
    for layer, entry in zip(convs, conv_entries):
        filters, biases = entry.weights
        weight = np.asarray(filters, dtype=np.float32)
        if weight.ndim == 2:  # a 1x1 conv squeezed by loadmat
            weight = weight[None, None]
        weight = np.ascontiguousarray(weight.transpose(3, 2, 0, 1))
        arrays[layer.name] = (weight, np.asarray(biases, dtype=np.float32).reshape(-1))
    weights = Weights(arrays=arrays, source=str(path))
    weights.check(spec, origin=str(path))
    return weights


def matconvnet_mean(path: Path) -> tuple[float, float, float]:
    from scipy.io import loadmat

    mat = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    meta = mat.get("meta")
    normalization = getattr(meta, "normalization", None) if meta is not None else mat.get("normalization")
    average = np.asarray(getattr(normalization, "averageImage", [123.68, 116.779, 103.939]), dtype=np.float64)
    mean = average.reshape(-1, 3).mean(axis=0)
    return (float(mean[0]), float(mean[1]), float(mean[2]))


def load_npy_folder(path: Path, spec: ModelSpec) -> Weights:
    """A folder of `*conv{i}_weight.npy` / `*conv{i}_bias.npy`, numbered in the table's conv order
    (the ONNX model zoo's layout, e.g. squeezenet0_conv0_weight.npy)."""
    arrays, missing = {}, []
    for index, layer in enumerate(spec.conv_layers()):
        found = [sorted(path.glob(f"*conv{index}_{part}.npy")) for part in ("weight", "bias")]
        if not all(found):
            missing.append(f"conv{index} ({layer.name})")
            continue
        try:
            weight, bias = (np.load(files[0], allow_pickle=False).astype(np.float32) for files in found)
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{found[0][0]}: not a readable .npy array ({exc})") from None
        arrays[layer.name] = (np.ascontiguousarray(weight), np.ascontiguousarray(bias.reshape(-1)))
    if missing:
        raise WeightsError(f"{path}: no .npy weights for {', '.join(missing)}")
    weights = Weights(arrays=arrays, source=str(path))
    weights.check(spec, origin=str(path))
    return weights


def load_weights(source: str | None, spec: ModelSpec, seed: int = 0) -> Weights:
    """Resolve --weights: 'random', a .pth/.pt state dict, a MatConvNet .mat, a folder of .npy files,
    or torchvision's cache."""
    if source == "random":
        return random_weights(spec, seed)
    path = Path(source) if source else default_weights_path(spec)
    if not path.exists():
        raise WeightsError(f"{path}: weights file not found")
    if path.is_dir():
        return load_npy_folder(path, spec)
    if path.suffix.lower() == ".mat":
        return load_matconvnet_weights(path, spec)
    return load_state_dict_weights(path, spec)
