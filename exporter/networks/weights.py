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
from interactive_trt.common.extras import install

TORCHVISION_FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "squeezenet1.1": "squeezenet1_1-b8a52dc0.pth",
                     "resnet18": "resnet18-f37072fd.pth", "resnet50": "resnet50-0676ba61.pth"}
BN_BUFFERS = ("weight", "bias", "running_mean", "running_var")


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
        for layer in spec.parameter_layers():
            want = parameter_shape(layer)
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


def conv_shape(layer) -> tuple[int, int, int, int]:
    """OIHW, with the input channels of one group."""
    return (layer.channels, layer.in_channels // layer.groups, *layer.window)


def parameter_shape(layer) -> tuple[int, ...]:
    """A conv's OIHW; the per-channel scale of an affine map or a LayerNorm (its bias is per channel too)."""
    return conv_shape(layer) if layer.op == "conv" else (layer.channels,)


def random_weights(spec: ModelSpec, seed: int = 0) -> Weights:
    """Seeded He-normal weights, identical on every machine (numpy's PCG64, not torch's RNG).

    Small random biases keep pre-activations away from exact zeros, as trained networks do.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer in spec.parameter_layers():
        if layer.op != "conv":  # per-channel scales near 1 and shifts near 0, as trained norms hold them
            scale = 1 + rng.standard_normal(layer.channels, dtype=np.float32) * np.float32(0.2)
            arrays[layer.name] = (scale, rng.standard_normal(layer.channels, dtype=np.float32) * np.float32(0.1))
            continue
        shape = conv_shape(layer)
        fan_in = shape[1] * shape[2] * shape[3]
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


def fold_batchnorm(weight: np.ndarray, bias: np.ndarray, gamma, beta, mean, var, eps: float):
    """INTERACTIVE.md: w' = w g / sqrt(v + eps), b' = (b - m) g / sqrt(v + eps) + beta (float64, then float32)."""
    factor = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    folded_weight = weight.astype(np.float64) * factor[:, None, None, None]
    folded_bias = (bias.astype(np.float64) - mean) * factor + beta
    return folded_weight.astype(np.float32), folded_bias.astype(np.float32)


def load_state_dict_weights(path: Path, spec: ModelSpec) -> Weights:
    """torchvision-style state dict: '<weight_key>.weight' (and '.bias' where the conv has one),
    linear layers reshaped to convs, a BatchNorm '<bn_key>.*' folded in. Every key must be used and
    every shape must fit: the first misfit is named with both shapes."""
    try:
        import torch
    except ImportError as exc:
        raise WeightsError(f"reading .pth weights needs torch: {install('export')}") from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "detach") for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict (a mapping of names to tensors)")
    arrays, missing, used = {}, [], set()

    def take(key: str, shape: tuple[int, ...]) -> np.ndarray:
        used.add(key)
        value = state[key].detach().float().numpy()
        if tuple(value.shape) != shape and not (value.size == int(np.prod(shape)) and value.ndim == 2):
            raise WeightsError(f"{path}: key {key!r} has shape {tuple(value.shape)}, {spec.name} needs {shape}")
        return np.ascontiguousarray(value.reshape(shape))

    for layer in spec.conv_layers():
        shape, channels = conv_shape(layer), (layer.channels,)
        weight_key, bias_key = f"{layer.weight_key}.weight", f"{layer.weight_key}.bias"
        bn_keys = [f"{layer.bn_key}.{part}" for part in BN_BUFFERS] if layer.bn_key else []
        absent = [key for key in [weight_key, *bn_keys] if key not in state]
        if not layer.bn_key and bias_key not in state:
            absent.append(bias_key)
        if absent:
            missing += absent
            continue
        weight = take(weight_key, shape)
        bias = take(bias_key, channels) if bias_key in state else np.zeros(channels, np.float32)
        if layer.bn_key:
            gamma, beta, mean, var = (take(key, channels) for key in bn_keys)
            used.add(f"{layer.bn_key}.num_batches_tracked")
            weight, bias = fold_batchnorm(weight, bias, gamma, beta, mean, var, layer.bn_eps)
        arrays[layer.name] = (weight, bias)
    if missing:
        raise WeightsError(f"{path}: keys missing for {spec.name}: {', '.join(missing[:8])}"
                           + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
    extra = sorted(key for key in state if key not in used)
    if extra:
        raise WeightsError(f"{path}: keys {spec.name} has no place for: {', '.join(extra[:8])}"
                           + (f" and {len(extra) - 8} more" if len(extra) > 8 else ""))
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
        raise WeightsError(f"reading MatConvNet .mat weights needs scipy: {install('mat')}") from exc
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
