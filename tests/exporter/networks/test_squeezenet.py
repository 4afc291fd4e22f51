"""SqueezeNet 1.1 with real ImageNet weights from ../shared/data: concatenation, a squeeze layer with
two successors, overlapping ceil-mode pools, all through the same machinery as VGG-19."""

import numpy as np
import pytest
import torch

from interactive_trt.exporter.onnx.export import export_model

from interactive_trt.exporter.onnx.request import ExportRequest

from interactive_trt.exporter.onnx.verification import run_onnxruntime
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.common.imaging import bucket_for, prepare
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.exporter.networks.squeezenet import squeezenet11_spec
from interactive_trt.exporter.onnx.verify import cosine, rel_l2
from interactive_trt.exporter.networks.weights import load_weights


@pytest.fixture(scope="module")
def spec():
    return squeezenet11_spec()


@pytest.fixture(scope="module")
def weights(spec, shared_data):
    return load_weights(str(shared_data / "squeezenet1.1" / "weights"), spec)


def test_table_derives_two_successors_for_a_squeeze_output(spec):
    assert [s.name for s in spec.successors("fire3_squeeze")] == ["fire3_expand1x1", "fire3_expand3x3"]
    assert [s.name for s in spec.successors("fire3")] == ["fire4_squeeze"]
    assert spec.head_penultimate == "fire8"
    assert spec.spatial_sizes(224, 224)["pool1"] == (55, 55)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_reproduces_the_reference_outputs(spec, weights, shared_data, index):
    folder = shared_data / "squeezenet1.1" / "test_data_set" / str(index)
    image = torch.from_numpy(np.load(folder / "input_0.npy"))
    with torch.no_grad():
        scores = InterActiveGraph(spec, weights).named_outputs(image)["imagenet.scores_orig"].numpy()
    assert np.abs(scores - np.load(folder / "output_0.npy")).max() <= 2e-4


@pytest.mark.parametrize("config", ["last", "next"])
def test_graph_equals_autograd_on_real_photos(spec, weights, photos, config):
    for name in ("chelsea", "astronaut"):
        rgb = photos[name]
        image = torch.from_numpy(prepare(rgb, bucket_for(*rgb.shape[:2]), spec.preprocessing)[None])
        with torch.no_grad():
            got = InterActiveGraph(spec, weights, config=config).named_outputs(image)
        expected = AutogradReference(spec, weights, config=config)(image)
        bad = {k: rel_l2(got[k].numpy(), v.numpy()) for k, v in expected.items()
               if rel_l2(got[k].numpy(), v.numpy()) > 1e-5}
        assert not bad, bad


def test_real_weights_classify_a_sample_photo_and_onnxruntime_agrees(spec, weights, shared_data, tmp_path):
    from interactive_trt.common.imaging import load_rgb

    path, manifest = export_model(ExportRequest(model="squeezenet1.1", weights=str(shared_data / "squeezenet1.1" /
                                                                                    "weights"), out=tmp_path,
                                                verify=False), log=lambda m: None)
    synsets = [line.split()[0] for line in (shared_data / "imagenet_synset_words.txt").read_text().splitlines()]
    photo = shared_data / "imagenet-samples" / "n02391049_zebra.JPEG"
    rgb = load_rgb(photo)
    batch = prepare(rgb, bucket_for(*rgb.shape[:2]), spec.preprocessing)[None]
    got = run_onnxruntime(path, batch, manifest.output_names)
    expected = AutogradReference(spec, weights)(torch.from_numpy(batch))
    assert min(cosine(got[k], v.numpy()) for k, v in expected.items()) >= 0.9999
    top5 = np.argsort(-got["imagenet.scores_orig"][0])[:5]
    assert synsets.index("n02391049") in top5
