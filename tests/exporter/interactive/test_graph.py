"""The explicit InterActive graph against the torch.autograd reference: the project's main check."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interactive_trt.exporter.interactive.graph import InterActiveGraph, route_to_first_argmax
from interactive_trt.exporter.interactive.reference import AutogradReference, connection_gamma
from interactive_trt.contracts.spec import INPUT, Layer
from interactive_trt.exporter.onnx.verify import rel_l2

REL_L2 = 1e-5  # fp32, same arithmetic order on both sides except the backward pass itself


def assert_all_close(got: dict, expected: dict, bound: float = REL_L2):
    assert list(got) == list(expected)
    errors = {name: rel_l2(got[name].numpy(), expected[name].numpy()) for name in expected}
    bad = {name: err for name, err in errors.items() if not err <= bound}
    assert not bad, f"outputs over rel L2 {bound}: {bad}"
    for name, value in expected.items():
        if name.endswith("gamma") and not name.startswith("imagenet"):
            assert float(value.abs().sum()) > 0, f"{name} is identically zero: the check would be vacuous"


@pytest.mark.parametrize("config", ["last", "next"])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_graph_equals_autograd_on_noise(small_spec, small_weights, config, p):
    image = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 3, 224, 256), dtype=np.float32))
    graph = InterActiveGraph(small_spec, small_weights, config=config, p=p)
    reference = AutogradReference(small_spec, small_weights, config=config, p=p)
    with torch.no_grad():
        got = graph.named_outputs(image)
    assert_all_close(got, reference(image))


@pytest.mark.parametrize("name", ["chelsea", "astronaut", "coffee", "camera"])
def test_graph_equals_autograd_on_real_photos(small_spec, small_weights, photo_batches, name):
    image = torch.from_numpy(photo_batches[name])
    graph = InterActiveGraph(small_spec, small_weights, config="last", p=2)
    reference = AutogradReference(small_spec, small_weights, config="last", p=2)
    with torch.no_grad():
        got = graph.named_outputs(image)
    assert_all_close(got, reference(image))


def test_photos_have_exact_pool_ties_that_a_naive_routing_would_duplicate(small_spec, small_weights, photo_batches):
    """Flat regions give tied windows; routing to every tied position breaks gradient mass."""
    graph = InterActiveGraph(small_spec, small_weights)
    with torch.no_grad():
        acts, _ = graph.run_forward(torch.from_numpy(photo_batches["astronaut"]))
    x = acts["conv1_2"]
    windows = x.unfold(2, 2, 2).unfold(3, 2, 2).reshape(*x.shape[:2], x.shape[2] // 2, x.shape[3] // 2, 4)
    peak = windows.amax(-1, keepdim=True)
    tied = ((windows == peak).sum(-1) > 1) & (peak.squeeze(-1) > 0)
    assert int(tied.sum()) > 1000
    grad_out = torch.rand_like(acts["pool1"])
    routed = graph.pool_input_grad(small_spec.layer("pool1"), x, grad_out)
    naive = (x == F.interpolate(acts["pool1"], scale_factor=2, mode="nearest")).float() * \
        F.interpolate(grad_out, scale_factor=2, mode="nearest")
    assert torch.allclose(routed.sum(), grad_out.sum(), rtol=1e-5)
    assert float(naive.sum()) > float(grad_out.sum()) * 1.001


@pytest.mark.parametrize("kernel, stride, side, pads", [
    (2, 2, 16, (0, 0, 0, 0)), (3, 2, 15, (0, 0, 0, 0)), (3, 1, 15, (0, 0, 0, 0)),
    (3, 2, 16, (0, 0, 0, 0)),   # floor mode that does not tile: the last row and column get no gradient
    (2, 2, 15, (0, 0, 0, 0)),   # the same with non-overlapping windows
    (3, 2, 16, (1, 1, 1, 1)),   # ResNet's stem pool: pads with -inf, and a residue
    (3, 2, 16, (0, 0, 1, 1)),   # TensorFlow's 'same': asymmetric pads
])
def test_pool_routing_matches_autograd_with_ties(small_spec, small_weights, kernel, stride, side, pads):
    """Non-overlapping and overlapping windows, with many exact ties (quantised values)."""
    rng = np.random.default_rng(kernel * 10 + stride + side)
    x = torch.from_numpy(rng.integers(0, 3, size=(2, 3, side, side)).astype(np.float32)).requires_grad_(True)
    layer = Layer("pool", "maxpool", ("image",), 3, kernel=kernel, stride=stride, pads=pads)
    top, left, bottom, right = pads
    pooled = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), kernel, stride)
    grad_out = torch.from_numpy(rng.random(pooled.shape, dtype=np.float32))
    (expected,) = torch.autograd.grad(pooled, x, grad_out)
    graph = InterActiveGraph(small_spec, small_weights)
    residue = (side + top + bottom - kernel) % stride
    graph.residues = {"pool": (residue, residue)}
    if kernel != stride:
        graph.register_buffer("pool__scatter", graph._scatter_kernel(
            Layer("pool", "maxpool", ("conv1_1",), small_spec.channels_of("conv1_1"), kernel=kernel, stride=stride)
        )[: 3 * kernel * kernel])
    got = graph.pool_input_grad(layer, x.detach(), grad_out)
    # overlapping windows add at shared positions in another order: allow float rounding only
    assert got.shape == x.shape
    assert torch.allclose(got, expected, rtol=0, atol=1e-6)
    assert torch.equal(got != 0, expected != 0)
    assert torch.allclose(got.sum(), grad_out.sum())


def test_routing_takes_the_first_maximum_of_each_window_exactly():
    windows = [torch.tensor([1.0, 2.0, 5.0, 3.0]), torch.tensor([1.0, 5.0, 5.0, 3.0]),
               torch.tensor([1.0, 2.0, 5.0, 7.0])]
    grad = torch.tensor([0.1, -0.3, 0.7, 1e-30])
    routed = torch.stack(route_to_first_argmax(grad, windows))
    assert torch.equal(routed, torch.tensor([[0.1, 0, 0.7, 0], [0, -0.3, 0, 0], [0, 0, 0, 1e-30]]))
    half = route_to_first_argmax(grad.half(), [w.half() for w in windows])
    assert torch.equal(torch.stack(half), routed.half())


def test_relu_mask_passes_exactly_where_the_response_is_positive(small_spec, small_weights):
    graph = InterActiveGraph(small_spec, small_weights)
    layer = small_spec.layer("conv1_1")
    x = torch.relu(torch.tensor([-2.0, -0.0, 0.0, 1e-38, 3.0]))
    grad = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert graph.through_activation(layer, x, x, grad).tolist() == [0, 0, 0, 4, 5]


@pytest.mark.parametrize("kernel, pads, stride, groups, side", [
    (3, (1, 1, 1, 1), 1, 1, 12), (7, (0, 0, 0, 0), 1, 1, 12), (1, (0, 0, 0, 0), 1, 1, 12),
    (3, (1, 1, 1, 1), 2, 1, 12),      # strided (ResNet), no residue
    (3, (1, 1, 1, 1), 2, 1, 13),      # strided with a residue: output padding restores the size
    (7, (3, 3, 3, 3), 2, 1, 16),      # ResNet's stem
    (3, (0, 0, 1, 1), 2, 4, 12),      # TensorFlow 'same', grouped
    (5, (1, 1, 2, 2), 2, 8, 16),      # EfficientNet's strided depthwise 5x5
    (3, (1, 1, 1, 1), 1, 8, 12),      # depthwise, stride 1
    (1, (0, 0, 0, 0), 2, 1, 12),      # ResNet's strided 1x1 downsample
])
def test_connection_sum_equals_gradient_of_all_ones_conv(small_spec, small_weights, kernel, pads, stride, groups,
                                                         side):
    """INTERACTIVE.md: gamma equals the input gradient of <G, conv(X, all-ones)> with the successor's
    groups, stride and pads; grouped successors give one map per input channel."""
    rng = np.random.default_rng(kernel * 100 + side + groups)
    x = torch.from_numpy(rng.random((2, 8, side, side), dtype=np.float32))
    successor = Layer("s", "conv", ("image",), 16, kernel=kernel, pads=pads, stride=stride, groups=groups,
                      in_channels=8)
    top, _, bottom, _ = pads
    span = side + top + bottom - kernel
    layer_score = torch.from_numpy(rng.standard_normal((2, 16, span // stride + 1, span // stride + 1),
                                                       dtype=np.float32))
    graph = InterActiveGraph(small_spec, small_weights)
    graph.residues = {"s": (span % stride, span % stride)}
    got = graph.connection_sum(successor, layer_score)
    assert got.shape == ((2, 1, side, side) if groups == 1 else (2, 8, side, side))
    assert rel_l2(got.numpy(), connection_gamma(x, successor, layer_score).numpy()) < 1e-6


def test_p1_layer_score_is_constant_at_the_top(small_spec, small_weights):
    """Eq. (5) with p = 1: the seed is 1/(W H) everywhere (then masked by fc7's ReLU)."""
    graph = InterActiveGraph(small_spec, small_weights, config="next", p=1)
    image = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32))
    with torch.no_grad():
        acts, pre = graph.run_forward(image)
        scores = graph.layer_scores_next(acts, pre)
    fc7 = scores["fc7"]
    assert set(torch.unique(fc7).tolist()) <= {0.0, 1.0}  # fc7 is 1x1 at 224: 1/(WH) = 1


