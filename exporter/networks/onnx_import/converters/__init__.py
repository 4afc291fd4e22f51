"""Converters from ONNX ops onto the layer vocabulary, one small module per op family."""

from interactive_trt.exporter.networks.onnx_import.converters import (  # noqa: F401 - each registers its ops
    activation, conv, dense, elementwise, norm, passthrough, pool, shape,
)
from interactive_trt.exporter.networks.onnx_import.converters.registry import CONVERTERS, lookup, supported_ops

__all__ = ["CONVERTERS", "lookup", "supported_ops"]
