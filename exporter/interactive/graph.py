"""The InterActive computation written out as ordinary ops, so that it exports to ONNX and TensorRT.

Symbols of the paper (section 3) and their names here:
  X^(t)                 `acts[t]`, the post-ReLU response of layer t (pool outputs as they are)
  x-bar^(T), eq. (2)    `mean_response`, the spatial mean of layer T
  d ln f / d X^(T), (5) `seed`: p / (W_T H_T) * x-bar^(p-1), times the constant `seed_scale`
                        (we propagate +L = ||x-bar||_p^p; a global sign is lost to l2 normalisation)
  d ln f / d Z^(t+1)    `layer_score[s]`: the gradient at the pre-activation of successor s,
                        back-propagated from T through ReLU masks, max-pool routing and transposed convs
  sum of eq. (8)-(9)    `gamma[t]`: transposed conv of the layer score summed over each group's output
                        channels, with an all-ones kernel (for a dense successor the connection set U
                        does not depend on the channel of t: one map; grouped successors: one per group)
  X~^(t)                `acts[t] * gamma[t]`

No autograd is used: the backward pass is explicit so that the exported graph contains it.
The reference in `reference.py` computes the same with torch.autograd.

A graph's forward pass computes in one dtype and its backward pass in one (the same, except in
fp16-backward; `precision.py` says which parts stay float32 and why); its inputs and outputs are
float32 whatever those dtypes are, so the runtime never needs to know. Decisions (masks, routing) are
read off the forward values in the forward dtype and only then cast to the backward one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from interactive_trt.common.errors import SpecError
from interactive_trt.exporter.interactive.forward import (
    apply_head, apply_layer, channel_window_sum, group_mean, lrn_denominator, per_channel, required_layers,
    resolve_unary_kernels, run_forward, scored_map, shared_tensor, shuffle_channels, widened,
)
from interactive_trt.contracts.outputs import CONFIGS, HEADS, output_names
from interactive_trt.exporter.interactive.precision import torch_dtypes
from interactive_trt.contracts.spec import PARAMETRIC, Layer, ModelSpec
from interactive_trt.exporter.networks.weights import Weights


def reachable_from(spec: ModelSpec, sources) -> set[str]:
    """Layers that depend on any of `sources`, the sources included."""
    reached = set(sources)
    for layer in spec.layers:
        if any(name in reached for name in layer.inputs):
            reached.add(layer.name)
    return reached


def inverse_spatial_count(x: torch.Tensor) -> torch.Tensor:
    """1 / (W H) as a tensor op, so that exported graphs stay valid for every input size.

    Counted in float32: a 512 x 512 map has more positions than fp16's largest finite value.
    """
    ones = torch.ones_like(x[:, :1], dtype=torch.float32)
    return ones / ones.sum(dim=(2, 3), keepdim=True)


def layer_score_seed(x: torch.Tensor, p: float, seed_scale: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Equation (5) with the sign dropped: seed_scale * p / (W H) * x-bar^(p-1) at every position.

    The per-channel factor is computed in float32 and only then cast to `dtype` (default: that of `x`).
    """
    dtype = dtype or x.dtype
    scale = inverse_spatial_count(x) * seed_scale
    if p == 1:
        return scale.to(dtype).expand_as(x)
    mean_response = x.mean(dim=(2, 3), keepdim=True, dtype=torch.float32)
    power = mean_response if p == 2 else mean_response.clamp_min(0).pow(p - 1)
    return ((scale * p) * power).to(dtype).expand_as(x)


def along_axis(x: torch.Tensor, axis: int, start: int | None, stop: int | None) -> torch.Tensor:
    index = [slice(None)] * x.dim()
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def folded(grad: torch.Tensor, axis: int, before: int, after: int) -> torch.Tensor:
    """The adjoint of a reflect padding along `axis`: the middle, plus each mirrored border row added back
    onto the row it copies (padded row i < before is row before - i; the j-th row after the map is row
    n - 2 - j), each border placed by zeros around it, so that the two borders may fold onto the same rows
    of a small map. Every slice counts from an end and every zero block takes its shape from a slice, so
    no size of the traced input becomes a constant of the file."""
    middle = along_axis(grad, axis, before, -after or None)
    if before:
        mirrored = along_axis(grad, axis, 0, before).flip(axis)
        middle = middle + torch.cat([torch.zeros_like(along_axis(middle, axis, 0, 1)), mirrored,
                                     torch.zeros_like(along_axis(middle, axis, 1 + before, None))], dim=axis)
    if after:
        mirrored = along_axis(grad, axis, -after, None).flip(axis)
        middle = middle + torch.cat([torch.zeros_like(along_axis(middle, axis, None, -1 - after)), mirrored,
                                     torch.zeros_like(along_axis(middle, axis, -1, None))], dim=axis)
    return middle


