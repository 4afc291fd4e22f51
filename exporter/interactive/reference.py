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

from interactive_trt.exporter.interactive.forward import apply_layer, run_forward, weight_tensors
from interactive_trt.contracts.outputs import output_names
from interactive_trt.contracts.spec import Layer, ModelSpec
from interactive_trt.exporter.networks.weights import Weights


def likelihood_term(x: torch.Tensor, p: float, seed_scale: float) -> torch.Tensor:
    """seed_scale * sum over the batch of ||x-bar||_p^p, x-bar the spatial mean (eq. 2)."""
    return seed_scale * x.mean(dim=(2, 3)).pow(p).sum()


def connection_gamma(layer_t: torch.Tensor, successor: Layer, layer_score: torch.Tensor) -> torch.Tensor:
    """d <G, conv(X, 1)> / d X, with the successor's groups, stride and pads (INTERACTIVE.md's check).

    For a dense successor every channel of X carries the same map: channel 0 is returned (N x 1 x H x W);
    with groups every channel is returned.
    """
    x = layer_t.detach().requires_grad_(True)
    channels_out, groups = layer_score.shape[1], successor.groups
    ones = torch.ones(channels_out, x.shape[1] // groups, successor.kernel, successor.kernel, dtype=x.dtype,
                      device=x.device)
    top, left, bottom, right = successor.pad4
    connected = F.conv2d(F.pad(x, (left, right, top, bottom)), ones, stride=successor.stride, groups=groups)
    (grad,) = torch.autograd.grad((connected * layer_score.detach()).sum(), x)
    return grad[:, :1] if groups == 1 else grad


class AutogradReference:
    """Computes every output of the exported graph the slow, obviously-right way."""

    def __init__(self, spec: ModelSpec, weights: Weights, config: str = "last", p: float = 2.0,
                 head: str = "both", seed_scale: float = 1.0, interactive: bool = True, device: str = "cpu"):
        weights.check(spec)
        self.spec, self.config, self.p, self.head = spec, config, float(p), head
        self.seed_scale, self.interactive = float(seed_scale), interactive
        self.params = {name: (weight.to(device), bias.to(device))
                       for name, (weight, bias) in weight_tensors(spec, weights).items()}
        self.output_names = output_names(spec, head, interactive)
        self.magnitudes: dict[str, torch.Tensor] = {}  # of the last call: see verify.compare

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        spec = self.spec
        successors = {t: spec.successors(t) for t in spec.feature_layers}
        targets = list(spec.feature_layers) + [s.name for group in successors.values() for s in group]
        targets += [spec.last_layer, spec.head_logits]
        with torch.enable_grad():
            image = image.detach().requires_grad_(True)
            acts, pre = run_forward(spec, self.params, image, targets)
            results: dict[str, torch.Tensor] = {}
            if self.head in ("features", "both"):
                results.update(self._features(acts, pre, successors))
            if self.head in ("imagenet", "both"):
                results.update(self._head(acts, pre))
        return {name: results[name].detach() for name in self.output_names}

    def _layer_scores(self, acts, pre, successor_names) -> dict[str, torch.Tensor]:
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
        names = sorted({s.name for group in successors.values() for s in group})
        scores = self._layer_scores(acts, pre, names) if self.interactive else {}
        for t in self.spec.feature_layers:
            x = acts[t].detach()
            if self.interactive:
                gamma = sum(connection_gamma(x, s, scores[s.name]) for s in successors[t])
                weighted = x * gamma
                results[f"{t}.gamma"] = gamma
                results[f"{t}.interactive_avg"] = weighted.mean(dim=(2, 3))
                results[f"{t}.interactive_max"] = weighted.amax(dim=(2, 3))
                self.magnitudes[f"{t}.interactive_avg"] = weighted.detach().abs().mean(dim=(2, 3)).numpy(force=True)
            results[f"{t}.orig_avg"] = x.mean(dim=(2, 3))
            results[f"{t}.orig_max"] = x.amax(dim=(2, 3))
        return results

    def _head(self, acts, pre) -> dict[str, torch.Tensor]:
        logits_layer = self.spec.layer(self.spec.head_logits)
        penultimate = acts[self.spec.head_penultimate].detach()
        results = {"imagenet.scores_orig": acts[logits_layer.name].detach().mean(dim=(2, 3))}
        if not self.interactive:
            return results
        logits = pre[logits_layer.name]
        loss = likelihood_term(F.relu(logits), self.p, self.seed_scale)
        (layer_score,) = torch.autograd.grad(loss, logits, retain_graph=True)
        gamma = connection_gamma(penultimate, logits_layer, layer_score)
        mean = gamma.mean(dim=(2, 3), keepdim=True)
        gamma = torch.where(mean > 0, gamma / torch.where(mean > 0, mean, torch.ones_like(mean)),
                            torch.ones_like(gamma))
        _, rescored = apply_layer(logits_layer, [penultimate * gamma], self.params[logits_layer.name])
        results["imagenet.scores_interactive"] = rescored.mean(dim=(2, 3))
        results["imagenet.gamma"] = gamma
        return results

