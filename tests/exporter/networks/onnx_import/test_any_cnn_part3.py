"""Any CNN, part 3 (INTERACTIVE.md): smooth activations, gates, per-channel affine maps and LayerNorm in the
layer table, the explicit graph against the autograd reference (whose gamma is the independent input
gradient of <G, conv(X, ones)>), and the exported graph on every installed runtime."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from interactive_trt.common.errors import SpecError
from interactive_trt.contracts.spec import SMOOTH_ACTIVATIONS, Layer, ModelSpec, ResizeRule
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.exporter.networks.weights import Weights, random_weights
from interactive_trt.exporter.onnx.verify import cosine, rel_l2

SMALL = ResizeRule(target_side=64, multiple=8, min_side=32)
PARAMETERS = {"hardsigmoid": (1 / 6, 0.5), "leakyrelu": (0.1, 0.0), "elu": (0.7, 0.0),
              "selu": (1.6732632423543772, 1.0507009873554805), "celu": (1.5, 0.0), "swish": (1.702, 0.0),
              "thresholdedrelu": (3.0, 0.0)}  # ThresholdedRelu's kink at 3, which kink_image hits exactly


def outputs_of(spec, weights, batch, **options):
    graph = InterActiveGraph(spec, weights, **options).eval()
    reference = AutogradReference(spec, weights, **options)
    image = torch.from_numpy(batch)
    with torch.no_grad():
        got = {k: v.numpy() for k, v in graph.named_outputs(image).items()}
    return got, {k: v.numpy() for k, v in reference(image).items()}


def assert_graph_equals_autograd(spec, weights, batch, **options):
    got, expected = outputs_of(spec, weights, batch, **options)
    for name, value in expected.items():
        assert rel_l2(got[name], value) <= 1e-5, name
    return got


def kink_image(seed: int = 0) -> np.ndarray:
    """Noise plus every kink of the activations exactly: 0, +-3 (HardSwish, HardSigmoid), 6 and ties."""
    image = np.random.default_rng(seed).standard_normal((2, 3, 32, 32), dtype=np.float32) * 3
    image[:, :, ::4, ::4] = np.resize(np.float32([0, 3, -3, 6, -6, 1e-3, -1e-3]), image[:, :, ::4, ::4].shape)
    return image


def identity_1x1(weights: Weights, name: str) -> None:
    weight, bias = weights.arrays[name]
    weight[:] = np.eye(weight.shape[0], weight.shape[1], dtype=np.float32)[:, :, None, None]
    bias[:] = 0


def activation_spec(kind: str, alone: bool) -> ModelSpec:
    """t -> s (the activation on s, or an act layer after a linear s) -> a 3x3 conv -> T. s's pre-activation
    is the image itself (identity weights), so the kinks of the image are the activation's kinks."""
    alpha, beta = PARAMETERS.get(kind, (0.0, 0.0))
    if alone:
        middle = (Layer("s", "conv", ("t",), 3, relu=False, in_channels=3),
                  Layer("act", "act", ("s",), 3, act=kind, alpha=alpha, beta=beta))
    else:
        middle = (Layer("s", "conv", ("t",), 3, act=kind, alpha=alpha, beta=beta, in_channels=3),)
    layers = (Layer("t", "conv", ("image",), 3, relu=False, in_channels=3), *middle,
              Layer("c", "conv", (middle[-1].name,), 8, kernel=3, padding=1, in_channels=3),
              Layer("head", "conv", ("c",), 5, relu=False, in_channels=8))
    return ModelSpec(name=f"{kind}_{'alone' if alone else 'on_conv'}", layers=layers, feature_layers=("t", "s"),
                     last_layer="c", head_logits="head", resize=SMALL)


@pytest.mark.parametrize("alone", [False, True], ids=["on_conv", "act_layer"])
@pytest.mark.parametrize("kind", SMOOTH_ACTIVATIONS)
def test_each_activation_at_its_kinks_equals_autograd(kind, alone):
    spec = activation_spec(kind, alone)
    weights = random_weights(spec, seed=1)
    identity_1x1(weights, "t")
    identity_1x1(weights, "s")
    for config in ("last", "next"):
        got = assert_graph_equals_autograd(spec, weights, kink_image(), config=config, head="features")
        assert np.abs(got["t.gamma"]).max() > 0


