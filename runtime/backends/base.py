"""One small runner interface for every backend (Polygraphy's pattern): named arrays in, named arrays
out. Public methods check state and inputs; backends override only the `*_impl` hooks."""

from __future__ import annotations

import warnings

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
        if not self.is_active:
            raise RunnerStateError(f"{self.name}: call activate() (or use 'with') before infer()")
        input_name = self.model.manifest.input_name
        if set(feed) != {input_name}:
            raise InterActiveError(f"{self.name}: expected one input named {input_name!r}, got {sorted(feed)}")
        image = feed[input_name]
        if image.ndim != 4 or image.shape[1] != 3 or image.dtype != np.float32:
            raise InterActiveError(
                f"{self.name}: input must be float32 N x 3 x H x W, got {image.dtype} {tuple(image.shape)}"
            )
        self.model.manifest.model.spatial_sizes(image.shape[2], image.shape[3])
        return self.infer_impl(np.ascontiguousarray(image))

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
