"""The FLOP count behind the benchmark's TFLOP/s, against VGG-19's published cost."""

from interactive_trt.exporter.interactive.flops import graph_flops
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.exporter.networks.vgg import vgg19_spec
from interactive_trt.exporter.networks.weights import random_weights


def test_vgg19_forward_matches_the_published_19_6_gmacs_and_backward_stays_below_it():
    spec = vgg19_spec(width_divisor=1)
    weights = random_weights(spec, seed=0)
    forward_only = graph_flops(InterActiveGraph(spec, weights, interactive=False), 224, 224)
    assert abs(forward_only.forward / 2 - 19.63e9) / 19.63e9 < 0.01  # torchvision's figure, in MACs
    assert forward_only.backward == 0 and forward_only.head == 0
    full = graph_flops(InterActiveGraph(spec, weights), 224, 224)
    # the backward pass stops at conv2_1, the lowest successor: it skips conv1_x and conv2_1's input grad
    assert full.forward == forward_only.forward
    assert 0.8 * full.forward < full.backward < full.forward
    assert full.head == 2 * 4096 * 1000


def test_grouped_and_strided_convs_are_counted_per_group():
    """torchvision's published ResNet costs (MACs at 224); our classifier runs at every 7x7 position
    (dense evaluation), which adds about 1.4% for ResNet-18, hence the 3% tolerance."""
    from interactive_trt.exporter.networks.efficientnet import efficientnet_lite0_spec
    from interactive_trt.exporter.networks.resnet import resnet_spec

    for depth, published in (("resnet18", 1.81e9), ("resnet50", 4.09e9)):
        spec = resnet_spec(depth)
        graph = InterActiveGraph(spec, random_weights(spec, seed=0), interactive=False)
        assert abs(graph_flops(graph, 224, 224).forward / 2 - published) / published < 0.03, depth
    spec = efficientnet_lite0_spec()
    graph = InterActiveGraph(spec, random_weights(spec, seed=0), interactive=False)
    macs = graph_flops(graph, 224, 224).forward / 2
    assert 0.35e9 < macs < 0.45e9  # depthwise layers counted per group: dense counting would give ~3.5 GMACs