def test_the_derivatives_are_written_out_not_masked():
    """A smooth activation's derivative is not a mask: G changes where it passes smoothly (a test that a
    ReLU mask standing in for SiLU's derivative would fail)."""
    silu, relu = activation_spec("silu", False), activation_spec("silu", False)
    relu = replace(relu, layers=tuple(replace(layer, act="") if layer.name == "s" else layer for layer in relu.layers))
    weights = random_weights(silu, seed=1)
    a, _ = outputs_of(silu, weights, kink_image(), head="features")
    b, _ = outputs_of(relu, weights, kink_image(), head="features")
    assert rel_l2(a["t.gamma"], b["t.gamma"]) > 1e-2


def se_spec(gate: str = "sigmoid", act: str = "silu") -> ModelSpec:
    """An EfficientNet/MobileNetV3 block: expand, depthwise, squeeze-and-excitation gate, project, residual."""
    alpha, beta = PARAMETERS.get(gate, (0.0, 0.0))
    layers = (
        Layer("stem", "conv", ("image",), 8, kernel=3, stride=2, padding=1, act=act, in_channels=3),
        Layer("expand", "conv", ("stem",), 16, act=act, in_channels=8),
        Layer("dw", "conv", ("expand",), 16, kernel=3, padding=1, groups=16, act=act, in_channels=16),
        Layer("squeeze", "gap", ("dw",), 16),
        Layer("reduce", "conv", ("squeeze",), 4, act=act, in_channels=16),
        Layer("excite", "conv", ("reduce",), 16, act=gate, alpha=alpha, beta=beta, in_channels=4),
        Layer("gated", "mul", ("dw", "excite"), 16),
        Layer("project", "conv", ("gated",), 8, relu=False, in_channels=16),
        Layer("residual", "add", ("project", "stem"), 8, relu=False),
        Layer("top", "conv", ("residual",), 32, act=act, in_channels=8),
        Layer("fc", "conv", ("top",), 10, relu=False, in_channels=32),
    )
    return ModelSpec(name=f"se_{gate}_{act}", layers=layers, feature_layers=("stem", "dw", "residual"),
                     last_layer="top", head_logits="fc", resize=SMALL)


@pytest.mark.parametrize("gate, act", [("sigmoid", "silu"), ("hardsigmoid", "hardswish")])
def test_a_squeeze_and_excitation_block_equals_autograd(gate, act):
    spec = se_spec(gate, act)
    assert [s.name for s in spec.successors("dw")] == ["project"]  # through the gate, not into its branch
    assert [s.name for s in spec.successors("expand")] == ["dw"]
    weights = random_weights(spec, seed=2)
    batch = np.random.default_rng(3).standard_normal((2, 3, 64, 64), dtype=np.float32)
    for config, p in (("last", 2), ("next", 1)):
        got = assert_graph_equals_autograd(spec, weights, batch, config=config, p=p)
        assert got["dw.gamma"].shape == (2, 1, 32, 32) and got["stem.gamma"].shape == (2, 1, 32, 32)


def test_a_gate_per_position_equals_autograd():
    """scSE's spatial gate, x * sigmoid(conv1x1(x)) with one output channel: the factor's gradient is summed
    over the channels; its conv reads t directly, so it is a successor of t (the gate is not a route)."""
    layers = (
        Layer("stem", "conv", ("image",), 8, kernel=3, stride=2, padding=1, act="silu", in_channels=3),
        Layer("attend", "conv", ("stem",), 1, act="sigmoid", in_channels=8),
        Layer("gated", "mul", ("stem", "attend"), 8),
        Layer("top", "conv", ("gated",), 16, kernel=3, padding=1, act="mish", in_channels=8),
        Layer("fc", "conv", ("top",), 10, relu=False, in_channels=16),
    )
    spec = ModelSpec(name="spatial_gate", layers=layers, feature_layers=("stem", "gated"), last_layer="top",
                     head_logits="fc", resize=SMALL)
    assert spec.gate_input(spec.layer("gated")) == "attend"
    assert [s.name for s in spec.successors("stem")] == ["attend", "top"]
    weights = random_weights(spec, seed=4)
    batch = np.random.default_rng(5).standard_normal((2, 3, 64, 64), dtype=np.float32)
    for config in ("last", "next"):
        got = assert_graph_equals_autograd(spec, weights, batch, config=config)
        assert got["stem.gamma"].shape == (2, 1, 32, 32)


