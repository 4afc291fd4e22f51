"""fp16 graphs against the float32 autograd reference: loss scaling, float32 islands, the ONNX types."""

import json
import math

import numpy as np
import onnx
import pytest
import torch

from interactive_trt.common.errors import ManifestError, SpecError
from interactive_trt.exporter.onnx.export import export_model
from interactive_trt.exporter.onnx.request import ExportRequest
from interactive_trt.exporter.onnx.verification import REDUCED_BOUNDS, run_onnxruntime
from interactive_trt.exporter.interactive.graph import InterActiveGraph
from interactive_trt.contracts.manifest import load_manifest
from interactive_trt.exporter.interactive.precision import (FP16_TARGET_PEAK, BackwardRange, calibrate_loss_scale, check_precision,
                                loss_scale_for)
from interactive_trt.exporter.interactive.reference import AutogradReference
from interactive_trt.exporter.onnx.verify import compare, cosine


def outputs(graph, image) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {name: value.numpy() for name, value in graph.named_outputs(image).items()}


def reference_outputs(spec, weights, image, **options) -> dict[str, np.ndarray]:
    return {name: value.numpy() for name, value in AutogradReference(spec, weights, **options)(image).items()}


@pytest.mark.parametrize("peak", [1e-9, 3e-4, 0.7, 1.0, 37.7, 5e3, 6e4])
def test_loss_scale_is_a_power_of_two_that_puts_the_peak_just_under_the_target(peak):
    scale = loss_scale_for(peak)
    assert math.log2(scale) == int(math.log2(scale))
    assert FP16_TARGET_PEAK / 2 < peak * scale <= FP16_TARGET_PEAK


def test_loss_scale_of_nothing_observed_is_one():
    assert loss_scale_for(0.0) == 1.0 and loss_scale_for(float("nan")) == 1.0


def test_backward_range_reports_peak_smallest_and_octaves():
    observed = BackwardRange()
    observed.observe("a", torch.tensor([0.0, -8.0, 0.25]))
    observed.observe("b", torch.tensor([0.0, 0.0]))
    assert (observed.peak, observed.smallest, observed.tensors) == (8.0, 0.25, 2)
    assert observed.octaves == 5.0


def test_loss_scale_is_invisible_in_the_outputs(small_spec, small_weights, photo_batches):
    """Scaling by a power of two and unscaling in float32 is exact: same outputs to the last bit or so."""
    image = torch.from_numpy(photo_batches["coffee"])
    plain = outputs(InterActiveGraph(small_spec, small_weights), image)
    scaled = outputs(InterActiveGraph(small_spec, small_weights, loss_scale=2.0 ** 12), image)
    for name in plain:
        np.testing.assert_allclose(scaled[name], plain[name], rtol=1e-6, atol=0, err_msg=name)


def test_fp16_graph_meets_the_reduced_bounds_on_real_photos(small_spec, small_weights, photo_batches):
    graph32 = InterActiveGraph(small_spec, small_weights).eval()
    batches = [(name, photo_batches[name]) for name in ("chelsea", "astronaut")]
    calibration = calibrate_loss_scale(graph32, batches, "fp16")
    graph16 = InterActiveGraph(small_spec, small_weights, precision="fp16", loss_scale=calibration.loss_scale)
    assert graph16.conv1_1__weight.dtype == torch.float16
    for name in ("chelsea", "astronaut", "coffee"):
        image = torch.from_numpy(photo_batches[name])
        got = outputs(graph16, image)
        assert all(value.dtype == np.float32 for value in got.values())
        report = compare(f"fp16 {name}", got, reference_outputs(small_spec, small_weights, image), REDUCED_BOUNDS)
        assert report.passed, [(c.name, c.cosine) for c in report.failures]
        assert max(c.zeroed_fraction for c in report.checks) < 1e-3