def unpadded(grad: torch.Tensor, layer: Layer) -> torch.Tensor:
    """The gradient of a "pad" layer's input from its output's: the middle for zeros, the middle with the
    mirrored border folded back for "reflect" (its adjoint). Padded channels are dropped, unless `grad` is
    one map that every channel shares (a dense successor's connection sums)."""
    top, left, bottom, right = layer.pad4
    if layer.pad_mode == "reflect":
        return folded(folded(grad, 2, top, bottom), 3, left, right)
    before, after = layer.channel_pads if grad.shape[1] > 1 else (0, 0)
    return grad[:, before:-after or None, top:-bottom or None, left:-right or None]


def route_to_first_argmax(grad: torch.Tensor, windows: list[torch.Tensor]) -> list[torch.Tensor]:
    """`grad` routed to the first maximum in scan order of each pooling window: one part per window slot.

    Exact ties (flat regions of real photos) route to one position per window, as autograd does; the
    masks are built from the same values they compare, so mixed precision cannot break them. Each slot
    takes what the slots before it left, where it holds the maximum; the last slot takes what is left,
    since it holds the maximum wherever no earlier slot does. A mask is 0 or 1, so every product and
    difference is exact in any float type, and this costs two ops a slot less than building exclusive
    one-hot masks first (the routing is memory-bound: VGG-19's pool2 alone moves 8 MB an op).
    """
    peak = windows[0]
    for window in windows[1:]:
        peak = torch.maximum(peak, window)
    routed, left = [], grad
    for window in windows[:-1]:
        taken = left * (window == peak).to(grad.dtype)
        routed.append(taken)
        left = left - taken
    return routed + [left]


def first_maximum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """1 at the first maximum along `dim` (as torch.max's gradient goes), 0 elsewhere. Built from equality
    with the maximum of the same values and a running count of the equal ones, not from an ArgMax, whose
    choice among ties no ONNX runtime promises; every step is exact in any float type."""
    peak = x.amax(dim=dim, keepdim=True)
    equal = (x == peak).to(torch.float32)
    return equal * (torch.cumsum(equal, dim=dim) == 1).to(torch.float32)