def cbam_spec() -> ModelSpec:
    """CBAM on a ReLU map: a channel gate from a global average and a global max pool through one MLP, then
    a spatial gate from the channels' mean and maximum through a 7x7 conv."""
    layers = (
        Layer("pre", "conv", ("image",), 3, kernel=3, padding=1, in_channels=3),
        Layer("stem", "conv", ("pre",), 8, kernel=3, stride=2, padding=1, in_channels=3),
        Layer("avg", "gap", ("stem",), 8),
        Layer("peak", "gmp", ("stem",), 8),
        Layer("avg_fc1", "conv", ("avg",), 4, in_channels=8),
        Layer("avg_fc2", "conv", ("avg_fc1",), 8, relu=False, in_channels=4),
        Layer("peak_fc1", "conv", ("peak",), 4, in_channels=8),
        Layer("peak_fc2", "conv", ("peak_fc1",), 8, relu=False, in_channels=4),
        Layer("channel_factor", "add", ("avg_fc2", "peak_fc2"), 8, relu=False, act="sigmoid"),
        Layer("channel_gated", "mul", ("stem", "channel_factor"), 8),
        Layer("mean_c", "channel_mean", ("channel_gated",), 1),
        Layer("max_c", "channel_max", ("channel_gated",), 1),
        Layer("both", "concat", ("mean_c", "max_c"), 2),
        Layer("spatial_factor", "conv", ("both",), 1, kernel=7, padding=3, relu=False, act="sigmoid", in_channels=2),
        Layer("gated", "mul", ("channel_gated", "spatial_factor"), 8),
        Layer("top", "conv", ("gated",), 16, kernel=3, padding=1, in_channels=8),
        Layer("fc", "conv", ("top",), 10, relu=False, in_channels=16),
    )
    return ModelSpec(name="cbam", layers=layers, feature_layers=("pre", "stem", "gated"), last_layer="top",
                     head_logits="fc", resize=SMALL)


def cbam_weights(spec: ModelSpec) -> Weights:
    """Random weights with the stem's channel 1 a copy of channel 0, and their channel gates alike (the
    channel maximum ties between them wherever they lead, on values whose gradient is not masked), and the
    stem's kernels positive (each channel's
    global maximum lies inside a flat bright patch, tied at every position there)."""
    weights = random_weights(spec, seed=8)
    identity_1x1(weights, "pre")  # pre passes the image on (ReLU aside): its successor is stem, below the gates
    weights.arrays["pre"] = (np.pad(weights.arrays["pre"][0][:, :, :1, :1], ((0, 0), (0, 0), (1, 1), (1, 1))),
                             weights.arrays["pre"][1])
    weight, bias = weights.arrays["stem"]
    weight[:] = np.abs(weight)
    weight[0] *= 3  # channels 0 and 1 lead
    for name in ("stem", "avg_fc2", "peak_fc2"):  # equal maps, equal channel factors: equal gated channels
        weight, bias = weights.arrays[name]
        weight[1], bias[1] = weight[0], bias[0]
    return weights


def cbam_image() -> np.ndarray:
    """Noise with a flat bright patch: with positive kernels, each channel's global maximum ties across its
    inside."""
    batch = np.abs(np.random.default_rng(9).standard_normal((2, 3, 64, 64), dtype=np.float32))
    batch[:, :, 8:24, 8:24] = 4.0
    return batch


def test_cbam_equals_autograd_through_its_ties():
    """Gradients of both maxima go to the first arg-max, as autograd's torch.max: with tied channels and
    flat patches, routing to every tied position would differ."""
    spec = cbam_spec()
    assert [s.name for s in spec.successors("stem")] == ["top"]  # the gates' branches are no successors
    assert [s.name for s in spec.successors("pre")] == ["stem"]  # its layer score passes both gates
    assert spec.reads_pooled("channel_factor") and spec.gate_input(spec.layer("gated")) == "spatial_factor"
    weights = cbam_weights(spec)
    batch = cbam_image()
    weight, bias = (torch.from_numpy(array) for array in weights.arrays["stem"])
    stem = torch.relu(torch.nn.functional.conv2d(torch.from_numpy(batch), weight, bias, stride=2, padding=1))
    peaks = stem.flatten(2).amax(dim=2, keepdim=True)
    tied = ((stem.flatten(2) == peaks) & (peaks > 0)).sum(dim=2) > 1
    assert tied.all(), tied  # every channel's global maximum ties across the patch
    assert (stem[:, :2].amax(dim=1) == stem.amax(dim=1)).float().mean() > 0.1  # channels 0 and 1 lead, tied
    for config, p in (("last", 2), ("next", 1)):
        got = assert_graph_equals_autograd(spec, weights, batch, config=config, p=p)
        assert got["stem.gamma"].shape == (2, 1, 32, 32) and got["pre.gamma"].shape == (2, 1, 64, 64)


