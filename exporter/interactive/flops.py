"""Convolution FLOPs of the exported graph, for effective TFLOP/s in benchmarks.

Counted: every convolution of the forward pass, and every transposed convolution of the InterActive
backward pass (one per conv layer whose input lies on the gradient path, the same FLOPs as that conv),
plus the re-weighted fc8 of the ImageNet head. Masks, routing and connection sums are memory-bound and
not counted, so the figure is a lower bound on the arithmetic done.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GraphFlops:
    forward: int
    backward: int
    head: int

    @property
    def total(self) -> int:
        return self.forward + self.backward + self.head


def conv_flops(spec, layer, sizes) -> int:
    out_h, out_w = sizes[layer.name]
    channels_in = spec.channels_of(layer.inputs[0]) // layer.groups  # each output sees its group's inputs
    return 2 * channels_in * layer.channels * layer.window[0] * layer.window[1] * out_h * out_w


def graph_flops(graph, height: int, width: int) -> GraphFlops:
    """FLOPs per image of an InterActiveGraph at one input size."""
    spec = graph.spec
    sizes = spec.spatial_sizes(height, width)
    convs = [layer for layer in spec.conv_layers()]
    forward = sum(conv_flops(spec, layer, sizes) for layer in convs if layer.name in graph.forward_layers)
    backward = sum(conv_flops(spec, layer, sizes) for layer in convs
                   if layer.name in graph.gradient_layers and layer.inputs[0] in graph.gradient_layers)
    head = 0
    if graph.head in ("imagenet", "both"):
        at_pool = pooled_layers(spec)  # the class scores' layers where they run on the pooled map
        pooled = sum(conv_flops(spec, layer, {layer.name: (1, 1)}) for layer in at_pool)
        if not graph.interactive:
            forward += pooled
        else:
            head = pooled if at_pool else conv_flops(spec, spec.layer(spec.head_logits), sizes)
    return GraphFlops(forward, backward, head)


def pooled_layers(spec) -> list:
    """The weighted layers the class scores apply to the pooled map: a head after the pool, or a classifier
    that commutes with the mean (InterActiveGraph.head_outputs); none where they are a score map's mean."""
    if spec.head_pooled:
        return [layer for layer in spec.head_chain() if layer.op == "conv"]
    logits = spec.layer(spec.head_logits)
    return [logits] if logits.commutes_with_mean else []
