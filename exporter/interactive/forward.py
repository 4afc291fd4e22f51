"""The ordinary forward pass of a spec'd network in torch, shared by the explicit graph and the
autograd reference: what the two must agree on is the backward pass, not the convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from interactive_trt.contracts.spec import INPUT, Layer, ModelSpec, upstream
from interactive_trt.exporter.networks.weights import Weights


def weight_tensors(spec: ModelSpec, weights: Weights) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {
        layer.name: (torch.from_numpy(weights.arrays[layer.name][0].copy()),
                     torch.from_numpy(weights.arrays[layer.name][1].copy()))
        for layer in spec.conv_layers()
    }


def required_layers(spec: ModelSpec, targets) -> set[str]:
    """Every layer that `targets` depend on, themselves included."""
    by_name = spec.by_name
    return upstream(targets, lambda name: by_name[name].inputs)


def symmetric_padding(layer: Layer):
    """(pad_h, pad_w) when the layer pads each side alike, else None."""
    top, left, bottom, right = layer.pad4
    return (top, left) if (top, left) == (bottom, right) else None


def pad_input(layer: Layer, x: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Asymmetric padding as its own op (TensorFlow's 'same'); symmetric padding stays in the conv/pool."""
    top, left, bottom, right = layer.pad4
    return F.pad(x, (left, right, top, bottom), value=value)


def activate(layer: Layer, z: torch.Tensor) -> torch.Tensor:
    """ReLU or ReLU6 (hardtanh 0..6: its gradient mask is strict at both ends, as INTERACTIVE.md fixes)."""
    if layer.activation == "relu6":
        return F.relu6(z)
    return F.relu(z) if layer.activation == "relu" else z


def apply_layer(layer: Layer, inputs: list[torch.Tensor], params) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (pre-activation, output); they are the same tensor for pools, concats and linear layers."""
    if layer.op == "conv":
        weight, bias = params
        padding = symmetric_padding(layer)
        x = inputs[0] if padding is not None else pad_input(layer, inputs[0])
        z = F.conv2d(x, weight, bias, stride=layer.stride, padding=padding or 0, groups=layer.groups)
        return z, activate(layer, z)
    if layer.op == "maxpool":
        padding = symmetric_padding(layer)
        x = inputs[0] if padding is not None else pad_input(layer, inputs[0], float("-inf"))
        y = F.max_pool2d(x, layer.kernel, layer.stride, padding or 0, ceil_mode=layer.ceil_mode)
        return y, y
    if layer.op == "avgpool":
        y = F.avg_pool2d(inputs[0], layer.kernel, layer.stride, symmetric_padding(layer), ceil_mode=layer.ceil_mode,
                         count_include_pad=layer.count_include_pad)
        return y, y
    if layer.op == "add":
        z = inputs[0]
        for other in inputs[1:]:
            z = z + other
        return z, activate(layer, z)
    y = torch.cat(inputs, dim=1)
    return y, y


def run_forward(spec: ModelSpec, params, image: torch.Tensor, targets) -> tuple[dict, dict]:
    """Runs the layers `targets` need; returns (outputs, pre-activations) by layer name."""
    needed = required_layers(spec, targets)
    acts, pre = {INPUT: image}, {}
    for layer in spec.layers:
        if layer.name not in needed:
            continue
        z, x = apply_layer(layer, [acts[name] for name in layer.inputs], params.get(layer.name))
        pre[layer.name], acts[layer.name] = z, x
    return acts, pre