def convnext_spec() -> ModelSpec:
    """A ConvNeXt block on an NCHW map: depthwise 7x7, LayerNorm over channels, pointwise MLP with GELU,
    layer scale, residual; a pre-activation BatchNorm (a per-channel affine map before a ReLU)."""
    layers = (
        Layer("stem", "conv", ("image",), 8, kernel=4, stride=4, relu=False, in_channels=3),
        Layer("stem_norm", "layernorm", ("stem",), 8, bn_eps=1e-6),
        Layer("dw", "conv", ("stem_norm",), 8, kernel=7, padding=3, groups=8, relu=False, in_channels=8),
        Layer("norm", "layernorm", ("dw",), 8, bn_eps=1e-6),
        Layer("pw1", "conv", ("norm",), 32, act="gelu", in_channels=8),
        Layer("pw2", "conv", ("pw1",), 8, relu=False, in_channels=32),
        Layer("scale", "affine", ("pw2",), 8),
        Layer("block", "add", ("stem_norm", "scale"), 8, relu=False),
        Layer("bn", "affine", ("block",), 8),
        Layer("bn_relu", "act", ("bn",), 8, act="gelu_tanh"),
        Layer("down", "conv", ("bn_relu",), 16, kernel=2, stride=2, act="tanh", in_channels=8),
        Layer("fc", "conv", ("down",), 10, relu=False, in_channels=16),
    )
    return ModelSpec(name="convnext_like", layers=layers, feature_layers=("stem_norm", "block", "pw1"),
                     last_layer="down", head_logits="fc", resize=ResizeRule(target_side=64, multiple=8, min_side=32))


def test_layernorm_affine_maps_and_a_convnext_block_equal_autograd():
    spec = convnext_spec()
    assert [s.name for s in spec.successors("stem_norm")] == ["dw"]
    assert [s.name for s in spec.successors("block")] == ["down"]  # through the BN affine and its activation
    weights = random_weights(spec, seed=4)
    batch = np.random.default_rng(5).standard_normal((2, 3, 64, 64), dtype=np.float32)
    got = assert_graph_equals_autograd(spec, weights, batch)
    assert got["block.gamma"].shape == (2, 1, 16, 16)
    assert got["stem_norm.gamma"].shape == (2, 8, 16, 16)  # its successor is depthwise


def grn_spec() -> ModelSpec:
    """A ConvNeXt V2 block: depthwise 7x7, LayerNorm, pointwise MLP with GELU then a Global Response Norm,
    residual; a second GRN straight on the block's output, before a strided conv."""
    layers = (
        Layer("stem", "conv", ("image",), 8, kernel=4, stride=4, relu=False, in_channels=3),
        Layer("dw", "conv", ("stem",), 8, kernel=7, padding=3, groups=8, relu=False, in_channels=8),
        Layer("norm", "layernorm", ("dw",), 8, bn_eps=1e-6),
        Layer("pw1", "conv", ("norm",), 32, act="gelu", in_channels=8),
        Layer("grn", "grn", ("pw1",), 32, bn_eps=1e-6),
        Layer("pw2", "conv", ("grn",), 8, relu=False, in_channels=32),
        Layer("block", "add", ("stem", "pw2"), 8, relu=False),
        Layer("grn2", "grn", ("block",), 8, bn_eps=1e-6),
        Layer("down", "conv", ("grn2",), 16, kernel=2, stride=2, act="gelu", in_channels=8),
        Layer("fc", "conv", ("down",), 10, relu=False, in_channels=16),
    )
    return ModelSpec(name="convnextv2_like", layers=layers, feature_layers=("stem", "pw1", "block"),
                     last_layer="down", head_logits="fc", resize=ResizeRule(target_side=64, multiple=8, min_side=32))


def grn_weights(spec) -> Weights:
    """Seeded weights with GRN weights of both signs, and two of pw1's channels silent (a GELU of 0 each): a
    norm of zero, where the gradient through it is 0 by autograd's convention."""
    weights = random_weights(spec, seed=8)
    rng = np.random.default_rng(9)
    for name in ("grn", "grn2"):
        weight, bias = weights.arrays[name]
        weight[:] = rng.standard_normal(weight.shape) * 0.7
    weight, bias = weights.arrays["pw1"]
    weight[:2], bias[:2] = 0, 0
    return weights


