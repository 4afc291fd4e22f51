"""PyTorch on a CUDA device: the explicit graph against the autograd reference on the same GPU (TF32 off, as
the engines' verification does), in fp32 and fp16, and `interactive-infer --backend torch --device cuda`
against ONNX Runtime on the CPU. Marker `gpu`: skipped with the reason where torch cannot use a GPU."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interactive_trt.exporter.onnx.verification import GRAPH_BOUNDS, REDUCED_BOUNDS
from interactive_trt.exporter.onnx.verify import compare, cosine

pytestmark = pytest.mark.gpu
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def no_tf32():
    """TF32 rounds float32 convolutions to 10 mantissa bits: the reference would be as coarse as fp16."""
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="module")
def batches(photo_batches):
    noise = np.random.default_rng(7).standard_normal((2, 3, 224, 224), dtype=np.float32)
    return {"noise 2x224x224": noise, "chelsea": photo_batches["chelsea"]}


@pytest.fixture(scope="module")
def references(small_spec, small_weights, batches):
    import torch

    from interactive_trt.exporter.interactive.reference import AutogradReference

    reference = AutogradReference(small_spec, small_weights, device="cuda")
    return {label: {k: v.cpu().numpy() for k, v in reference(torch.from_numpy(batch).cuda()).items()}
            for label, batch in batches.items()}


def graph_outputs(graph, batch) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        return {k: v.float().cpu().numpy() for k, v in graph.named_outputs(torch.from_numpy(batch).cuda()).items()}


def assert_passed(report):
    assert report.passed, [(c.name, round(c.cosine, 6), f"{c.rel_l2:.2e}") for c in report.failures]


def test_fp32_graph_on_cuda_matches_autograd_on_cuda(small_spec, small_weights, batches, references):
    from interactive_trt.exporter.interactive.graph import InterActiveGraph

    graph = InterActiveGraph(small_spec, small_weights).eval().cuda()
    for label, batch in batches.items():
        assert_passed(compare(f"torch graph cuda vs autograd cuda, {label}", graph_outputs(graph, batch),
                              references[label], GRAPH_BOUNDS))


@pytest.mark.parametrize("precision", ["fp16", "fp16-backward"])
def test_fp16_graph_on_cuda_meets_the_reduced_bounds(small_spec, small_weights, batches, references, precision):
    from interactive_trt.exporter.interactive.graph import InterActiveGraph
    from interactive_trt.exporter.interactive.precision import calibrate_loss_scale

    graph32 = InterActiveGraph(small_spec, small_weights).eval()
    scale = calibrate_loss_scale(graph32, list(batches.items()), precision).loss_scale
    graph = InterActiveGraph(small_spec, small_weights, precision=precision, loss_scale=scale).eval().cuda()
    for label, batch in batches.items():
        assert_passed(compare(f"torch graph {precision} cuda vs autograd cuda, {label}", graph_outputs(graph, batch),
                              references[label], REDUCED_BOUNDS))


@pytest.fixture(scope="module")
def model_and_photos(tmp_path_factory, photos):
    from interactive_trt.exporter.onnx.export import export_model
    from interactive_trt.exporter.onnx.request import ExportRequest

    out = tmp_path_factory.mktemp("model")
    export_model(ExportRequest(weights="random", width_divisor=8, out=out, verify=False), log=lambda m: None)
    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(photos[name]).save(folder / f"{name}.png")
    return out, folder


def test_infer_torch_on_cuda_agrees_with_onnxruntime_on_cpu(model_and_photos, tmp_path):
    model, folder = model_and_photos
    for backend, device in (("torch", "cuda"), ("onnxruntime", "cpu")):
        result = subprocess.run([sys.executable, "-m", "interactive_trt.runtime.cli.infer", folder, "--engine", model,
                                 "--backend", backend, "--device", device, "--out", tmp_path / backend],
                                capture_output=True, text=True, cwd=REPO, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
    for name in ("chelsea", "coffee", "astronaut"):
        a, b = np.load(tmp_path / "torch" / f"{name}.npz"), np.load(tmp_path / "onnxruntime" / f"{name}.npz")
        keys = [key for key in a.files if not key.startswith("__")]
        assert keys and set(keys) <= set(b.files)
        low = {key: cosine(a[key], b[key]) for key in keys}
        assert min(low.values()) >= 0.9999, sorted(low.items(), key=lambda item: item[1])[:5]
