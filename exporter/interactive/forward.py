"""The ordinary forward pass of a spec'd network in torch, shared by the explicit graph and the
autograd reference: what the two must agree on is the backward pass, not the convolutions.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from interactive_trt.contracts.spec import INPUT, Layer, ModelSpec, upstream
from interactive_trt.exporter.networks.weights import Weights


@functools.cache
def resolve_unary_kernels() -> None:
    """Lets oneMKL pick its vector-math kernels once, on one thread, before any op runs them on several
    (pytorch/pytorch#188792, open): a float unary op's first call in a process (erf, exp, tanh, ...) runs on
    every intra-op thread at once, and one thread could compute its chunk with MKL's low-accuracy kernel.
    Here GELU's derivative came out 2.4e-4 off on one image of the batch in about one process in six. One
    element each resolves the dispatch; later calls are unchanged."""
    one = torch.ones(1)
    for op in (torch.exp, torch.expm1, torch.erf, torch.erfc, torch.tanh, torch.log, torch.log1p, torch.sqrt,
               torch.rsqrt, torch.reciprocal, torch.sigmoid, torch.sin, torch.cos):
        op(one)


def shared_tensor(array) -> torch.Tensor:
    """The array as a tensor that shares its memory where it can, so that the weights, the explicit graph
    and the autograd reference hold one copy of a network's weights between them while an export
    verifies (VGG-19: 548 MiB, where three copies took 1.6 GiB at the export's peak); nothing writes to
    them. A read-only or strided array is copied: torch's tensors are writable."""
    if array.flags.writeable and array.flags.c_contiguous:
        return torch.from_numpy(array)
    return torch.from_numpy(array.copy())


def weight_tensors(spec: ModelSpec, weights: Weights) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {layer.name: (shared_tensor(weights.arrays[layer.name][0]), shared_tensor(weights.arrays[layer.name][1]))
            for layer in spec.parameter_layers()}


def required_layers(spec: ModelSpec, targets) -> set[str]:
    """Every layer that `targets` depend on, themselves included."""
    by_name = spec.by_name
    return upstream(targets, lambda name: by_name[name].inputs)


def symmetric_padding(layer: Layer):
    """(pad_h, pad_w) when the layer pads each side alike, else None."""
    top, left, bottom, right = layer.pad4
    return (top, left) if (top, left) == (bottom, right) else None


def pad_input(layer: Layer, x: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Asymmetric padding as its own op (TensorFlow's 'same'; symmetric padding stays in the conv/pool), and
    a "pad" layer's padding, with `value` or mirrored where its `pad_mode` is "reflect", and its zero
    channels."""
    top, left, bottom, right = layer.pad4
    if layer.pad_mode == "reflect":
        return F.pad(x, (left, right, top, bottom), mode="reflect")
    before, after = layer.channel_pads
    return F.pad(x, (left, right, top, bottom, before, after) if before or after else (left, right, top, bottom),
                 value=value)


def activate(layer: Layer, z: torch.Tensor, sigmoids: dict | None = None) -> torch.Tensor:
    """The layer's activation as torch defines it, so that autograd's derivative (and its convention at
    kinks) is the reference's. ReLU6 and HardSigmoid are hardtanh, whose gradient mask is strict at both
    ends, as INTERACTIVE.md fixes; HardSigmoid keeps the slope and offset the file stores.

    With `sigmoids` (the explicit graph), SiLU and Swish are written as z * s and s = sigmoid(alpha z) is kept
    there by layer name: their derivative is then s + alpha x (1 - s) from the forward pass's own tensors,
    with no second Sigmoid (OpenVINO fuses z * sigmoid(z) into one op before it could share the Sigmoid)."""
    kind = layer.activation
    if sigmoids is not None and kind in ("silu", "swish"):
        s = torch.sigmoid(z * layer.alpha if kind == "swish" else z)
        sigmoids[layer.name] = s
        return z * s
    if kind == "relu6":
        return F.relu6(z)
    if kind == "relu":
        return F.relu(z)
    if kind == "hardsigmoid":
        return F.hardtanh(z * layer.alpha + layer.beta, 0.0, 1.0)
    if kind == "leakyrelu":
        return F.leaky_relu(z, layer.alpha)
    if kind == "elu":
        return F.elu(z, layer.alpha)
    if kind == "selu":
        return F.elu(z, layer.alpha) * layer.beta
    if kind == "gelu_tanh":
        return F.gelu(z, approximate="tanh")
    if kind == "swish":
        return z * torch.sigmoid(z * layer.alpha)
    if kind == "celu":
        return F.celu(z, layer.alpha)
    if kind == "squaredrelu":
        return F.relu(z) ** 2
    if kind == "thresholdedrelu":
        return torch.where(z > layer.alpha, z, torch.zeros_like(z))  # F.threshold, which torch.onnx refuses
    smooth = {"sigmoid": torch.sigmoid, "silu": F.silu, "hardswish": F.hardswish, "gelu": F.gelu,
              "tanh": torch.tanh, "softplus": F.softplus, "mish": F.mish, "softsign": F.softsign}
    return smooth[kind](z) if kind else z


def shuffle_channels(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (groups, C / groups) transposed; with C / groups it is its inverse.
    Its views read x's sizes, which torch.onnx folds into constants where ONNX cannot infer x's shape (see
    InterActiveGraph.connection_sum). Not a gather of the channels in a constant order: OpenVINO 2026.4
    computes a network around such a Gather wrongly (forward features at cosine 0.62 against ONNX Runtime
    and torch, on a random network of the import's fuzzer, 2026-12-07)."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def per_channel(vector: torch.Tensor) -> torch.Tensor:
    """A per-channel vector (C, or already 1 x C x 1 x 1) as it broadcasts over N x C x H x W."""
    return vector if vector.dim() == 4 else vector[None, :, None, None]


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNormalization over the channels at each position (ConvNeXt's, on an NCHW map)."""
    centred = x - x.mean(dim=1, keepdim=True)
    variance = (centred * centred).mean(dim=1, keepdim=True)
    return centred * torch.rsqrt(variance + eps) * per_channel(weight) + per_channel(bias)


def widened(x: torch.Tensor) -> torch.Tensor:
    """x in float32 where it is in a reduced precision, else as it is: float64 stays float64 (the float64
    reference judges float32's rounding of these sums, and cannot do it in float32)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def global_response_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """ConvNeXt V2's GRN on an NCHW map, as its authors write it: each channel's L2 norm over the positions,
    divided by the channels' mean norm, gates the map, which is then added back. The norms are taken in
    float32 at least: the squares of a 64 x 64 map sum past fp16's largest value."""
    wide = widened(x)
    norms = torch.linalg.vector_norm(wide, dim=(2, 3), keepdim=True)
    factor = (norms / (norms.mean(dim=1, keepdim=True) + eps)).to(x.dtype)
    return x + per_channel(bias) + per_channel(weight) * (x * factor)


def group_mean(grouped: torch.Tensor) -> torch.Tensor:
    """The mean of each group of an N x groups x channels x H x W view, taken one axis at a time (each
    stage's count is equal, so it is the same mean). ONNX Runtime 1.32 sums a ReduceMean in one running
    float32 sum: over a group of 1.2M values near a large mean (the sigmoids of a fuzzed network on a
    416 x 624 photo) its mean was 2.7e-4 (relative) from float64, 2.5e-3 once centred, a miss of 5e-2 in
    the ImageNet gamma downstream. Sums of a row, a column and a group's channels are short enough."""
    return grouped.mean(dim=4, keepdim=True).mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)


def group_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int, eps: float) -> torch.Tensor:
    """GroupNorm on an NCHW map, its statistics in float32 at least (a group spans every position: fp16 sums
    lose them), written out in two passes (mean, then the mean square about it) by `group_mean`, not as
    F.group_norm: torch.onnx writes that as InstanceNormalization, which ONNX Runtime computes with the same
    long float32 sums (2.4e-3 from float64 on the case in `group_mean`)."""
    n, c, h, w = x.shape
    grouped = widened(x).reshape(n, groups, c // groups, h, w)
    centred = grouped - group_mean(grouped)
    variance = group_mean(centred * centred)
    normalised = (centred * torch.rsqrt(variance + eps)).reshape(n, c, h, w).to(x.dtype)
    return normalised * per_channel(weight) + per_channel(bias)


def channel_window_sum(x: torch.Tensor, size: int) -> torch.Tensor:
    """S(x): at each channel, the sum over the `size` channels centred on it (an odd size; zeros past the
    first and last), as a padding and `size` slices: plain ops every runtime has, and S is its own
    transpose, which the backward pass uses."""
    reach, channels = (size - 1) // 2, x.shape[1]
    padded = F.pad(x, (0, 0, 0, 0, reach, reach))
    total = padded[:, 0:channels]
    for start in range(1, size):
        total = total + padded[:, start:start + channels]
    return total


def lrn_denominator(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    """d = k + alpha / size * S(x^2) of a local response normalisation (k its `bn_eps`), in float32 at
    least: the squares of AlexNet's first layer pass fp16's largest value."""
    wide = widened(x)
    return layer.bn_eps + (layer.alpha / layer.channel_window) * channel_window_sum(wide * wide, layer.channel_window)


def local_response_norm(layer: Layer, x: torch.Tensor) -> torch.Tensor:
    """x / d^beta (ONNX's LRN, torch's LocalResponseNorm at odd sizes)."""
    return (widened(x) * torch.pow(lrn_denominator(layer, x), -layer.beta)).to(x.dtype)


def apply_layer(layer: Layer, inputs: list[torch.Tensor], params,
                sigmoids: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (pre-activation, output); they are the same tensor for pools, concats and linear layers."""
    if layer.op == "conv":
        weight, bias = params
        padding = symmetric_padding(layer)
        x = inputs[0] if padding is not None else pad_input(layer, inputs[0])
        z = F.conv2d(x, weight, bias, stride=layer.strides, padding=padding or 0, dilation=layer.dilation,
                     groups=layer.groups)
        return z, activate(layer, z, sigmoids)
    if layer.op == "maxpool":
        padding = symmetric_padding(layer)
        x = inputs[0] if padding is not None else pad_input(layer, inputs[0], float("-inf"))
        y = F.max_pool2d(x, layer.window, layer.strides, padding or 0, ceil_mode=layer.ceil_mode)
        return y, y
    if layer.op == "pad":
        y = pad_input(layer, inputs[0])
        return y, y
    if layer.op == "avgpool":
        y = F.avg_pool2d(inputs[0], layer.window, layer.strides, symmetric_padding(layer), ceil_mode=layer.ceil_mode,
                         count_include_pad=layer.count_include_pad)
        return y, y
    if layer.op == "add":
        z = inputs[0]
        for other in inputs[1:]:
            z = z + other
        return z, activate(layer, z, sigmoids)
    if layer.op == "act":
        return inputs[0], activate(layer, inputs[0], sigmoids)
    if layer.op == "gap":
        y = inputs[0].mean(dim=(2, 3), keepdim=True)
        return y, y
    if layer.op == "gmp":  # torch.max over a dimension: autograd routes to the index it returns, the first
        y = torch.max(inputs[0].flatten(2), dim=2, keepdim=True)[0][..., None]
        return y, y
    if layer.op == "channel_mean":
        y = inputs[0].mean(dim=1, keepdim=True)
        return y, y
    if layer.op == "channel_max":
        y = torch.max(inputs[0], dim=1, keepdim=True)[0]
        return y, y
    if layer.op == "mul":
        y = inputs[0] * inputs[1]
        return y, y
    if layer.op == "affine":
        scale, shift = params
        y = inputs[0] * per_channel(scale) + per_channel(shift)
        return y, y
    if layer.op == "layernorm":
        y = layer_norm(inputs[0], *params, layer.bn_eps)
        return y, y
    if layer.op == "grn":
        y = global_response_norm(inputs[0], *params, layer.bn_eps)
        return y, y
    if layer.op == "groupnorm":
        y = group_norm(inputs[0], *params, layer.groups, layer.bn_eps)
        return y, y
    if layer.op == "lrn":
        y = local_response_norm(layer, inputs[0])
        return y, y
    if layer.op == "slice":
        y = inputs[0][:, layer.offset:layer.offset + layer.channels]
        return y, y
    if layer.op == "prelu":  # autograd takes the slope at 0, as torch's PReLU does
        x = inputs[0]
        y = torch.where(x > 0, x, x * per_channel(params[0]))
        return y, y
    if layer.op == "shuffle":
        y = shuffle_channels(inputs[0], layer.groups)
        return y, y
    y = torch.cat(inputs, dim=1)
    return y, y


def run_forward(spec: ModelSpec, params, image: torch.Tensor, targets,
                sigmoids: dict | None = None) -> tuple[dict, dict]:
    """Runs the layers `targets` need; returns (outputs, pre-activations) by layer name (and keeps SiLU's
    sigmoids in `sigmoids`, see activate)."""
    needed = required_layers(spec, targets)
    acts, pre = {INPUT: image}, {}
    for layer in spec.layers:
        if layer.name not in needed:
            continue
        z, x = apply_layer(layer, [acts[name] for name in layer.inputs], params.get(layer.name), sigmoids)
        pre[layer.name], acts[layer.name] = z, x
    return acts, pre


def apply_head(spec: ModelSpec, params, x: torch.Tensor) -> torch.Tensor:
    """The head's layers (spec.head_chain) on a map at its input: the score map, or, on the pooled map,
    the class scores as a 1 x 1 map."""
    for layer in spec.head_chain():
        _, x = apply_layer(layer, [x], params.get(layer.name))
    return x


def scored_map(spec: ModelSpec) -> str:
    """The layer whose output `class_scores` reads: the head's input where the head runs on the pooled map,
    the classifier's input where the classifier commutes with the mean, else the score map itself."""
    if spec.head_pooled:
        return spec.head_input
    return spec.head_penultimate if spec.layer(spec.head_logits).commutes_with_mean else spec.head_logits


def class_scores(spec: ModelSpec, params, acts) -> torch.Tensor:
    """The class scores as the network computes them: the spatial mean of the score map (SqueezeNet pools after
    its head), taken as the classifier of the pooled map where the two commute, or the head of the pooled map."""
    if spec.head_pooled:
        return apply_head(spec, params, acts[spec.head_input].mean(dim=(2, 3), keepdim=True)).flatten(1)
    logits = spec.layer(spec.head_logits)
    if not logits.commutes_with_mean:
        return acts[logits.name].mean(dim=(2, 3))
    pooled = acts[spec.head_penultimate].mean(dim=(2, 3), keepdim=True)
    return apply_layer(logits, [pooled], params.get(logits.name))[1].flatten(1)