def test_a_global_response_norm_equals_the_authors_formula_and_autograd():
    """The forward pass is the ConvNeXt V2 authors' GRN on a channels-last map; the explicit backward pass
    equals autograd's, at noise, at a photo-like smooth input, and through the channels of zero norm."""
    from interactive_trt.exporter.interactive.forward import global_response_norm

    x = torch.from_numpy(np.random.default_rng(10).standard_normal((2, 6, 5, 7), dtype=np.float32))
    x[:, 1] = 0
    weight, bias = torch.randn(6), torch.randn(6)
    last = x.permute(0, 2, 3, 1)
    norms = torch.norm(last, p=2, dim=(1, 2), keepdim=True)
    authors = weight * (last * (norms / (norms.mean(dim=-1, keepdim=True) + 1e-6))) + bias + last
    assert torch.allclose(global_response_norm(x, weight, bias, 1e-6), authors.permute(0, 3, 1, 2), atol=1e-6)
    spec = grn_spec()
    assert [s.name for s in spec.successors("pw1")] == ["pw2"]  # through the GRN: weight-free, as LayerNorm
    assert [s.name for s in spec.successors("block")] == ["down"]
    weights = grn_weights(spec)
    noise = np.random.default_rng(11).standard_normal((2, 3, 64, 64), dtype=np.float32)
    smooth = np.cumsum(np.cumsum(noise, axis=2), axis=3) / 64
    for batch, config, p in ((noise, "last", 2), (smooth.astype(np.float32), "next", 1)):
        got = assert_graph_equals_autograd(spec, weights, batch, config=config, p=p)
        assert got["pw1.gamma"].shape == (2, 1, 16, 16)
        assert np.all(np.isfinite(got["pw1.gamma"]))


def groupnorm_spec() -> ModelSpec:
    """BiT's pre-activation block with GroupNorm (4 groups), and PoolFormer's one-group GroupNorm before its
    pooling mixer; the conv after each GroupNorm reaches the layer before it through the norm."""
    layers = (
        Layer("stem", "conv", ("image",), 8, kernel=4, stride=4, relu=False, in_channels=3),
        Layer("gn1", "groupnorm", ("stem",), 8, groups=4, bn_eps=1e-5),
        Layer("act1", "act", ("gn1",), 8, act="gelu"),
        Layer("conv1", "conv", ("act1",), 8, kernel=3, padding=1, relu=False, in_channels=8),
        Layer("block", "add", ("stem", "conv1"), 8, relu=False),
        Layer("gn2", "groupnorm", ("block",), 8, groups=1, bn_eps=1e-5),
        Layer("down", "conv", ("gn2",), 16, kernel=2, stride=2, act="relu", in_channels=8),
        Layer("fc", "conv", ("down",), 10, relu=False, in_channels=16),
    )
    return ModelSpec(name="groupnorm", layers=layers, feature_layers=("stem", "block"), last_layer="down",
                     head_logits="fc", resize=ResizeRule(target_side=64, multiple=8, min_side=32))


def test_groupnorm_equals_torch_and_autograd():
    """The forward pass is torch's GroupNorm; the explicit backward pass equals autograd's (the norm is on
    t's way to its successor: weight-free, as LayerNorm), on noise and on a smooth input, in both configs."""
    from interactive_trt.exporter.interactive.forward import group_norm

    x = torch.from_numpy(np.random.default_rng(14).standard_normal((2, 8, 5, 7), dtype=np.float32)) * 3 + 1
    weight, bias = torch.rand(8) + 0.5, torch.randn(8)
    expected = torch.nn.functional.group_norm(x, 4, weight, bias, eps=1e-5)
    assert torch.allclose(group_norm(x, weight, bias, 4, 1e-5), expected, atol=1e-5)
    spec = groupnorm_spec()
    assert [s.name for s in spec.successors("stem")] == ["conv1"] and [s.name for s in spec.successors("block")] == ["down"]
    weights = random_weights(spec, seed=15)
    noise = np.random.default_rng(16).standard_normal((2, 3, 64, 64), dtype=np.float32)
    smooth = (np.cumsum(np.cumsum(noise, axis=2), axis=3) / 64).astype(np.float32)
    for batch, config, p in ((noise, "last", 2), (smooth, "next", 1)):
        assert_graph_equals_autograd(spec, weights, batch, config=config, p=p)


