"""The independent PyTorch reference: the layer score by torch.autograd, gamma by autograd too.

Nothing here shares the explicit backward pass of `graph.py`. The layer score is the gradient of
L = seed_scale * ||x-bar^(T)||_p^p with respect to the successor's pre-activation (autograd routes
max-pool gradients to the first arg-max and masks ReLUs itself), and gamma^(t) is the input gradient
of <G^(t+1), conv(X^(t), all-ones kernel)> (INTERACTIVE.md's independent check of eq. 8-9), which
makes no use of the fact that the connection set does not depend on the channel of t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from interactive_trt.exporter.interactive.forward import (
    apply_head, apply_layer, pad_input, resolve_unary_kernels, run_forward, shuffle_channels, weight_tensors,
)
from interactive_trt.contracts.outputs import output_names
from interactive_trt.contracts.spec import Layer, ModelSpec
from interactive_trt.exporter.networks.weights import Weights


def likelihood_term(x: torch.Tensor, p: float, seed_scale: float) -> torch.Tensor:
    """seed_scale * sum over the batch of ||x-bar||_p^p, x-bar the spatial mean (eq. 2)."""
    return seed_scale * x.mean(dim=(2, 3)).pow(p).sum()


def connection_gamma(layer_t: torch.Tensor, successor: Layer, layer_score: torch.Tensor,
                     along=lambda x: x, one_map: bool | None = None) -> torch.Tensor:
    """d <G, conv(P(X), 1)> / d X, with the successor's groups, stride and pads (INTERACTIVE.md's check);
    P (`along`) is the channel bookkeeping between X and the successor.

    Where every channel of X carries the same map (`one_map`; by default a dense successor), channel 0 is
    returned (N x 1 x H x W); otherwise every channel is.
    """
    x = layer_t.detach().requires_grad_(True)
    placed = along(x)
    channels_out, groups = layer_score.shape[1], successor.groups
    ones = torch.ones(channels_out, placed.shape[1] // groups, *successor.window, dtype=x.dtype, device=x.device)
    top, left, bottom, right = successor.pad4
    connected = F.conv2d(F.pad(placed, (left, right, top, bottom)), ones, stride=successor.strides,
                         dilation=successor.dilation, groups=groups)
    (grad,) = torch.autograd.grad((connected * layer_score.detach()).sum(), x)
    return grad[:, :1] if (groups == 1 if one_map is None else one_map) else grad


def bookkeeping(spec: ModelSpec, route):
    """P of a route: what its slices, shuffles and concats do to the channels of X (zeros for a concat's
    other inputs, which do not depend on X), and its paddings to the border."""
    def along(x: torch.Tensor) -> torch.Tensor:
        for name, source in route:
            layer = spec.layer(name)
            if layer.op == "concat":
                offset = spec.concat_offset(layer, source)
                x = F.pad(x, (0, 0, 0, 0, offset, layer.channels - offset - x.shape[1]))
            elif layer.op == "slice":
                x = x[:, layer.offset:layer.offset + layer.channels]
            elif layer.op == "pad":
                x = pad_input(layer, x)
            else:
                x = shuffle_channels(x, layer.groups)
        return x
    return along


def normalised(gamma: torch.Tensor) -> torch.Tensor:
    """gamma divided by its spatial mean, 1 where the mean is not positive (section 4.4)."""
    mean = gamma.mean(dim=(2, 3), keepdim=True)
    return torch.where(mean > 0, gamma / torch.where(mean > 0, mean, torch.ones_like(mean)), torch.ones_like(gamma))


class AutogradReference:
    """Computes every output of the exported graph the slow, obviously-right way."""

    def __init__(self, spec: ModelSpec, weights: Weights, config: str = "last", p: float = 2.0,
                 head: str = "both", seed_scale: float = 1.0, interactive: bool = True, device: str = "cpu",
                 dtype: torch.dtype = torch.float32):
        weights.check(spec)
        resolve_unary_kernels()
        self.spec, self.config, self.p, self.head = spec, config, float(p), head
        self.seed_scale, self.interactive, self.dtype = float(seed_scale), interactive, dtype
        self.params = {name: (weight.to(device, dtype), bias.to(device, dtype))
                       for name, (weight, bias) in weight_tensors(spec, weights).items()}
        self.output_names = output_names(spec, head, interactive)
        self.magnitudes: dict = {}  # output name -> mean |X * gamma| (numpy) of the last call: verify.compare

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        spec = self.spec
        successors = {t: spec.successor_routes(t) for t in spec.feature_layers}
        targets = list(spec.feature_layers) + [s.name for routes in successors.values() for s, _ in routes]
        targets += [spec.last_layer, spec.head_logits]
        with torch.enable_grad():
            image = image.detach().to(self.dtype).requires_grad_(True)
            acts, pre = run_forward(spec, self.params, image, targets)
            results: dict[str, torch.Tensor] = {}
            if self.head in ("features", "both"):
                results.update(self._features(acts, pre, successors))
            if self.head in ("imagenet", "both"):
                results.update(self._head(acts, pre))
        return {name: results[name].detach() for name in self.output_names}

    def _layer_scores(self, acts, pre, successor_names) -> dict[str, torch.Tensor]:
        if not successor_names:  # no feature layer: nothing to differentiate
            return {}
        if self.config == "last":
            loss = likelihood_term(acts[self.spec.last_layer], self.p, self.seed_scale)
            grads = torch.autograd.grad(loss, [pre[name] for name in successor_names], retain_graph=True)
            return dict(zip(successor_names, grads))
        scores = {}
        for name in successor_names:
            loss = likelihood_term(acts[name], self.p, self.seed_scale)
            (scores[name],) = torch.autograd.grad(loss, pre[name], retain_graph=True)
        return scores

    def _features(self, acts, pre, successors) -> dict[str, torch.Tensor]:
        results = {}
        names = sorted({s.name for routes in successors.values() for s, _ in routes})
        scores = self._layer_scores(acts, pre, names) if self.interactive else {}
        for t in self.spec.feature_layers:
            x = acts[t].detach()
            if self.interactive:
                one_map = self.spec.gamma_channels(t) == 1
                gamma = sum(connection_gamma(x, s, scores[s.name], bookkeeping(self.spec, route), one_map)
                            for s, route in successors[t])
                weighted = x * gamma
                results[f"{t}.gamma"] = gamma
                results[f"{t}.interactive_avg"] = weighted.mean(dim=(2, 3))
                results[f"{t}.interactive_max"] = weighted.amax(dim=(2, 3))
                self.magnitudes[f"{t}.interactive_avg"] = weighted.detach().abs().mean(dim=(2, 3)).numpy(force=True)
            results[f"{t}.orig_avg"] = x.mean(dim=(2, 3))
            results[f"{t}.orig_max"] = x.amax(dim=(2, 3))
        return results

    def _pooled_head(self, acts, pre) -> dict[str, torch.Tensor]:
        """INTERACTIVE.md, "Any CNN, part 3": the layer score of the head's first weighted layer by autograd
        from the score map, gamma^(T) by the independent check, the head of the pooled maps."""
        spec = self.spec
        x = acts[spec.head_input].detach()
        results = {"imagenet.scores_orig": apply_head(spec, self.params, x.mean(dim=(2, 3), keepdim=True)).flatten(1)}
        if not self.interactive:
            return results
        successor = spec.head_successor()
        loss = likelihood_term(F.relu(pre[spec.head_logits]), self.p, self.seed_scale)
        (layer_score,) = torch.autograd.grad(loss, pre[successor.name], retain_graph=True)
        gamma = normalised(connection_gamma(x, successor, layer_score))
        results["imagenet.scores_interactive"] = apply_head(spec, self.params,
                                                            (x * gamma).mean(dim=(2, 3), keepdim=True)).flatten(1)
        results["imagenet.gamma"] = gamma
        return results

    def _head(self, acts, pre) -> dict[str, torch.Tensor]:
        if self.spec.head_pooled:
            return self._pooled_head(acts, pre)
        logits_layer = self.spec.layer(self.spec.head_logits)
        penultimate = acts[self.spec.head_penultimate].detach()
        results = {"imagenet.scores_orig": acts[logits_layer.name].detach().mean(dim=(2, 3))}
        if not self.interactive:
            return results
        logits = pre[logits_layer.name]
        loss = likelihood_term(F.relu(logits), self.p, self.seed_scale)
        (layer_score,) = torch.autograd.grad(loss, logits, retain_graph=True)
        gamma = normalised(connection_gamma(penultimate, logits_layer, layer_score))
        _, rescored = apply_layer(logits_layer, [penultimate * gamma], self.params[logits_layer.name])
        results["imagenet.scores_interactive"] = rescored.mean(dim=(2, 3))
        results["imagenet.gamma"] = gamma
        return results

