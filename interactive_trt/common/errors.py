"""Named errors, so that callers (and the CLIs) can turn them into one-line messages.

Every message says what was asked, what was found, and where possible a hint.
"""


class InterActiveError(Exception):
    """Base of every error this project raises on purpose."""


class SpecError(InterActiveError):
    """A model description that the machinery cannot serve (bad layer table, bad input size)."""


class WeightsError(InterActiveError):
    """Weights that are missing, unreadable or of the wrong shape."""


class OnnxImportError(InterActiveError):
    """An ONNX file that cannot be mapped exactly onto the layer vocabulary (INTERACTIVE.md, "Any CNN").

    The message is one line naming the node, its op and what is supported.
    """


class ImageError(InterActiveError):
    """An image that cannot be read or decoded."""


class ManifestError(InterActiveError):
    """A manifest that is missing, malformed, or disagrees with the file it describes."""


class VerificationError(InterActiveError):
    """The exported graph missed a tolerance against the autograd reference.

    Carries the full report so that every failing output is listed, not only the first.
    """

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class BackendUnavailable(InterActiveError):
    """An optional backend whose packages are not installed (tensorrt, CUDA, torch)."""
