import json
from dataclasses import asdict

import pytest

from interactive_trt.common.errors import SpecError
from interactive_trt.contracts.spec import Layer, ModelSpec
from interactive_trt.exporter.networks.vgg import PAPER_LAYERS, vgg19_spec

# INTERACTIVE.md, "The paper's nine layers and their successors"
EXPECTED_SUCCESSORS = {
    "pool1": "conv2_1", "pool2": "conv3_1", "conv3_3": "conv3_4", "pool3": "conv4_1", "conv4_3": "conv4_4",
    "pool4": "conv5_1", "conv5_3": "conv5_4", "pool5": "fc6", "fc6": "fc7",
}


def test_successors_are_derived_from_the_table():
    spec = vgg19_spec()
    assert spec.feature_layers == PAPER_LAYERS
    assert {t: [s.name for s in spec.successors(t)] for t in PAPER_LAYERS} == {
        t: [s] for t, s in EXPECTED_SUCCESSORS.items()}


def test_paper_dimensions_add_up_to_6848():
    spec = vgg19_spec()
    assert sum(spec.channels_of(t) for t in PAPER_LAYERS) == 6848


def test_torchvision_keys_follow_the_layer_table():
    layers = vgg19_spec().by_name
    assert layers["conv1_1"].weight_key == "features.0"
    assert layers["conv3_4"].weight_key == "features.16"
    assert layers["conv5_4"].weight_key == "features.34"
    assert layers["fc6"].weight_key == "classifier.0" and layers["fc6"].kernel == 7
    assert layers["fc8"].weight_key == "classifier.6" and not layers["fc8"].relu


def test_spatial_sizes_at_a_non_square_bucket():
    sizes = vgg19_spec().spatial_sizes(416, 640)
    assert sizes["pool1"] == (208, 320)
    assert sizes["pool5"] == (13, 20)
    assert sizes["fc6"] == sizes["fc8"] == (7, 14)


@pytest.mark.parametrize("size, message", [((500, 512), "multiples of 32"), ((192, 512), "at least 224")])
def test_spatial_sizes_refuse_bad_sizes(size, message):
    with pytest.raises(SpecError, match=message):
        vgg19_spec().spatial_sizes(*size)


def test_spec_round_trips_through_its_dict():
    spec = vgg19_spec(width_divisor=4)
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_a_feature_layer_without_successor_is_refused():
    layers = (Layer("conv", "conv", ("image",), 4, kernel=3, padding=1, in_channels=3),
              Layer("pool", "maxpool", ("conv",), 4, kernel=2, stride=2))
    with pytest.raises(SpecError, match="no successor"):
        ModelSpec("toy", layers, feature_layers=("pool",), last_layer="conv", head_logits="conv")


def test_layers_out_of_order_are_refused():
    layers = (Layer("b", "conv", ("a",), 4, in_channels=4), Layer("a", "conv", ("image",), 4, in_channels=3))
    with pytest.raises(SpecError, match="topological"):
        ModelSpec("toy", layers, feature_layers=("a",), last_layer="b", head_logits="b")


@pytest.mark.parametrize("changes, commutes", [
    ({}, True),
    ({"groups": 2, "in_channels": 8}, True),
    ({"relu": True}, False),
    ({"act": "silu"}, False),
    ({"kernel": 3}, False),
    ({"kernel": 1, "kernel_w": 3}, False),
    ({"stride": 2}, False),
    ({"stride": 1, "stride_w": 2}, False),
    ({"padding": 1}, False),
    ({"pads": (0, 0, 1, 0)}, False),
    ({"op": "avgpool"}, False),
])
def test_only_a_linear_pointwise_convolution_commutes_with_the_spatial_mean(changes, commutes):
    """The class scores are taken on the pooled map only where mean(f(X)) = f(mean(X)) holds exactly."""
    layer = Layer(**{"name": "fc", "op": "conv", "inputs": ("x",), "channels": 10, "relu": False, **changes})
    assert layer.commutes_with_mean is commutes


