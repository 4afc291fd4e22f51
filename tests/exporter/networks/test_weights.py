import numpy as np
import pytest
import torch

from interactive_trt.common.errors import WeightsError
from interactive_trt.exporter.networks.vgg import vgg19_spec
from interactive_trt.exporter.networks.weights import load_weights, random_weights


def torchvision_state_dict(spec, weights):
    """The layout torchvision's VGG uses: classifier layers as linear (out, in) matrices."""
    state = {}
    for layer in spec.conv_layers():
        weight, bias = weights.arrays[layer.name]
        if layer.weight_key.startswith("classifier"):
            weight = weight.reshape(weight.shape[0], -1)
        state[f"{layer.weight_key}.weight"] = torch.from_numpy(weight)
        state[f"{layer.weight_key}.bias"] = torch.from_numpy(bias)
    return state


def test_random_weights_are_deterministic(small_spec):
    assert random_weights(small_spec, 3).digest == random_weights(small_spec, 3).digest
    assert random_weights(small_spec, 3).digest != random_weights(small_spec, 4).digest


def test_torchvision_state_dict_round_trip(tmp_path, small_spec, small_weights):
    path = tmp_path / "vgg.pth"
    torch.save(torchvision_state_dict(small_spec, small_weights), path)
    loaded = load_weights(str(path), small_spec)
    assert loaded.digest == small_weights.digest
    assert loaded.arrays["fc6"][0].shape == (512, 64, 7, 7)


def test_wrong_shaped_weights_name_the_file_and_layer(tmp_path, small_spec, small_weights):
    state = torchvision_state_dict(small_spec, small_weights)
    state["features.5.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"bad\.pth: key 'features\.5\.weight' has shape \(3, 3, 3, 3\), "
                                           r"vgg19-w8 needs \(16, 8, 3, 3\)"):
        load_weights(str(path), small_spec)


def test_extra_keys_are_named(tmp_path, small_spec, small_weights):
    state = torchvision_state_dict(small_spec, small_weights)
    state["features.99.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(WeightsError, match=r"extra\.pth: keys vgg19-w8 has no place for: features\.99\.weight"):
        load_weights(str(tmp_path / "extra.pth"), small_spec)


def test_missing_keys_are_listed(tmp_path, small_spec, small_weights):
    state = torchvision_state_dict(small_spec, small_weights)
    del state["classifier.6.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match=r"partial\.pth: keys missing for vgg19-w8: classifier\.6\.weight"):
        load_weights(str(tmp_path / "partial.pth"), small_spec)


def test_not_a_state_dict(tmp_path, small_spec):
    (tmp_path / "junk.pth").write_bytes(b"\x00garbage")
    with pytest.raises(WeightsError, match=r"junk\.pth: not a readable PyTorch state dict"):
        load_weights(str(tmp_path / "junk.pth"), small_spec)


def test_no_weights_anywhere_says_what_to_get(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match=r"vgg19-dcbb9e9d\.pth.*put it there.*--weights random"):
        load_weights(None, vgg19_spec())


def test_torchvision_cache_is_used_when_present(tmp_path, monkeypatch, small_spec, small_weights):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from interactive_trt.exporter.networks.weights import torchvision_cache_path

    target = torchvision_cache_path("vgg19")
    target.parent.mkdir(parents=True)
    torch.save(torchvision_state_dict(small_spec, small_weights), target)
    spec = small_spec.__class__(**{**small_spec.__dict__, "name": "vgg19"})
    assert load_weights(None, spec).digest == small_weights.digest


def test_matconvnet_mat_file(tmp_path, small_spec, small_weights):
    """MatConvNet stores filters H x W x In x Out in a cell array of layer structs."""
    scipy_io = pytest.importorskip("scipy.io")
    layers = []
    for layer in small_spec.layers:
        if layer.op == "conv":
            weight, bias = small_weights.arrays[layer.name]
            layers.append({"type": "conv", "name": layer.name,
                           "weights": np.array([weight.transpose(2, 3, 1, 0), bias[:, None]], dtype=object)})
            if layer.relu:
                layers.append({"type": "relu", "name": f"relu_{layer.name}"})
        else:
            layers.append({"type": "pool", "name": layer.name})
    cell = np.empty(len(layers), dtype=object)
    cell[:] = layers
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    scipy_io.savemat(path, {"layers": cell, "meta": {"normalization": {"averageImage": np.array([123.7, 116.8, 103.9])}}})
    loaded = load_weights(str(path), small_spec)
    assert loaded.digest == small_weights.digest
    from interactive_trt.exporter.networks.weights import matconvnet_mean
    assert matconvnet_mean(path) == pytest.approx((123.7, 116.8, 103.9))
