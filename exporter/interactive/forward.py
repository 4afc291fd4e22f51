"""The ordinary forward pass of a spec'd network in torch, shared by the explicit graph and the
autograd reference: what the two must agree on is the backward pass, not the convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from interactive_trt.contracts.spec import INPUT, Layer, ModelSpec
from interactive_trt.exporter.networks.weights import Weights


def weight_tensors(spec: ModelSpec, weights: Weights) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {
        layer.name: (torch.from_numpy(weights.arrays[layer.name][0].copy()),
                     torch.from_numpy(weights.arrays[layer.name][1].copy()))
        for layer in spec.conv_layers()
    }


def required_layers(spec: ModelSpec, targets) -> set[str]:
    """Every layer that `targets` depend on, themselves included."""
    needed, stack = set(), list(targets)
    by_name = spec.by_name
    while stack:
        name = stack.pop()
        if name == INPUT or name in needed:
            continue
        needed.add(name)
        stack.extend(by_name[name].inputs)
    return needed


def apply_layer(layer: Layer, inputs: list[torch.Tensor], params) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (pre-activation, output); they are the same tensor for pools, concats and linear convs."""
    if layer.op == "conv":
        weight, bias = params
        z = F.conv2d(inputs[0], weight, bias, stride=layer.stride, padding=layer.padding)
        return z, (F.relu(z) if layer.relu else z)
    if layer.op == "maxpool":
        y = F.max_pool2d(inputs[0], layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
        return y, y
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