def test_a_reflect_padding_needs_more_rows_than_it_pads_and_round_trips():
    """A mirror needs rows to mirror, more than it pads (as torch and ONNX require): a smallest size that
    leaves a reflect padding of 1 a 1 x 1 map is refused by name; at the next size it reads 2 x 2, and the
    padding's mode survives the manifest's dict."""
    from interactive_trt.contracts.spec import ResizeRule

    layers = [Layer("c0", "conv", ("image",), 4, kernel=3, stride=2, padding=1, in_channels=3)]
    for index in range(1, 5):
        layers.append(Layer(f"c{index}", "conv", (f"c{index - 1}",), 4, kernel=3, stride=2, padding=1, in_channels=4))
    layers += [Layer("mirror", "pad", ("c4",), 4, pads=(1, 1, 1, 1), pad_mode="reflect"),
               Layer("blur", "conv", ("mirror",), 4, kernel=3, stride=1, groups=4, in_channels=4),
               Layer("fc", "conv", ("blur",), 10, relu=False, in_channels=4)]
    make = lambda side: ModelSpec("mirrored", tuple(layers), feature_layers=("c4",), last_layer="blur",
                                  head_logits="fc", resize=ResizeRule(target_side=64, multiple=32, min_side=side))
    with pytest.raises(SpecError, match=r"32x32 is too small .* at layer 'mirror': it reflect-pads a 1x1 map by "
                                        r"\[1, 1, 1, 1\]"):
        make(32).spatial_sizes(64, 64)  # its smallest size is checked with any
    spec = make(64)
    assert spec.spatial_sizes(64, 64)["mirror"] == (4, 4)
    assert ModelSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["layers"][5]["pad_mode"] == "reflect"


def test_non_square_strides_walk_each_axis_and_round_trip():
    """A 2x1 stride (a text line's) halves the rows only: the size walk takes each axis' stride, and so does
    the rule that every served size leaves a layer the residue the graph was built for (a 3x3 max pool at 2x1
    leaves one of 16 rows over, and no column). A stride under 1 is refused by name."""
    from interactive_trt.contracts.spec import ResizeRule

    layers = (Layer("c0", "conv", ("image",), 4, kernel=3, stride=2, stride_w=1, padding=1, in_channels=3),
              Layer("pool", "maxpool", ("c0",), 4, kernel=3, stride=2, stride_w=1),
              Layer("c1", "conv", ("pool",), 4, kernel=3, stride=1, stride_w=2, padding=1, in_channels=4),
              Layer("fc", "conv", ("c1",), 10, relu=False, in_channels=4))
    spec = ModelSpec("line", layers, feature_layers=("pool",), last_layer="c1", head_logits="fc",
                     resize=ResizeRule(target_side=64, multiple=4, min_side=32))
    sizes = spec.spatial_sizes(32, 64)
    assert (sizes["c0"], sizes["pool"], sizes["c1"]) == ((16, 64), (7, 62), (7, 31))
    assert spec.reference_residues["pool"] == (1, 0)
    assert ModelSpec.from_dict(spec.to_dict()) == spec and spec.layer("c1").strides == (1, 2)
    with pytest.raises(SpecError, match=r"layer 'c1' has strides \(1, -1\); expected 1 or more"):
        ModelSpec("line", layers[:2] + (Layer("c1", "conv", ("pool",), 4, stride=1, stride_w=-1, in_channels=4),
                                        layers[3]), feature_layers=("pool",), last_layer="c1", head_logits="fc")


def test_a_rule_per_axis_keeps_each_side_in_its_own_class():
    """A text line's rule: heights 48 + 64 k, widths 4 k. Every size it picks, for a bucket or a dense scale,
    is of its axis' class and none under the minimum; a square rule (no width of its own) is the rule it
    always was; both survive the manifest's dict."""
    from interactive_trt.common.imaging import bucket_for, shorter_side_size
    from interactive_trt.contracts.spec import ResizeRule

    rule = ResizeRule(target_side=512, multiple=64, min_side=48, offset=48, multiple_w=4, offset_w=0)
    assert not rule.square and rule.smallest == (48, 48)
    assert rule.describe() == "multiples of 64 plus 48 in height and multiples of 4 in width"
    for height, width in ((48, 192), (32, 320), (1000, 100), (640, 480)):
        for size in (bucket_for(height, width, rule), shorter_side_size(height, width, 256, rule)):
            assert rule.fits(size[0], 0) and rule.fits(size[1], 1) and min(size) >= 48, size
    assert bucket_for(48, 192, rule) == (240, 1024)
    assert ResizeRule(**json.loads(json.dumps(asdict(rule)))) == rule
    wide = ResizeRule(multiple=32, min_side=200, offset=8, multiple_w=32, offset_w=0)
    assert wide.smallest == (200, 224) and wide.side(100, 1) == 224  # never under the minimum, always of its class
    square = ResizeRule(multiple=32, min_side=224)
    assert square.square and square.describe() == "multiples of 32" and square.side(500, 1) == 512