class InterActiveGraph(nn.Module):
    """Forward pass plus the explicit InterActive backward pass; returns outputs in `output_names`."""

    def __init__(self, spec: ModelSpec, weights: Weights, config: str = "last", p: float = 2.0,
                 head: str = "both", seed_scale: float = 1.0, interactive: bool = True,
                 precision: str = "fp32", loss_scale: float = 1.0):
        super().__init__()
        resolve_unary_kernels()
        if config not in CONFIGS:
            raise SpecError(f"config {config!r}: expected one of {', '.join(CONFIGS)}")
        if head not in HEADS:
            raise SpecError(f"head {head!r}: expected one of {', '.join(HEADS)}")
        if p < 1:
            raise SpecError(f"p = {p}: the layer score needs p >= 1")
        weights.check(spec)
        self.spec, self.config, self.p, self.head = spec, config, float(p), head
        self.seed_scale, self.interactive = float(seed_scale), interactive
        # the forward dtype and the backward one (torch_dtypes refuses unknown precisions)
        self.precision, (self.dtype, self.grad_dtype) = precision, torch_dtypes(precision)
        if not loss_scale > 0:
            raise SpecError(f"loss scale {loss_scale}: must be positive")
        self.loss_scale = float(loss_scale)
        self.observer = None  # calibration hook: called with every back-propagated tensor
        self.output_names = output_names(spec, head, interactive)
        for layer in spec.parameter_layers():
            # per-channel vectors as 1 x C x 1 x 1: the exported graph reads them as they are stored, so that
            # their initializers keep the names the torch backend finds them by (an Unsqueeze would be folded)
            for part, array in zip(("weight", "bias"), weights.arrays[layer.name]):
                tensor = shared_tensor(array).to(self.dtype)
                tensor = tensor if layer.op == "conv" else tensor.reshape(1, -1, 1, 1)
                self.register_buffer(f"{layer.name}__{part}", tensor)
        self.routes = {t: spec.successor_routes(t) for t in spec.feature_layers}
        all_successors = sorted({s.name for routes in self.routes.values() for s, _ in routes})
        self.all_successors = all_successors
        targets = []
        if head in ("features", "both"):
            targets += list(spec.feature_layers) + all_successors
            if interactive and config == "last":
                targets.append(spec.last_layer)
        if head in ("imagenet", "both"):
            targets.append(spec.head_logits if interactive else scored_map(spec))
        self.forward_targets = tuple(targets)
        self.forward_layers = required_layers(spec, targets)
        self.gradient_layers: set[str] = set()
        if interactive and head in ("features", "both") and config == "last":
            below_last = required_layers(spec, [spec.last_layer])
            missing = [s for s in all_successors if s not in below_last]
            if missing:
                def named(names):
                    return ", ".join(repr(spec.layer(name).source or name) for name in names)

                readers = [t for t, routes in self.routes.items() if any(s.name in missing for s, _ in routes)]
                raise SpecError(f"{spec.name}: feature layer {named(readers)} is read by {named(missing)}, above T "
                                f"({named([spec.last_layer])}) of --config last: choose layers below T "
                                "(--list-layers) or --config next")
            self.gradient_layers = below_last & reachable_from(spec, all_successors)
        self.residues = spec.reference_residues
        for layer in spec.layers:
            if layer.name not in self.gradient_layers or layer.inputs[0] not in self.gradient_layers:
                continue
            channels = self.spec.channels_of(layer.inputs[0])
            if layer.op == "maxpool":
                self.register_buffer(f"{layer.name}__scatter", self._scatter_kernel(layer))
            elif layer.op == "avgpool":
                self.register_buffer(f"{layer.name}__spread", torch.ones(channels, 1, *layer.window,
                                                                         dtype=self.grad_dtype))

    # ------------------------------------------------------------------ building blocks
    def params(self, name: str):
        return getattr(self, f"{name}__weight"), getattr(self, f"{name}__bias")

    def _scatter_kernel(self, layer: Layer) -> torch.Tensor:
        """Grouped transposed-conv kernel that puts window slot (i, j) back at offset (i, j)."""
        (k_h, k_w), channels = layer.window, self.spec.channels_of(layer.inputs[0])
        one_hot = torch.zeros(k_h * k_w, 1, k_h, k_w)
        for slot in range(k_h * k_w):
            one_hot[slot, 0, slot // k_w, slot % k_w] = 1
        return one_hot.repeat(channels, 1, 1, 1).to(self.grad_dtype)

    def observe(self, name: str, tensor: torch.Tensor) -> None:
        if self.observer is not None:
            self.observer(name, tensor)

    def transpose_to_input(self, grad: torch.Tensor, weight: torch.Tensor, layer: Layer, groups: int) -> torch.Tensor:
        """A transposed conv that maps a windowed layer's output gradient back onto its exact input.

        Stride, (asymmetric) pads and the rows and columns no window reaches (they get zero gradient)
        become the padding and output padding of one ConvTranspose, plus a slice for pads that are
        larger at the end than at the start (TensorFlow's 'same').
        """
        top, left, bottom, right = layer.pad4
        residue_h, residue_w = self.residues[layer.name]
        delta = (residue_h + top - bottom, residue_w + left - right)
        extra = tuple(max(d, 0) for d in delta)
        fits = all(e < step for e, step in zip(extra, layer.strides))
        y = F.conv_transpose2d(grad, weight, stride=layer.strides, padding=(top, left),
                               output_padding=extra if fits else 0, groups=groups, dilation=layer.dilation)
        if not fits:
            y = F.pad(y, (0, extra[1], 0, extra[0]))
        if delta[0] < 0 or delta[1] < 0:
            y = y[:, :, :delta[0] if delta[0] < 0 else None, :delta[1] if delta[1] < 0 else None]
        return y

    def through_activation(self, layer: Layer, z: torch.Tensor, x: torch.Tensor, grad: torch.Tensor,
                           s: torch.Tensor | None = None) -> torch.Tensor:
        """The gradient through the layer's activation. ReLU's and ReLU6's masks are read off the output x
        (x > 0, 0 < x < 6) and applied as a product with the cast mask (ONNX Runtime's CPU Where costs 2.6x a
        Cast and a Mul on EfficientNet-Lite0); every other activation's derivative is computed from its
        input z (INTERACTIVE.md, "Any CNN, part 3"), or from what the forward pass computed where that saves
        a transcendental op: the sigmoid s of a SiLU or Swish (s + alpha x (1 - s)), a Sigmoid's or Tanh's
        own output. Decided in the forward dtype, applied in the backward one."""
        kind = layer.activation
        if kind == "relu":
            return grad * (x > 0).to(grad.dtype)
        if kind == "relu6":
            return grad * ((x > 0) & (x < 6)).to(grad.dtype)
        if not kind:
            return grad
        if kind in ("silu", "swish") and s is not None:
            alpha = layer.alpha if kind == "swish" else 1.0
            return grad * (s + (x * alpha) * (1 - s)).to(grad.dtype)
        if kind == "sigmoid":
            return grad * (x * (1 - x)).to(grad.dtype)
        if kind == "tanh":
            return grad * (1 - x * x).to(grad.dtype)
        return grad * activation_derivative(layer, z).to(grad.dtype)

    def conv_input_grad(self, layer: Layer, layer_score: torch.Tensor) -> torch.Tensor:
        weight, _ = self.params(layer.name)
        return self.transpose_to_input(layer_score, weight.to(self.grad_dtype), layer, layer.groups)

    def pool_input_grad(self, layer: Layer, x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
        """Max-pool routing: each window's gradient goes to its first arg-max (mass is conserved).

        Rows and columns that no window reaches (a floor-mode pool that does not tile its input) are
        cut before the windows are taken and get zero gradient.
        """
        (k_h, k_w), (s_h, s_w) = layer.window, layer.strides
        top, left, bottom, right = layer.pad4
        residue_h, residue_w = self.residues[layer.name]
        if any(layer.pad4):
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        if residue_h or residue_w:
            x = x[:, :, :-residue_h or None, :-residue_w or None]
        windows = []
        for i in range(k_h):
            for j in range(k_w):
                end_i, end_j = (-(k_h - 1 - i) or None), (-(k_w - 1 - j) or None)
                windows.append(x[:, :, i:end_i:s_h, j:end_j:s_w])
        routed = route_to_first_argmax(grad_out, windows)
        stacked = torch.stack(routed, dim=2).flatten(1, 2)
        if k_h == k_w == s_h == s_w:
            spread = F.pixel_shuffle(stacked, s_h)
        else:
            spread = F.conv_transpose2d(stacked, getattr(self, f"{layer.name}__scatter"), stride=(s_h, s_w),
                                        groups=grad_out.shape[1])
        if residue_h or residue_w:
            spread = F.pad(spread, (0, residue_w, 0, residue_h))
        if any(layer.pad4):
            spread = spread[:, :, top:-bottom or None, left:-right or None]
        return spread

    def avgpool_input_grad(self, layer: Layer, x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
        """Each window's gradient spread evenly over the positions it averaged."""
        k_h, k_w = layer.window
        if layer.count_include_pad or not any(layer.pad4):
            scaled = grad_out * (1.0 / (k_h * k_w))
        else:
            top, left, bottom, right = layer.pad4
            ones = F.pad(torch.ones_like(x[:, :1]), (left, right, top, bottom))
            count = F.conv2d(ones, torch.ones(1, 1, k_h, k_w, dtype=x.dtype, device=x.device),
                             stride=layer.strides)
            scaled = grad_out / count.to(grad_out.dtype)
        return self.transpose_to_input(scaled, getattr(self, f"{layer.name}__spread"), layer, grad_out.shape[1])

    def back_through(self, route, gamma: torch.Tensor) -> torch.Tensor:
        """A successor's connection sums, in its input's channels and positions, mapped back through the
        bookkeeping of the route onto t's channels (INTERACTIVE.md, "Any CNN, part 3") and, through a
        padding, onto t's positions. One map (a dense successor) stays one map unless a slice takes some of
        t's channels only."""
        spec = self.spec
        for name, source in reversed(route):
            layer = spec.layer(name)
            if layer.op == "concat" and gamma.shape[1] > 1:
                offset = spec.concat_offset(layer, source)
                gamma = gamma[:, offset:offset + spec.channels_of(source)]
            elif layer.op == "slice":
                rest = spec.channels_of(source) - layer.offset - layer.channels
                gamma = F.pad(gamma.expand(-1, layer.channels, -1, -1), (0, 0, 0, 0, layer.offset, rest))
            elif layer.op == "shuffle" and gamma.shape[1] > 1:
                gamma = shuffle_channels(gamma, layer.channels // layer.groups)
            elif layer.op == "pad":
                gamma = unpadded(gamma, layer)
        return gamma

    def mul_input_grads(self, layer: Layer, grad: torch.Tensor, acts):
        """The product rule: each operand gets the gradient times the other, summed back over the axes it
        was broadcast along (a gate's 1 x 1 factor gets the sum over the map)."""
        for index, source in enumerate(layer.inputs):
            if source not in self.gradient_layers:
                continue
            other = acts[layer.inputs[1 - index]]
            shape = acts[source].shape
            axes = tuple(axis for axis in (1, 2, 3) if shape[axis] == 1 and grad.shape[axis] != 1)
            if not axes:
                yield source, grad * other.to(grad.dtype)
                continue
            # the gate's gradient is a sum over the whole map: accumulated in float32, as the seed's mean is
            summed = (widened(grad) * widened(other)).sum(dim=axes, keepdim=True)
            yield source, summed.to(grad.dtype)

    def layernorm_input_grad(self, layer: Layer, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """LayerNorm's vector-Jacobian product over the channels (INTERACTIVE.md, "Any CNN, part 3"):
        (g - mean_c(g) - xhat * mean_c(g * xhat)) / sigma, with g = G * weight, computed as (g - xhat *
        mean_c(g * xhat)) / sigma less its own mean over the channels (the exact product's is 0): so it rounds
        as autograd does; with mean_c(g) taken first, the weight map before a LayerNorm of sigmoids was 1.5-2.5x
        further from float64 than autograd (test_precision.py, 2026-12-07)."""
        centred = x - x.mean(dim=1, keepdim=True)
        inverse_sigma = torch.rsqrt((centred * centred).mean(dim=1, keepdim=True) + layer.bn_eps)
        xhat = (centred * inverse_sigma).to(grad.dtype)
        g = grad * per_channel(self.params(layer.name)[0]).to(grad.dtype)
        through = (g - xhat * (g * xhat).mean(dim=1, keepdim=True)) * inverse_sigma.to(grad.dtype)
        return through - through.mean(dim=1, keepdim=True)

    def lrn_input_grad(self, layer: Layer, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Local response normalisation's vector-Jacobian product (docs/INTERACTIVE.md, this project's note):
        for y = x d^-beta with d = k + (alpha / n) S(x^2), G d^-beta - (2 alpha beta / n) x S(G x d^-beta / d),
        S the channel window's sum, which is its own transpose (an odd window, centred). In float32 at
        least, as the forward pass's d."""
        d = lrn_denominator(layer, x)
        wide, g = widened(x), widened(grad)
        scaled = g * torch.pow(d, -layer.beta)
        through = channel_window_sum(scaled * wide / d, layer.channel_window)
        return (scaled - (2.0 * layer.alpha * layer.beta / layer.channel_window) * wide * through).to(grad.dtype)

    def groupnorm_input_grad(self, layer: Layer, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """GroupNorm's vector-Jacobian product, LayerNorm's over each group's channels and positions, in
        float32 with every mean taken one axis at a time (`group_mean`), with g = G * weight:
        (g - xhat mean(g xhat)) / sigma less its own mean over the group (the exact product's is 0), as
        LayerNorm's: in that order it rounds as autograd through the forward pass does; with mean(g) taken
        first it put the weight map before a GroupNorm of sigmoids (mean 0.5, spread 0.04) 2-6x further
        from float64 than autograd (tests/exporter/interactive/test_precision.py)."""
        n, c, h, w = x.shape
        grouped = widened(x).reshape(n, layer.groups, c // layer.groups, h, w)
        centred = grouped - group_mean(grouped)
        inverse_sigma = torch.rsqrt(group_mean(centred * centred) + layer.bn_eps)
        g = (widened(grad) * per_channel(self.params(layer.name)[0]).float()).reshape(grouped.shape)
        xhat = centred * inverse_sigma
        through = (g - xhat * group_mean(g * xhat)) * inverse_sigma
        return (through - group_mean(through)).reshape(n, c, h, w).to(grad.dtype)

    def grn_input_grad(self, layer: Layer, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """GRN's vector-Jacobian product (INTERACTIVE.md, "Any CNN, part 3", this project's note), for
        y = x + b + w x f with f = n / d, n each channel's norm over the positions, d = mean_c(n) + eps:
        G (1 + w f) directly, and through the gate a = w sum_p(G x), dL/dn = a / d - mean_c(a n) / d^2,
        dL/dx = dL/dn x / n (0 where n is 0, autograd's convention for a norm at zero). Sums in float32."""
        weight = per_channel(self.params(layer.name)[0]).float()
        wide = widened(x)
        norms = torch.linalg.vector_norm(wide, dim=(2, 3), keepdim=True)
        denominator = norms.mean(dim=1, keepdim=True) + layer.bn_eps
        gate_grad = weight * (widened(grad) * wide).sum(dim=(2, 3), keepdim=True)
        norm_grad = gate_grad / denominator - (gate_grad * norms).mean(dim=1, keepdim=True) / (denominator * denominator)
        per_norm = torch.where(norms > 0, norm_grad / norms, torch.zeros_like(norms))
        direct = (1 + weight * (norms / denominator)).to(grad.dtype)
        return grad * direct + (wide * per_norm).to(grad.dtype)

    def connection_sum(self, successor: Layer, layer_score: torch.Tensor) -> torch.Tensor:
        """Equations (8)-(9): sum the layer score over every (w', h', d') connected to (w, h, d).

        d' runs over the output channels of d's group: all of them for a dense successor (one map for
        every d), one for a depthwise one. In float32, where the loss scale is taken off again.
        """
        groups, channels_out = successor.groups, layer_score.shape[1]
        if groups == 1:
            # as a 1x1 convolution with ones: ONNX Runtime's CPU ReduceSum over channels takes 4-5x as long
            ones = torch.ones(1, successor.channels, 1, 1, dtype=torch.float32, device=layer_score.device)
            summed = F.conv2d(widened(layer_score), ones)
        elif groups == channels_out:
            summed = widened(layer_score)
        else:  # each group's sum by a grouped 1x1 convolution with ones, not a sum over an unflattened view:
            # ONNX infers no shape for that view, torch.onnx then takes the traced one, and a view after it (a
            # channel shuffle on the route) got the sample's batch and map size as constants: the file failed
            # at any other (found by fuzzing the import, 2026-12-07); the same for the spread below
            ones = torch.ones(groups, successor.channels // groups, 1, 1, dtype=torch.float32,
                              device=layer_score.device)
            summed = F.conv2d(widened(layer_score), ones, groups=groups)
        if self.loss_scale != 1:
            summed = summed * (1 / self.loss_scale)
        if successor.window != (1, 1) or successor.strides != (1, 1) or any(successor.pad4):
            ones = torch.ones(groups, 1, *successor.window, dtype=summed.dtype, device=summed.device)
            summed = self.transpose_to_input(summed, ones, successor, groups)
        channels_in = successor.in_channels
        if 1 < groups < channels_in:  # each group's map to its input channels, as a grouped 1x1 convolution
            ones = torch.ones(channels_in, 1, 1, 1, dtype=summed.dtype, device=summed.device)
            summed = F.conv2d(summed, ones, groups=groups)
        return summed

    # ------------------------------------------------------------------ the passes
    def run_forward(self, image: torch.Tensor):
        """(outputs, pre-activations); the latter also hold each SiLU's sigmoid, under (name, "sigmoid")."""
        params = {layer.name: self.params(layer.name) for layer in self.spec.parameter_layers()}
        sigmoids = {}
        acts, pre = run_forward(self.spec, params, image, self.forward_targets, sigmoids)
        pre.update({(name, "sigmoid"): s for name, s in sigmoids.items()})
        return acts, pre

    def input_grads(self, layer: Layer, grad: torch.Tensor, acts):
        """Gradients w.r.t. the inputs of `layer` that lie on the backward path."""
        if layer.op == "concat":
            offset = 0
            for source in layer.inputs:
                width = self.spec.channels_of(source)
                if source in self.gradient_layers:
                    yield source, grad[:, offset:offset + width]
                offset += width
            return
        if layer.op == "add":
            for source in layer.inputs:
                if source in self.gradient_layers:
                    yield source, grad
            return
        if layer.op == "mul":
            yield from self.mul_input_grads(layer, grad, acts)
            return
        source = layer.inputs[0]
        if source not in self.gradient_layers:
            return
        if layer.op == "act":
            yield source, grad  # through_activation has taken the derivative
        elif layer.op == "gap":
            x = acts[source]
            yield source, (widened(grad) * inverse_spatial_count(x)).to(grad.dtype).expand(-1, -1, *x.shape[2:])
        elif layer.op == "gmp":
            x = acts[source]
            mask = first_maximum(x.flatten(2), dim=2).reshape(x.shape)
            yield source, grad * mask.to(grad.dtype)
        elif layer.op == "channel_mean":
            x = acts[source]
            yield source, (grad * (1.0 / x.shape[1])).expand(-1, x.shape[1], -1, -1)
        elif layer.op == "channel_max":
            yield source, grad * first_maximum(acts[source], dim=1).to(grad.dtype)
        elif layer.op == "affine":
            yield source, grad * per_channel(self.params(layer.name)[0]).to(grad.dtype)
        elif layer.op == "layernorm":
            yield source, self.layernorm_input_grad(layer, acts[source], grad)
        elif layer.op == "grn":
            yield source, self.grn_input_grad(layer, acts[source], grad)
        elif layer.op == "groupnorm":
            yield source, self.groupnorm_input_grad(layer, acts[source], grad)
        elif layer.op == "lrn":
            yield source, self.lrn_input_grad(layer, acts[source], grad)
        elif layer.op == "prelu":
            slope = per_channel(self.params(layer.name)[0]).to(grad.dtype)
            yield source, grad * torch.where(acts[source] > 0, torch.ones_like(slope), slope)
        elif layer.op == "slice":
            rest = self.spec.channels_of(source) - layer.offset - layer.channels
            yield source, F.pad(grad, (0, 0, 0, 0, layer.offset, rest))
        elif layer.op == "shuffle":
            yield source, shuffle_channels(grad, layer.channels // layer.groups)
        elif layer.op == "pad":
            yield source, unpadded(grad, layer)
        elif layer.op == "conv":
            yield source, self.conv_input_grad(layer, grad)
        elif layer.op == "avgpool":
            yield source, self.avgpool_input_grad(layer, acts[source], grad)
        else:
            yield source, self.pool_input_grad(layer, acts[source], grad)

    def layer_scores_last(self, acts, pre) -> dict[str, torch.Tensor]:
        """One backward pass from T = last layer serves every successor at once."""
        spec = self.spec
        wanted = set(self.all_successors)
        seed_scale = self.seed_scale * self.loss_scale
        grads = {spec.last_layer: layer_score_seed(acts[spec.last_layer], self.p, seed_scale, self.grad_dtype)}
        scores = {}
        for layer in reversed(spec.layers):
            if layer.name not in grads:
                continue
            grad = grads.pop(layer.name)
            self.observe(layer.name, grad)
            grad = self.through_activation(layer, pre[layer.name], acts[layer.name], grad,
                                           pre.get((layer.name, "sigmoid")))
            if layer.name in wanted:
                scores[layer.name] = grad
                if len(scores) == len(wanted):
                    break
            for source, part in self.input_grads(layer, grad, acts):
                grads[source] = grads[source] + part if source in grads else part
        return scores

    def layer_scores_next(self, acts, pre) -> dict[str, torch.Tensor]:
        """T = t+1: the layer score of each successor is its own seed times its ReLU mask."""
        scores = {}
        for name in self.all_successors:
            x = acts[name]
            seed = layer_score_seed(x, self.p, self.seed_scale * self.loss_scale, self.grad_dtype)
            scores[name] = self.through_activation(self.spec.layer(name), pre[name], x, seed,
                                                   pre.get((name, "sigmoid")))
            self.observe(name, scores[name])
        return scores

    def feature_outputs(self, acts, pre) -> list[torch.Tensor]:
        results = []
        if self.interactive:
            scores = (self.layer_scores_last if self.config == "last" else self.layer_scores_next)(acts, pre)
        for name in self.spec.feature_layers:
            x = widened(acts[name])
            if self.interactive:
                gamma = None
                for successor, route in self.routes[name]:
                    part = self.back_through(route, self.connection_sum(successor, scores[successor.name]))
                    gamma = part if gamma is None else gamma + part
                weighted = x * gamma
                results += [gamma, weighted.mean(dim=(2, 3)), weighted.amax(dim=(2, 3))]
            results += [x.mean(dim=(2, 3)), x.amax(dim=(2, 3))]
        return results

    def pooled_head_outputs(self, acts, pre) -> list[torch.Tensor]:
        """Section 4.4 for a head of more than one linear layer after the pool (INTERACTIVE.md, "Any CNN,
        part 3"): the head at every position of T gives the score map that plays fc8; its layer score goes
        back through the head to the head's first weighted layer, whose connection sum is gamma^(T); the class
        scores are the head of the pooled T, before and after re-weighting T by gamma^(T) / its mean."""
        spec = self.spec
        params = {layer.name: self.params(layer.name) for layer in spec.head_chain() if layer.op in PARAMETRIC}
        x = acts[spec.head_input]
        scores_orig = widened(apply_head(spec, params, x.mean(dim=(2, 3), keepdim=True))).flatten(1)
        if not self.interactive:
            return [scores_orig]
        logits = widened(pre[spec.head_logits])
        grad = layer_score_seed(F.relu(logits), self.p, self.seed_scale) * (logits > 0).to(logits.dtype)
        successor = spec.head_successor()
        layer = spec.layer(spec.head_logits)
        while layer.name != successor.name:
            if layer.op == "conv":
                grad = F.conv_transpose2d(grad, self.params(layer.name)[0].float())
            elif layer.op == "affine":
                grad = grad * per_channel(self.params(layer.name)[0]).float()
            elif layer.op == "layernorm":
                grad = self.layernorm_input_grad(layer, widened(acts[layer.inputs[0]]), grad)
            layer = spec.layer(layer.inputs[0])
            grad = self.through_activation(layer, widened(pre[layer.name]), widened(acts[layer.name]), grad)
        gamma = grad.sum(dim=1, keepdim=True)  # the connection sum of a dense 1x1 successor
        gamma = normalised_gamma(gamma)
        reweighted = (widened(x) * gamma).mean(dim=(2, 3), keepdim=True).to(self.dtype)
        return [scores_orig, widened(apply_head(spec, params, reweighted)).flatten(1), gamma]

    def head_outputs(self, acts, pre) -> list[torch.Tensor]:
        """Section 4.4: re-weight fc7 by gamma^(fc7) (T = fc8, ReLU'd), then recompute fc8.

        The class scores are the spatial mean of a score map (dense evaluation). Where the classifier
        commutes with that mean, the re-weighted scores (and the forward-only graph's) are the classifier
        applied to the pooled map: the same numbers, at one position instead of every one. The
        InterActive pass still computes the original score map, since its layer score reads fc8 > 0 there."""
        if self.spec.head_pooled:
            return self.pooled_head_outputs(acts, pre)
        logits_layer = self.spec.layer(self.spec.head_logits)
        penultimate = acts[self.spec.head_penultimate]
        if not self.interactive:
            if logits_layer.commutes_with_mean:
                return [self.scores_of_mean(logits_layer, widened(penultimate))]
            return [widened(acts[logits_layer.name]).mean(dim=(2, 3))]
        scores_orig = widened(acts[logits_layer.name]).mean(dim=(2, 3))
        logits = widened(pre[logits_layer.name])
        responses = F.relu(logits)
        layer_score = layer_score_seed(responses, self.p, self.seed_scale) * (logits > 0).to(logits.dtype)
        gamma = normalised_gamma(layer_score.sum(dim=1, keepdim=True))
        if logits_layer.commutes_with_mean:
            return [scores_orig, self.scores_of_mean(logits_layer, widened(penultimate) * gamma), gamma]
        reweighted_input = (widened(penultimate) * gamma).to(self.dtype)
        _, reweighted = apply_layer(logits_layer, [reweighted_input], self.params(logits_layer.name))
        return [scores_orig, widened(reweighted).mean(dim=(2, 3)), gamma]

    def scores_of_mean(self, layer: Layer, x: torch.Tensor) -> torch.Tensor:
        """A classifier that commutes with the spatial mean, applied to the mean of `x` (float32)."""
        pooled = x.mean(dim=(2, 3), keepdim=True).to(self.dtype)
        _, scores = apply_layer(layer, [pooled], self.params(layer.name))
        return widened(scores).flatten(1)

    def forward(self, image: torch.Tensor):
        acts, pre = self.run_forward(image.to(self.dtype))
        results = []
        if self.head in ("features", "both"):
            results += self.feature_outputs(acts, pre)
        if self.head in ("imagenet", "both"):
            results += self.head_outputs(acts, pre)
        return tuple(results)

    def named_outputs(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.output_names, self.forward(image)))


def normalised_gamma(gamma: torch.Tensor) -> torch.Tensor:
    """gamma^(fc7) divided by its spatial mean; 1 everywhere where that mean is not positive."""
    gamma_mean = gamma.mean(dim=(2, 3), keepdim=True)
    safe_mean = torch.where(gamma_mean > 0, gamma_mean, torch.ones_like(gamma_mean))
    return torch.where(gamma_mean > 0, gamma / safe_mean, torch.ones_like(gamma))


def activation_derivative(layer: Layer, z: torch.Tensor) -> torch.Tensor:
    """f'(z) of a smooth activation, written out (INTERACTIVE.md, "Any CNN, part 3"), with autograd's
    convention at the kinks: HardSigmoid strict inside its linear range (it is a hardtanh), HardSwish's
    middle piece on (-3, 3) and 1 from 3 on, LeakyReLU's and ELU's negative piece at 0."""
    kind = layer.activation
    if kind in ("sigmoid", "softplus"):
        s = torch.sigmoid(z)
        return s * (1 - s) if kind == "sigmoid" else s
    if kind == "silu":
        s = torch.sigmoid(z)
        return s * (1 + z * (1 - s))
    if kind == "swish":
        s = torch.sigmoid(z * layer.alpha)
        return s * (1 + z * layer.alpha * (1 - s))
    if kind == "softsign":
        d = 1 + torch.abs(z)
        return 1 / (d * d)
    if kind == "celu":
        return torch.where(z > 0, torch.ones_like(z), torch.exp(z / layer.alpha))
    if kind == "thresholdedrelu":
        return (z > layer.alpha).to(z.dtype)
    if kind == "squaredrelu":
        return 2 * F.relu(z)
    if kind == "tanh":
        t = torch.tanh(z)
        return 1 - t * t
    if kind == "hardsigmoid":
        y = z * layer.alpha + layer.beta
        return ((y > 0) & (y < 1)).to(z.dtype) * layer.alpha
    if kind == "hardswish":
        middle = (z > -3) & (z < 3)
        return torch.where(middle, z * (1 / 3) + 0.5, (z >= 3).to(z.dtype))
    if kind == "leakyrelu":
        return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, layer.alpha))
    if kind == "elu":
        return torch.where(z > 0, torch.ones_like(z), torch.exp(z) * layer.alpha)
    if kind == "selu":
        return torch.where(z > 0, torch.full_like(z, layer.beta), torch.exp(z) * (layer.alpha * layer.beta))
    if kind == "mish":
        t = torch.tanh(F.softplus(z))
        return t + z * (1 - t * t) * torch.sigmoid(z)
    if kind == "gelu":
        return 0.5 * (1 + torch.erf(z * SQRT_HALF)) + z * torch.exp(-0.5 * z * z) * INV_SQRT_2PI
    if kind == "gelu_tanh":
        inner = SQRT_2_OVER_PI * (z + 0.044715 * z * z * z)
        t = torch.tanh(inner)
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * z * z)
    raise SpecError(f"layer {layer.name!r}: no derivative for activation {kind!r}")


SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