def stream_spec() -> ModelSpec:
    """A MetaFormer stage: a pre-norm downsampling (LayerNorm, then a 3x3 stride-2 conv) opening a residual
    stream that only LayerNorms and residual sums read, closed by the next pre-norm downsampling."""
    layers = (
        Layer("stem", "conv", ("image",), 8, kernel=4, stride=4, relu=False, in_channels=3),
        Layer("pre", "layernorm", ("stem",), 8, bn_eps=1e-6),
        Layer("down", "conv", ("pre",), 16, kernel=3, stride=2, padding=1, relu=False, in_channels=8),
        Layer("n1", "layernorm", ("down",), 16, bn_eps=1e-6),
        Layer("f1", "conv", ("n1",), 32, act="gelu", in_channels=16),
        Layer("f1b", "conv", ("f1",), 16, relu=False, in_channels=32),
        Layer("blk", "add", ("down", "f1b"), 16, relu=False),
        Layer("n2", "layernorm", ("blk",), 16, bn_eps=1e-6),
        Layer("f2", "conv", ("n2",), 16, relu=False, in_channels=16),
        Layer("out", "add", ("blk", "f2"), 16, relu=False),
        Layer("pre2", "layernorm", ("out",), 16, bn_eps=1e-6),
        Layer("down2", "conv", ("pre2",), 24, kernel=3, stride=2, padding=1, act="gelu", in_channels=16),
        Layer("fc", "conv", ("down2",), 10, relu=False, in_channels=24),
    )
    return ModelSpec(name="stream", layers=layers, feature_layers=("n1", "out"), last_layer="down2",
                     head_logits="fc", resize=ResizeRule(target_side=64, multiple=16, min_side=32))


def test_weight_maps_a_layernorm_stream_cancels_are_found_and_are_zero():
    """In 'last' the gradient of the stream sums to 0 over the channels (LayerNorm's VJP does, and sums of it
    do): every layer whose successors are dense linear convs the stream takes in (the downsampling conv,
    the blocks' last convs) has a weight map of 0; a successor with an activation (f1's GELU), or a stream
    the seed at T reaches, does not. The graph's gamma is rounding noise there, 1e-6 of its terms."""
    from dataclasses import replace

    from interactive_trt.exporter.onnx.export import check_weight_maps
    from interactive_trt.exporter.onnx.request import ExportRequest

    spec = stream_spec()
    cancelled = {layer.name for layer in spec.layers if spec.successors(layer.name) and
                 spec.cancelled_by_norm(layer.name)}
    assert cancelled == {"stem", "pre", "f1", "n2", "blk"}, cancelled
    assert spec.cancelled_by_norm("pre") == "n1" and not spec.cancelled_by_norm("out")
    weights = random_weights(spec, seed=12)
    batch = np.random.default_rng(13).standard_normal((2, 3, 64, 64), dtype=np.float32)
    probe = replace(spec, feature_layers=("pre", "n2", "n1"))
    graph = InterActiveGraph(probe, weights, config="last", head="features").eval()
    scores = {}
    graph.observer = lambda name, grad: scores.setdefault(name, grad.detach().clone())
    with torch.no_grad():
        got = graph.named_outputs(torch.from_numpy(batch))
    for t, successor in (("pre", "down"), ("n2", "f2")):
        assert got[f"{t}.gamma"].abs().max() <= 1e-6 * scores[successor].abs().sum(dim=1).max(), t
    assert got["n1.gamma"].abs().max() >= 1e-2 * scores["f1"].abs().sum(dim=1).max()  # through its GELU
    check_weight_maps(spec, ExportRequest())
    check_weight_maps(replace(spec, feature_layers=("pre",)), ExportRequest(config="next"))
    with pytest.raises(SpecError, match="'pre': the gradient at its successor 'down' comes only through LayerNorms"):
        check_weight_maps(replace(spec, feature_layers=("pre",)), ExportRequest())
    assert_graph_equals_autograd(replace(spec, feature_layers=("pre", "blk")), weights, batch, config="next")


