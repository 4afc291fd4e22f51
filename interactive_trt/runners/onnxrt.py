"""ONNX Runtime: CUDA execution provider when onnxruntime-gpu has one, else CPU. Which ONNX Runtime package
is installed is the extras' choice (common.ort); none is refused in one line. Each provider runs the graph
in the form its kernels run fast (interactive_trt.forms.cpu, interactive_trt.forms.cuda) unless `convolutions="direct"`;
the CUDA provider gets the options of common.ort.cuda_options (TF32 off for float32 graphs).

The only place the project makes an inference session (the import's canonicaliser makes one too, to
have ONNX Runtime write its optimized graph, never to run it)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import numpy as np

from interactive_trt.common.errors import BackendUnavailable, InterActiveError
from interactive_trt.common.ort import CPU_PROVIDER, CUDA_PROVIDER, import_onnxruntime, provider_name, session_providers
from interactive_trt.forms.cpu import cpu_model
from interactive_trt.forms.cuda import chosen_forms, cuda_model
from interactive_trt.runners.base import Runner


@contextmanager
def session_source(path, providers: list, convolutions: str, cuda_forms: str | None = None):
    """What a session loads (inside the block), and how many layers took each form: the graph's CPU form
    on the CPU provider, its CUDA form on the CUDA provider (`cuda_forms`, else INTERACTIVE_CUDA_FORMS,
    else DEFAULT_FORMS), the file itself with "direct"."""
    if convolutions != "auto":
        yield str(path), {}
    elif provider_name(providers[0]) == CPU_PROVIDER:
        with cpu_model(path, "onnxruntime") as form:
            yield form
    else:
        with cuda_model(path, chosen_forms(cuda_forms)) as form:
            yield form


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, model, device: str = "auto", threads: int = 0, convolutions: str = "auto",
                 cuda_forms: str | None = None, cuda_overrides: dict | None = None, form_only: bool = False):
        """`form_only`: activate makes no session where the load-time form leaves the file as it is
        (`counts` all zero, `session` None), as export verification's "onnxruntime cpu" row would repeat
        its "onnxruntime" one, and a session of a large network costs seconds and its weights again."""
        super().__init__(model)
        self.device, self.threads, self.convolutions, self.session = device, threads, convolutions, None
        self.form_only = form_only
        self.cuda_forms, self.cuda_overrides = cuda_forms, dict(cuda_overrides or {})
        self.counts: dict[str, int] = {}  # layers per load-time form (forms.cpu, forms.cuda)

    @property
    def winograd_layers(self) -> int:
        return self.counts.get("winograd", 0)

    def activate_impl(self) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        providers = session_providers(self.device, self.model.precision, **self.cuda_overrides)
        try:
            with session_source(self.model.onnx_path, providers, self.convolutions, self.cuda_forms) as (source, counts):
                self.counts = dict(counts)
                if self.form_only and not any(counts.values()):
                    return
                self.session = ort.InferenceSession(source, options, providers=providers)
        except InterActiveError:  # an unknown INTERACTIVE_CUDA_FORMS, said as it is
            raise
        except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise BackendUnavailable(f"{self.model.onnx_path}: ONNX Runtime cannot load it ({first})") from None
        self.providers = self.session.get_providers()
        self.output_names = list(self.model.output_names) or [o.name for o in self.session.get_outputs()]
        self.ort = ort

    def require_session(self) -> None:
        if self.session is None:  # form_only, and the form is the file
            raise InterActiveError(f"{self.model.onnx_path}: no load-time form changes this file; run it with "
                                   "convolutions='direct'")

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        self.require_session()
        values = self.session.run(self.output_names, {self.model.input_name: image})
        # copies: an array ONNX Runtime returns lives in its session's arena and keeps the whole arena (the
        # size of the network's largest activations) alive after the session is closed, for as long as
        # the caller holds it: 1 GiB for VGG-19 at 416x640, carried by export verification into the next
        # runtime's session (issue 24)
        return {name: np.array(value, copy=True) for name, value in zip(self.output_names, values)}

    def bound_impl(self, image: np.ndarray) -> Callable[[], None]:
        """I/O binding: the input copied once to the provider's device, the outputs left there."""
        self.require_session()
        device = "cuda" if self.providers[0] == CUDA_PROVIDER else "cpu"
        binding = self.session.io_binding()
        value = self.ort.OrtValue.ortvalue_from_numpy(image, device, 0)
        binding.bind_ortvalue_input(self.model.input_name, value)
        for name in self.output_names:
            binding.bind_output(name, device)

        def run(value=value) -> None:  # holds the input while the call lives; returns when outputs are ready
            self.session.run_with_iobinding(binding)

        return run

    def deactivate_impl(self) -> None:
        self.session = None
