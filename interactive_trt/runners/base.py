"""One runner interface for every backend and every caller (Polygraphy's pattern): activate, infer
named arrays, deactivate. interactive-infer, export and import verification and the benchmark all run
their graphs through it, so each backend makes its session in one place.

A runner's model says what the file is: `contracts.graph.OnnxGraph`, or the runtime's exported model,
which reads the same names from its manifest. Public methods check state and inputs; backends
override only the `*_impl` hooks."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from interactive_trt.common.errors import InterActiveError


class RunnerStateError(InterActiveError):
    """A runner used before activate() or after deactivate()."""


class Runner:
    name = "runner"

    def __init__(self, model):
        self.model = model
        self.is_active = False

    # ---------------------------------------------------------------- hooks
    def activate_impl(self) -> None:
        raise NotImplementedError

    def infer_impl(self, image: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def bound_impl(self, image: np.ndarray) -> Callable[[], None]:
        return lambda: self.infer_impl(image)

    def deactivate_impl(self) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- public
    def activate(self) -> "Runner":
        if self.is_active:
            raise RunnerStateError(f"{self.name}: already active")
        self.activate_impl()
        self.is_active = True
        return self

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.infer_impl(self.checked(feed, "infer()"))

    def bound(self, feed: dict[str, np.ndarray]) -> Callable[[], None]:
        """A call that runs `feed` once more each time it is made, its input and outputs kept where the
        backend computes (no upload, no copy back), returning when the outputs are ready: what the
        benchmark times. The outputs are the backend's to overwrite; read results with infer()."""
        return self.bound_impl(self.checked(feed, "bound()"))

    def checked(self, feed: dict[str, np.ndarray], call: str) -> np.ndarray:
        if not self.is_active:
            raise RunnerStateError(f"{self.name}: call activate() (or use 'with') before {call}")
        input_name = self.model.input_name
        if set(feed) != {input_name}:
            raise InterActiveError(f"{self.name}: expected one input named {input_name!r}, got {sorted(feed)}")
        image = feed[input_name]
        self.model.check_input(image, self.name)
        return np.ascontiguousarray(image)

    def deactivate(self) -> None:
        if not self.is_active:
            return
        self.deactivate_impl()
        self.is_active = False

    def __enter__(self) -> "Runner":
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def __del__(self):
        if getattr(self, "is_active", False):
            warnings.warn(f"{self.name} was activated but never deactivated", ResourceWarning, stacklevel=2)