def test_a_layernorm_cancels_through_average_pools_and_shuffles_not_through_max_pools():
    """The import's fuzzer: a linear conv, an average pool, a channel shuffle and a LayerNorm before the max
    pool that is T. The LayerNorm's zero-sum gradient reaches the conv through the pool (the same spatial
    weights in every channel) and the shuffle (a permutation): the stem's weight map is 0. With the max pool
    in the average pool's place (each channel routed its own way) it is not."""
    def spec(pool: str) -> ModelSpec:
        layers = (
            Layer("stem", "conv", ("image",), 8, kernel=3, stride=2, padding=1, act="softplus", in_channels=3),
            Layer("c", "conv", ("stem",), 8, relu=False, in_channels=8),
            Layer("pool", pool, ("c",), 8, kernel=2, stride=2),
            Layer("shuffled", "shuffle", ("pool",), 8, groups=2),
            Layer("ln", "layernorm", ("shuffled",), 8, bn_eps=1e-6),
            Layer("T", "maxpool", ("ln",), 8, kernel=2, stride=2),
            Layer("fc", "conv", ("T",), 10, relu=False, in_channels=8),
        )
        return ModelSpec(name=f"cancelled_{pool}", layers=layers, feature_layers=("stem",), last_layer="T",
                         head_logits="fc", resize=ResizeRule(target_side=64, multiple=8, min_side=32))

    average, maximum = spec("avgpool"), spec("maxpool")
    assert average.cancelled_by_norm("stem") == "ln" and not maximum.cancelled_by_norm("stem")
    batch = np.random.default_rng(5).standard_normal((2, 3, 64, 64), dtype=np.float32)
    for probe, cancelled in ((average, True), (maximum, False)):
        weights = random_weights(probe, seed=6)
        graph = InterActiveGraph(probe, weights, config="last", head="features").eval()
        scores = {}
        graph.observer = lambda name, grad: scores.setdefault(name, grad.detach().clone())
        with torch.no_grad():
            gamma = graph.named_outputs(torch.from_numpy(batch))["stem.gamma"]
        terms = scores["c"].abs().sum(dim=1).max()
        assert (gamma.abs().max() <= 1e-6 * terms) == cancelled, probe.name


def test_exported_part3_graphs_run_the_same_on_onnxruntime_and_openvino(tmp_path):
    from interactive_trt.forms import openvino as ov_runtime
    from interactive_trt.exporter.onnx.export import export_onnx
    from interactive_trt.exporter.onnx.verification import run_onnxruntime

    batch = np.random.default_rng(6).standard_normal((2, 3, 64, 64), dtype=np.float32)
    for spec in (se_spec(), se_spec("hardsigmoid", "hardswish"), convnext_spec(), cbam_spec(), grn_spec(),
                 groupnorm_spec()):
        weights = {"cbam": cbam_weights, "convnextv2_like": grn_weights}.get(spec.name, lambda s: random_weights(s, seed=7))(spec)
        graph = InterActiveGraph(spec, weights).eval()
        path = tmp_path / f"{spec.name}.onnx"
        export_onnx(graph, path, torch.zeros(1, 3, 32, 32))
        expected = {k: v.numpy() for k, v in AutogradReference(spec, weights)(torch.from_numpy(batch)).items()}
        runs = {"onnxruntime": run_onnxruntime(path, batch, list(expected))}
        if ov_runtime.is_installed():
            runs["openvino"] = ov_runtime.run_openvino(path, batch, list(expected))
        for runtime, got in runs.items():
            for name, value in expected.items():
                assert cosine(got[name], value) >= 0.9999, (spec.name, runtime, name)
                assert rel_l2(got[name], value) <= 1e-4, (spec.name, runtime, name)


def shuffle_spec() -> ModelSpec:
    """A ShuffleNetV2 unit: the channels split in two, one half through a branch, concatenated back and
    shuffled; then a dense and a depthwise successor."""
    layers = (
        Layer("stem", "conv", ("image",), 8, kernel=3, stride=2, padding=1, in_channels=3),
        Layer("left", "slice", ("stem",), 4),
        Layer("right", "slice", ("stem",), 4, offset=4),
        Layer("branch", "conv", ("right",), 4, kernel=3, padding=1, in_channels=4),
        Layer("joined", "concat", ("left", "branch"), 8),
        Layer("shuffled", "shuffle", ("joined",), 8, groups=2),
        Layer("dense", "conv", ("shuffled",), 8, in_channels=8),
        Layer("dense_down", "maxpool", ("dense",), 8, kernel=2, stride=2),
        Layer("dw", "conv", ("shuffled",), 8, kernel=3, stride=2, padding=1, groups=8, in_channels=8),
        Layer("both", "add", ("dense_down", "dw"), 8),
        Layer("top", "conv", ("both",), 16, in_channels=8),
        Layer("fc", "conv", ("top",), 10, relu=False, in_channels=16),
    )
    return ModelSpec(name="shuffle_unit", layers=layers, feature_layers=("stem", "branch", "joined", "shuffled"),
                     last_layer="top", head_logits="fc", resize=SMALL)


