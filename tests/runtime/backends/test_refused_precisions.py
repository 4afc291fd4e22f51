"""A run-time precision that missed its reduced bounds when the model was exported (the manifest's
`refused_precisions`) is refused for that model, in one line, before any backend is made; on any machine."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from interactive_trt.common.errors import InterActiveError
from interactive_trt.runtime.backends import make_runner


def model_with(verification: dict):
    return SimpleNamespace(onnx_path=Path("engines/net_last_p2_both.onnx"),
                           manifest=SimpleNamespace(verification=verification))


def test_a_precision_refused_at_export_is_refused_for_the_model():
    model = model_with({"passed": True, "refused_precisions": {
        "bf16": "openvino bf16 vs autograd, noise 2x224x224: Add_50.interactive_avg at cosine 0.953550"}})
    with pytest.raises(InterActiveError, match=r"engines/net_last_p2_both.onnx: --precision bf16 missed its reduced "
                                               r"bounds when this model was exported \(openvino bf16 vs autograd, "
                                               r"noise 2x224x224: Add_50.interactive_avg at cosine 0.953550\); run it "
                                               r"at the exported precision"):
        make_runner("openvino", model, device="cpu", precision="bf16")


@pytest.mark.parametrize("verification", [{}, {"passed": True, "refused_precisions": {}}, None])
def test_without_a_refusal_the_check_lets_the_precision_through(verification):
    from interactive_trt.runtime.backends import check_verified

    check_verified(model_with(verification), "bf16")  # manifests from before the field, and clean ones
    check_verified(model_with({"refused_precisions": {"bf16": "..."}}), "exported")
