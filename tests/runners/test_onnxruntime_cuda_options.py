"""What the ONNX Runtime runner asks of the CUDA provider, checked against a stand-in for onnxruntime-gpu
(CI has no GPU; tests/gpu runs the real one): TF32 off for float32 and fp16-backward graphs, on for fp16
ones; the CUDA form of the graph unless "direct" or INTERACTIVE_CUDA_FORMS=none; an unknown form refused
in one line; the CPU provider gets no CUDA options and the CPU form."""

from types import SimpleNamespace

import onnx
import pytest

from interactive_trt.common import ort
from interactive_trt.common.errors import InterActiveError
from interactive_trt.forms import cuda as cuda_form
from interactive_trt.runners import onnxrt
from interactive_trt.runtime.backends import make_runner
from interactive_trt.runtime.inference.model import load_model


class StandInSession:
    made = []

    def __init__(self, source, options, providers):
        self.source, self.providers = source, providers
        # what it was given, read while it exists (a load-time form is a temporary file)
        self.ops = {node.op_type for node in onnx.load(source).graph.node}
        StandInSession.made.append(self)

    def get_providers(self):
        return [ort.provider_name(provider) for provider in self.providers]

    def get_outputs(self):
        return [SimpleNamespace(name="out")]


@pytest.fixture
def gpu_onnxruntime(monkeypatch):
    """onnxruntime-gpu as the runner sees it: a CUDA provider, sessions that record what they were given."""
    import onnxruntime as real

    stand_in = SimpleNamespace(get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
                               InferenceSession=StandInSession, SessionOptions=real.SessionOptions)
    monkeypatch.setattr(ort, "import_onnxruntime", lambda: stand_in)
    monkeypatch.setattr(onnxrt, "import_onnxruntime", lambda: stand_in)
    monkeypatch.delenv(cuda_form.FORMS_VARIABLE, raising=False)
    StandInSession.made.clear()
    return StandInSession.made


def session_for(small_model, precision="fp32", device="cuda", **options):
    model = load_model(small_model)
    model.manifest.precision = precision
    with make_runner("onnxruntime", model, device=device, **options):
        pass
    return StandInSession.made[-1]


@pytest.mark.parametrize("precision, tf32", [("fp32", "0"), ("fp16-backward", "0"), ("fp16", "1")])
def test_tf32_only_where_the_graph_is_float16(gpu_onnxruntime, small_model, precision, tf32):
    session = session_for(small_model, precision)
    assert session.providers == [("CUDAExecutionProvider", {"use_tf32": tf32}), "CPUExecutionProvider"]


def test_auto_takes_the_cuda_provider_and_cpu_takes_neither_its_options_nor_its_form(gpu_onnxruntime, small_model):
    assert ort.provider_name(session_for(small_model, device="auto").providers[0]) == "CUDAExecutionProvider"
    cpu = session_for(small_model, device="cpu")
    assert cpu.providers == ["CPUExecutionProvider"]


def test_the_file_as_exported_unless_forms_are_asked_for(gpu_onnxruntime, small_model, monkeypatch):
    """No form is on by default until a GPU measures it. Asked for, the width-reduced VGG-19's fc6/fc7
    backward products and connection sums take theirs (its 3x3 layers are too narrow for Winograd), from
    the runner's option or the environment; "direct" runs the file whatever is asked."""
    assert cuda_form.DEFAULT_FORMS == ()
    exported = str(load_model(small_model).onnx_path)
    assert session_for(small_model).source == exported
    session = session_for(small_model, cuda_forms="products,sums")
    assert "ReduceSum" in session.ops and "MatMul" in session.ops
    monkeypatch.setenv(cuda_form.FORMS_VARIABLE, "sums")
    assert session_for(small_model).source != exported
    assert session_for(small_model, convolutions="direct").source == exported
    monkeypatch.setenv(cuda_form.FORMS_VARIABLE, "none")
    assert session_for(small_model).source == exported


def test_an_unknown_form_is_refused_in_one_line(gpu_onnxruntime, small_model, monkeypatch):
    monkeypatch.setenv(cuda_form.FORMS_VARIABLE, "winograd,fft")
    with pytest.raises(InterActiveError) as caught:
        session_for(small_model)
    assert str(caught.value) == ("INTERACTIVE_CUDA_FORMS='winograd,fft': unknown form 'fft'; choose from "
                                 "winograd, products, sums, or none")


def test_options_are_strings_and_overrides_win():
    assert ort.cuda_options("fp32", fuse_conv_bias=1) == {"use_tf32": "0", "fuse_conv_bias": "1"}
    assert ort.cuda_options("fp32", use_tf32=1) == {"use_tf32": "1"}