def test_loss_scaling_rescues_a_seed_gradient_that_underflows_in_fp16(small_spec, small_weights, photo_batches):
    """A seed shrunk 10^6 (as deep nets at high resolution shrink theirs) underflows fp16 without scaling.

    How much underflows depends on the CPU's fp16 kernels: over 20% of pool1's gamma where fp16 is
    emulated, 11% on a Xeon with AVX512-FP16 (2026-12-05); either way far off the bounds, and none with
    the calibrated scale."""
    image = torch.from_numpy(photo_batches["chelsea"])
    tiny = 1e-6
    expected = reference_outputs(small_spec, small_weights, image, seed_scale=tiny)
    graph32 = InterActiveGraph(small_spec, small_weights, seed_scale=tiny).eval()
    scale = calibrate_loss_scale(graph32, [("chelsea", photo_batches["chelsea"])], "fp16").loss_scale
    assert scale >= 2.0 ** 20
    unscaled = compare("fp16 loss scale 1", outputs(InterActiveGraph(
        small_spec, small_weights, seed_scale=tiny, precision="fp16"), image), expected, REDUCED_BOUNDS)
    rescued = compare("fp16 calibrated", outputs(InterActiveGraph(
        small_spec, small_weights, seed_scale=tiny, precision="fp16", loss_scale=scale), image), expected,
        REDUCED_BOUNDS)
    lost = {c.name: c.zeroed_fraction for c in unscaled.checks if c.name.endswith("gamma")}
    assert max(lost.values()) > 0.05, lost
    assert not unscaled.passed
    assert rescued.passed, [(c.name, c.cosine) for c in rescued.failures]
    assert max(c.zeroed_fraction for c in rescued.checks) < 1e-3


def test_seed_counts_positions_in_float32_beyond_fp16_range(small_spec, small_weights):
    """'next' seeds every successor; conv2_1 at 256 x 288 has 73,728 positions, more than fp16's 65,504."""
    image = torch.from_numpy(np.random.default_rng(5).standard_normal((1, 3, 512, 576), dtype=np.float32))
    graph = InterActiveGraph(small_spec, small_weights, config="next", head="features", precision="fp16")
    got = outputs(graph, image)
    expected = reference_outputs(small_spec, small_weights, image, config="next", head="features")
    gamma = got["pool1.gamma"]
    assert np.isfinite(gamma).all() and np.abs(gamma).sum() > 0
    assert cosine(gamma, expected["pool1.gamma"]) >= REDUCED_BOUNDS.positional_min_cosine


FLOAT32, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


def export_typed(tmp_path, precision: str, weight_type: int):
    """Exports the width-reduced VGG-19 in `precision` and checks what every precision shares: float32
    inputs and outputs, the layers' own kernels stored as `weight_type`."""
    request = ExportRequest(weights="random", seed=0, width_divisor=8, out=tmp_path, precision=precision)
    path, manifest = export_model(request, log=lambda m: None)
    assert path.name == f"vgg19-w8_last_p2_both_{precision}.onnx"
    proto = onnx.load(str(path))
    assert [i.type.tensor_type.elem_type for i in proto.graph.input] == [FLOAT32]
    assert {o.type.tensor_type.elem_type for o in proto.graph.output} == {FLOAT32}
    weights = {i.name: i.data_type for i in proto.graph.initializer if i.name.endswith("__weight")}
    assert weights and set(weights.values()) == {weight_type}
    return path, manifest, proto, weights


def test_fp16_export_writes_a_typed_graph_with_float32_inputs_and_outputs(tmp_path, small_spec, small_weights,
                                                                         photo_batches):
    path, manifest, proto, weights = export_typed(tmp_path, "fp16", weight_type=FLOAT16)
    on_disk = load_manifest(path.with_suffix(".json"))
    assert on_disk.precision == "fp16" and on_disk.loss_scale == manifest.loss_scale
    assert math.log2(on_disk.loss_scale) == int(math.log2(on_disk.loss_scale))
    assert on_disk.calibration["peak"] * on_disk.loss_scale <= FP16_TARGET_PEAK
    assert on_disk.verification["passed"] is True
    labels = [report["label"] for report in on_disk.verification["reports"]]
    assert any(label.startswith("onnxruntime fp16 vs autograd") for label in labels)
    image = photo_batches["astronaut"]
    got = run_onnxruntime(path, image, on_disk.output_names)
    expected = reference_outputs(small_spec, small_weights, torch.from_numpy(image))
    report = compare("onnxruntime fp16, astronaut", got, expected, REDUCED_BOUNDS)
    assert report.passed, [(c.name, c.cosine) for c in report.failures]