def test_channel_bookkeeping_maps_gamma_back_onto_the_channels_of_t():
    spec = shuffle_spec()
    routes = {t: [(s.name, [step for step, _ in route]) for s, route in spec.successor_routes(t)]
              for t in spec.feature_layers}
    assert routes["stem"] == [("branch", ["right"]), ("dense", ["left", "joined", "shuffled"]),
                              ("dw", ["left", "joined", "shuffled"])]
    assert routes["branch"] == [("dense", ["joined", "shuffled"]), ("dw", ["joined", "shuffled"])]
    assert [spec.gamma_channels(t) for t in spec.feature_layers] == [8, 4, 8, 8]
    weights = random_weights(spec, seed=8)
    batch = np.random.default_rng(9).standard_normal((2, 3, 32, 32), dtype=np.float32)
    got = assert_graph_equals_autograd(spec, weights, batch, head="features")
    assert got["stem.gamma"].shape == (2, 8, 16, 16) and got["branch.gamma"].shape == (2, 4, 16, 16)
    # without the depthwise successor, `branch` (concatenated, then shuffled, into a dense conv) has one map
    dense_only = replace(spec, layers=tuple(layer for layer in spec.layers if layer.name not in ("dw", "both"))[:-2]
                         + (Layer("top", "conv", ("dense_down",), 16, in_channels=8),
                            Layer("fc", "conv", ("top",), 10, relu=False, in_channels=16)))
    assert dense_only.gamma_channels("branch") == 1 and dense_only.gamma_channels("stem") == 8
    assert_graph_equals_autograd(dense_only, random_weights(dense_only, seed=8), batch, head="features")


def test_non_square_kernels_and_pools_equal_autograd():
    """Inception's factorised 1x7 and 7x1 kernels, a strided 3x1 one with 'same' pads, a 3x2 max pool."""
    layers = (
        Layer("stem", "conv", ("image",), 8, kernel=3, stride=2, padding=1, in_channels=3),
        Layer("wide", "conv", ("stem",), 8, kernel=1, kernel_w=7, pads=(0, 3, 0, 3), in_channels=8),
        Layer("tall", "conv", ("wide",), 8, kernel=7, kernel_w=1, pads=(3, 0, 3, 0), in_channels=8),
        Layer("pool", "maxpool", ("tall",), 8, kernel=3, kernel_w=2, stride=2, pads=(1, 0, 1, 0)),
        Layer("strided", "conv", ("pool",), 8, kernel=3, kernel_w=1, stride=2, pads=(0, 0, 1, 0), in_channels=8),
        Layer("top", "conv", ("strided",), 16, in_channels=8),
        Layer("fc", "conv", ("top",), 10, relu=False, in_channels=16),
    )
    spec = ModelSpec(name="inception_like", layers=layers, feature_layers=("stem", "wide", "pool"),
                     last_layer="top", head_logits="fc", resize=SMALL)
    assert spec.spatial_sizes(64, 64)["pool"] == (16, 16) and spec.spatial_sizes(64, 64)["strided"] == (8, 8)
    weights = random_weights(spec, seed=10)
    assert weights.arrays["wide"][0].shape == (8, 8, 1, 7)
    batch = np.random.default_rng(11).standard_normal((2, 3, 64, 64), dtype=np.float32)
    for config in ("last", "next"):
        assert_graph_equals_autograd(spec, weights, batch, config=config, head="features")


def test_prelu_with_a_slope_per_channel_at_zero_equals_autograd():
    layers = (Layer("t", "conv", ("image",), 3, relu=False, in_channels=3),
              Layer("s", "conv", ("t",), 3, relu=False, in_channels=3),
              Layer("slopes", "prelu", ("s",), 3),
              Layer("c", "conv", ("slopes",), 8, kernel=3, padding=1, in_channels=3),
              Layer("head", "conv", ("c",), 5, relu=False, in_channels=8))
    spec = ModelSpec(name="prelu", layers=layers, feature_layers=("t",), last_layer="c", head_logits="head",
                     resize=SMALL)
    weights = random_weights(spec, seed=12)
    identity_1x1(weights, "t")
    identity_1x1(weights, "s")
    weights.arrays["slopes"][0][:] = (0.1, 0.25, -0.3)
    got = assert_graph_equals_autograd(spec, weights, kink_image(), head="features")
    assert np.abs(got["t.gamma"]).max() > 0


def test_a_layer_of_a_gates_branch_is_no_feature_layer():
    with pytest.raises(SpecError, match=r"feature layer 'reduce' lies in a gate's branch \(1 x 1 after a global "
                                        r"average pool\)"):
        replace(se_spec(), feature_layers=("dw", "reduce"))