def test_seed_scale_scales_gamma_and_leaves_imagenet_scores(small_spec, small_weights, photo_batches):
    image = torch.from_numpy(photo_batches["coffee"])
    with torch.no_grad():
        one = InterActiveGraph(small_spec, small_weights, seed_scale=1.0).named_outputs(image)
        big = InterActiveGraph(small_spec, small_weights, seed_scale=1024.0).named_outputs(image)
    assert torch.allclose(big["pool3.gamma"], one["pool3.gamma"] * 1024, rtol=1e-5)
    assert torch.allclose(big["imagenet.scores_interactive"], one["imagenet.scores_interactive"], rtol=1e-5)
    assert torch.allclose(big["imagenet.gamma"], one["imagenet.gamma"], rtol=1e-5)


def test_interactive_scores_differ_from_original(small_spec, small_weights, photo_batches):
    """A broken re-weighting that silently used gamma = 1 would make the two heads equal."""
    with torch.no_grad():
        out = InterActiveGraph(small_spec, small_weights).named_outputs(torch.from_numpy(photo_batches["chelsea"]))
    assert not torch.allclose(out["imagenet.scores_orig"], out["imagenet.scores_interactive"])
    assert torch.allclose(out["imagenet.gamma"].mean(dim=(2, 3)), torch.ones(1, 1), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("bucket, config, p", [((224, 224), "last", 2.0), ((416, 640), "last", 1.0)])
def test_full_size_vgg19_graph_equals_autograd(photos, bucket, config, p):
    from interactive_trt.common.imaging import prepare
    from interactive_trt.exporter.networks.vgg import vgg19_spec
    from interactive_trt.exporter.networks.weights import random_weights

    spec = vgg19_spec()
    weights = random_weights(spec, seed=7)
    if bucket == (224, 224):
        image = np.random.default_rng(5).standard_normal((2, 3, 224, 224), dtype=np.float32)
    else:
        image = prepare(photos["chelsea"], bucket, spec.preprocessing)[None]
    image = torch.from_numpy(image)
    graph = InterActiveGraph(spec, weights, config=config, p=p)
    with torch.no_grad():
        got = graph.named_outputs(image)
    del graph
    assert_all_close(got, AutogradReference(spec, weights, config=config, p=p)(image))


def test_graph_and_reference_share_the_weights_memory_instead_of_copying_it(small_spec, small_weights):
    """An export holds the weights once while it verifies (VGG-19: three copies were 1.6 GiB of its peak):
    the float32 graph and the reference read the arrays' own memory; a read-only array is copied."""
    from interactive_trt.exporter.interactive.forward import shared_tensor

    layer = small_spec.parameter_layers()[0].name
    weight = small_weights.arrays[layer][0]
    graph = InterActiveGraph(small_spec, small_weights)
    reference = AutogradReference(small_spec, small_weights)
    assert np.shares_memory(getattr(graph, f"{layer}__weight").numpy(), weight)
    assert np.shares_memory(reference.params[layer][0].numpy(), weight)
    frozen = weight.copy()
    frozen.flags.writeable = False
    assert not np.shares_memory(shared_tensor(frozen).numpy(), frozen)
    assert torch.equal(shared_tensor(frozen), torch.from_numpy(weight))


def test_a_classifier_that_commutes_with_the_mean_scores_the_pooled_map(small_spec, small_weights):
    """fc8 (1x1, linear) of the pooled fc7 map gives the dense score map's mean, at one position instead of
    every one: the forward-only graph computes no score map, the InterActive one only the original (its layer
    score reads fc8 > 0 there), and both agree with the reference, which takes the mean of dense maps."""
    from interactive_trt.exporter.interactive.flops import graph_flops

    logits = small_spec.layer(small_spec.head_logits)
    assert logits.commutes_with_mean
    image = torch.from_numpy(np.random.default_rng(5).standard_normal((2, 3, 320, 352), dtype=np.float32))
    assert small_spec.spatial_sizes(320, 352)[logits.name] == (4, 5)  # a map, not one position
    forward_only = InterActiveGraph(small_spec, small_weights, interactive=False)
    graph = InterActiveGraph(small_spec, small_weights)
    assert logits.name not in forward_only.forward_layers and logits.name in graph.forward_layers
    reference = AutogradReference(small_spec, small_weights)
    with torch.no_grad():
        scores = forward_only.named_outputs(image)["imagenet.scores_orig"]
        got = graph.named_outputs(image)
    expected = reference(image)
    assert rel_l2(scores.numpy(), expected["imagenet.scores_orig"].numpy()) <= REL_L2
    for name in ("imagenet.scores_orig", "imagenet.scores_interactive"):
        assert rel_l2(got[name].numpy(), expected[name].numpy()) <= REL_L2, name
    channels_in = small_spec.channels_of(logits.inputs[0])
    assert graph_flops(graph, 320, 352).head == 2 * channels_in * logits.channels  # one position
    dense = graph_flops(graph, 320, 352).forward - graph_flops(forward_only, 320, 352).forward
    assert dense == 2 * channels_in * logits.channels * (4 * 5 - 1)


@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (2, 1, 0, 3), (0, 0, 1, 0), (3, 2, 2, 1)])
def test_a_reflect_paddings_gradient_folds_the_mirrored_border_back(pads):
    """The adjoint of a reflect padding (graph.unpadded, by slices from either end) equals autograd's
    through F.pad, for symmetric and one-sided pads, at the smallest map a reflect padding reads (one row
    more than its widest side: both borders fold onto the same rows) and a larger one; a zero padding's is
    the middle, also of a padding that adds zero channels (one before the map's three, two after)."""
    from interactive_trt.exporter.interactive.graph import unpadded

    top, left, bottom, right = pads
    for height, width in ((max(top, bottom) + 1, max(left, right) + 1), (9, 7)):
        for mode in ("reflect", "constant", "channels"):
            x = torch.randn(2, 3, height, width, dtype=torch.float64, requires_grad=True)
            widened = (1, 2) if mode == "channels" else (0, 0)
            y = F.pad(x, (left, right, top, bottom, *widened), mode="reflect" if mode == "reflect" else "constant")
            grad = torch.randn(y.shape, dtype=torch.float64)
            (expected,) = torch.autograd.grad(y, x, grad)
            layer = Layer(name="padded", op="pad", inputs=(INPUT,), channels=y.shape[1], pads=pads,
                          pad_mode="reflect" if mode == "reflect" else "constant",
                          in_channels=3 if mode == "channels" else 0, offset=widened[0])
            assert layer.channel_pads == widened
            got = unpadded(grad, layer)
            assert got.shape == x.shape and torch.allclose(got, expected, rtol=0, atol=1e-12), (height, width, mode)