def data_input_types(proto, op_type: str) -> list[tuple[str, int]]:
    """(weight name, element type of the data input) of every `op_type` node, by shape inference."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.value_info, *inferred.graph.input]}
    return [(node.input[1], types.get(node.input[0])) for node in proto.graph.node if node.op_type == op_type]


def test_fp16_backward_export_keeps_the_forward_pass_in_float32(tmp_path, small_spec, small_weights, photo_batches):
    """Forward convolutions (and so every mask and routing decision) float32; the backward pass's
    transposed convolutions float16; closer to the float32 reference than the fp16 graph."""
    path, manifest, proto, weights = export_typed(tmp_path, "fp16-backward", weight_type=FLOAT32)
    convs, transposed = data_input_types(proto, "Conv"), data_input_types(proto, "ConvTranspose")
    forward = [dtype for weight, dtype in convs if weight in weights]
    backward = [dtype for weight, dtype in convs if weight not in weights] + [dtype for _, dtype in transposed]
    assert len(forward) >= len(small_spec.conv_layers()) and set(forward) == {FLOAT32}  # fc8 twice: the head
    assert backward and FLOAT16 in backward and set(backward) <= {FLOAT16, FLOAT32}
    on_disk = load_manifest(path.with_suffix(".json"))
    assert on_disk.precision == "fp16-backward" and on_disk.loss_scale > 1
    assert on_disk.verification["passed"] is True
    image = torch.from_numpy(photo_batches["astronaut"])
    expected = reference_outputs(small_spec, small_weights, image)
    got = run_onnxruntime(path, photo_batches["astronaut"], on_disk.output_names)
    full = outputs(InterActiveGraph(small_spec, small_weights, precision="fp16", loss_scale=on_disk.loss_scale), image)
    worst = {name: min(cosine(got[name], expected[name]), 1.0) for name in expected}
    worst_fp16 = {name: cosine(full[name], expected[name]) for name in expected}
    assert min(worst.values()) >= 0.9999, min(worst.items(), key=lambda item: item[1])
    assert min(worst.values()) > min(worst_fp16.values())


def test_bf16_is_refused_with_the_reason():
    with pytest.raises(SpecError, match="opset 22"):
        check_precision("bf16")


def test_manifest_with_an_unknown_precision_is_refused(tmp_path):
    request = ExportRequest(weights="random", seed=0, width_divisor=8, out=tmp_path, verify=False)
    path, _ = export_model(request, log=lambda m: None)
    manifest_path = path.with_suffix(".json")
    data = json.loads(manifest_path.read_text())
    assert data["precision"]["compute"] == "fp32"
    data["precision"]["compute"] = "fp8"
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="unknown compute precision"):
        load_manifest(manifest_path)
    del data["precision"]
    manifest_path.write_text(json.dumps(data))
    assert load_manifest(manifest_path).precision == "fp32"


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-13), (torch.float16, 2e-3)])
def test_groupnorm_and_grn_sum_in_float32_at_least_and_float64_stays_float64(dtype, bound):
    """GroupNorm's and GRN's statistics are taken in float32 where the map is fp16 (a group's sums overflow or
    lose it), and in the map's own precision where that is wider: the float64 reference judging float32's
    rounding took them in float32 until 2026-12-07 and called a fuzzed network's graph, 1e-6 from the true
    float64 gradient through its GroupNorm, 3.5e-5 off. Checked against float64 formulas written here."""
    from interactive_trt.exporter.interactive.forward import global_response_norm, group_norm

    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((2, 6, 40, 40)) * 3 + 5)  # an offset: float32 stats round visibly
    weight, bias = torch.from_numpy(rng.standard_normal(6)), torch.from_numpy(rng.standard_normal(6))
    grouped = x.reshape(2, 3, -1)
    normalised = ((grouped - grouped.mean(-1, keepdim=True)) / torch.sqrt(grouped.var(-1, unbiased=False, keepdim=True)
                                                                        + 1e-5)).reshape(x.shape)
    expected_gn = normalised * weight[:, None, None] + bias[:, None, None]
    norms = x.pow(2).sum((2, 3), keepdim=True).sqrt()
    expected_grn = x + bias[:, None, None] + weight[:, None, None] * x * norms / (norms.mean(1, keepdim=True) + 1e-6)
    got_gn = group_norm(x.to(dtype), weight.to(dtype), bias.to(dtype), 3, 1e-5)
    got_grn = global_response_norm(x.to(dtype), weight.to(dtype), bias.to(dtype), 1e-6)
    assert got_gn.dtype == dtype and got_grn.dtype == dtype
    for got, expected in ((got_gn, expected_gn), (got_grn, expected_grn)):
        assert float((got.double() - expected).norm() / expected.norm()) <= bound


def test_groupnorm_on_onnx_runtime_is_as_near_float64_as_float32_autograd_over_a_large_group(tmp_path):
    """A group of 1M values near a large mean (sigmoids: 0.5 +- 0.01), as a GroupNorm after a gate meets it on
    a photo. ONNX Runtime 1.32 takes a ReduceMean (and the InstanceNormalization torch.onnx writes for
    F.group_norm) as one running float32 sum: the exported forward pass was 15x and its vector-Jacobian
    product 20x further from float64 than float32 autograd (7.7e-5 and 4.6e-4); the sums one axis at a time
    (`forward.group_mean`) are as near as autograd, and verification allows twice its distance."""
    from types import SimpleNamespace

    import onnxruntime as ort

    from interactive_trt.exporter.interactive.forward import group_norm

    layer = SimpleNamespace(name="gn", groups=2, bn_eps=1e-5)
    weight, bias = torch.linspace(0.5, 1.5, 8), torch.linspace(-1, 1, 8)
    owner = SimpleNamespace(params=lambda name: (weight, bias))

    class Both(torch.nn.Module):
        def forward(self, x, grad):
            return (group_norm(x, weight, bias, layer.groups, layer.bn_eps),
                    InterActiveGraph.groupnorm_input_grad(owner, layer, x, grad))

    rng = np.random.default_rng(3)
    x = (0.5 + 0.01 * rng.standard_normal((1, 8, 512, 512))).astype(np.float32)
    grad = (1.0 + 0.1 * rng.standard_normal(x.shape)).astype(np.float32)  # a gradient with a mean of its own
    path = tmp_path / "gn.onnx"
    torch.onnx.export(Both(), (torch.from_numpy(x), torch.from_numpy(grad)), str(path), input_names=["x", "grad"],
                      output_names=["y", "dx"], opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(zip(("y", "dx"), session.run(None, {"x": x, "grad": grad})))

    def autograd(dtype):
        image = torch.from_numpy(x).to(dtype).requires_grad_(True)
        y = torch.nn.functional.group_norm(image, 2, weight.to(dtype), bias.to(dtype), eps=1e-5)
        (dx,) = torch.autograd.grad(y, image, torch.from_numpy(grad).to(dtype))
        return {"y": y.detach().double(), "dx": dx.double()}

    exact, float32 = autograd(torch.float64), autograd(torch.float32)
    for name in ("y", "dx"):
        distance = lambda value: float((torch.as_tensor(value).double() - exact[name]).norm() / exact[name].norm())
        assert distance(got[name]) <= 2 * distance(float32[name]), (name, distance(got[name]), distance(float32[name]))


@pytest.mark.parametrize("norm", ["groupnorm", "layernorm"])
@pytest.mark.parametrize("seed", [0, 2])
def test_a_weight_map_through_a_norm_of_sigmoids_is_as_near_float64_as_autograd(norm, seed, tmp_path):
    """A ReLU layer whose successor is a grouped conv of sigmoids, then a GroupNorm (or a LayerNorm over the
    channels), Softplus and max pools (a network of the import's fuzzer): the norm's input has a large mean
    (0.5 +- 0.04). Its vector-Jacobian product written as (g - mean(g) - xhat mean(g xhat)) / sigma put the
    ReLU layer's gamma 2-6x further from float64 than autograd through a GroupNorm (4.9e-6 against 8.1e-7 on
    seed 0, 1.4e-6 against 4.6e-7 on seed 2), 2.2-2.5x through a LayerNorm, enough to fail verification on an
    output that cancels; as (g - xhat mean(g xhat)) / sigma less its own mean, it is as near as autograd."""
    from pathlib import Path

    import families
    import onnx_builders as build
    from torch import nn

    from interactive_trt.exporter.networks.onnx_import import import_onnx
    from interactive_trt.exporter.onnx.verify import rel_l2

    class PooledConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Conv2d(28, 10, 1)

        def forward(self, x):
            return self.fc(x.mean((2, 3), keepdim=True)).flatten(1)

    torch.manual_seed(seed)
    model = nn.Sequential(families.conv_bn(3, 12, 3, 2, act=nn.Hardswish), families.conv_bn(12, 24, 1, act=nn.ReLU),
                          families.conv_bn(24, 28, 5, groups=4, act=nn.Sigmoid),
                          nn.GroupNorm(2, 28) if norm == "groupnorm" else families.LayerNorm2d(28), nn.Softplus(),
                          nn.MaxPool2d(2), nn.MaxPool2d(2), PooledConv())
    model = build.randomise_batchnorm(model.eval(), seed)
    imported = import_onnx(build.export_torch(model, Path(tmp_path) / "net.onnx", "folded", size=64, opset=17))
    spec, weights = imported.spec, imported.weights
    assert norm in {layer.op for layer in spec.layers}
    image = torch.from_numpy(np.random.default_rng(seed).standard_normal((2, 3, 64, 64), dtype=np.float32))
    with torch.no_grad():
        got = InterActiveGraph(spec, weights).eval().named_outputs(image)
    autograd = AutogradReference(spec, weights)(image)
    exact = AutogradReference(spec, weights, dtype=torch.float64)(image.double())
    name = next(key for key in exact if key.endswith(".gamma") and not key.startswith("imagenet"))
    distance = lambda value: rel_l2(value[name].numpy(), exact[name].numpy())
    assert distance(got) <= 1.5 * distance(autograd), (distance(got), distance(autograd))
