"""Every verified engine reports, per kind of output, its lowest cosine against the float32 reference: for
fp16 these are TensorRT's own fp16 figures (ONNX Runtime's CPU provider runs fp16 convolutions in float32).
The engine here is tests/stubs/gpu_stack's stand-in for TensorRT (it doubles and averages its input); the
reference is a function standing for the autograd reference on the GPU."""

from types import SimpleNamespace

import numpy as np

from interactive_trt.exporter.onnx.verification import REDUCED_BOUNDS
from interactive_trt.exporter.onnx.verify import OutputCheck, Report, describe_lowest, lowest_cosines


def check(name, cosine):
    return OutputCheck(name, cosine, 0.0, 0.0, 0.0, 0.0, True)


def test_lowest_cosine_per_kind_of_output_over_all_inputs():
    reports = [Report("noise", [check("pool1.gamma", 0.99), check("pool1.orig_avg", 0.99999),
                                check("pool1.interactive_max", 0.9991), check("imagenet.scores_orig", 0.99998)]),
               Report("photo", [check("pool1.gamma", 0.995), check("fc6.gamma", 0.98),
                                check("fc6.interactive_avg", 0.9997)])]
    lowest = lowest_cosines(reports)
    assert lowest == {"feature averages": {"cosine": 0.9997, "output": "fc6.interactive_avg"},
                      "class scores": {"cosine": 0.99998, "output": "imagenet.scores_orig"},
                      "interactive max": {"cosine": 0.9991, "output": "pool1.interactive_max"},
                      "gamma": {"cosine": 0.98, "output": "fc6.gamma"}}
    assert describe_lowest(lowest).startswith("feature averages 0.99970 (fc6.interactive_avg), class scores")


def test_each_engine_records_its_agreement(gpu_stubs, small_spec):
    from interactive_trt.exporter.tensorrt.cache import Platform
    from interactive_trt.exporter.tensorrt.verify_engines import verify_engine

    plan = gpu_stubs.trt.plan_for("image", (3, 64, 64), 1, 4, 4, mean="pool1.orig_avg", double="pool1.gamma")
    manifest = SimpleNamespace(input_name="image", precision="fp16")

    def reference(batch):  # the engine's own functions, the gamma 'maps' slightly off
        means = batch.reshape(len(batch), -1).mean(axis=1, keepdims=True)
        return {"pool1.gamma": 2 * batch + np.float32(0.05), "pool1.orig_avg": means}

    lines = []
    reports, agreement = verify_engine(plan, manifest, small_spec, 64, 64, 4, reference, REDUCED_BOUNDS,
                                       Platform("11.1.0", "NVIDIA Stub GPU", "9.0"), lines.append)
    assert [report.label for report in reports] == ["tensorrt fp16 vs autograd, noise 2x64x64",
                                                    "tensorrt fp16 vs autograd, chelsea 64x64"]
    assert agreement["reference"] == "autograd float32 on NVIDIA Stub GPU"
    assert agreement["inputs"] == ["noise 2x64x64", "chelsea 64x64"]
    lowest = agreement["lowest_cosine"]
    assert set(lowest) == {"feature averages", "gamma"}
    assert lowest["feature averages"]["cosine"] > 0.99999 and 0.99 < lowest["gamma"]["cosine"] < 0.9999
    assert lines == [f"  fp16 engine 64x64 vs autograd float32 on NVIDIA Stub GPU, lowest cosine: "
                     f"{describe_lowest(lowest)}"]
