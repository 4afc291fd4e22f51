"""The table from ONNX op type to the function that maps it onto our layers (onnx2torch's pattern).

A converter is registered under the op type and the operator-set versions at which the op last changed
(`onnx.defs` schema `since_version`); the model's opset is resolved to that version, so one converter
serves every later opset until the op changes again. An op or version without a converter is refused
in one line naming the node, its op and the supported ops.
"""

from __future__ import annotations

from typing import Callable

from onnx import defs, helper

from interactive_trt.common.errors import OnnxImportError
from interactive_trt.exporter.networks.onnx_import.patterns import FUSED

CONVERTERS: dict[str, dict[int, Callable]] = {}

# Why some ops that CNNs use are outside the vocabulary (INTERACTIVE.md, "Any CNN").
REASONS = {
    **{op: "an activation without a derivative in the InterActive graph (INTERACTIVE.md, \"Any CNN, part 3\" "
           "lists those it has)"
       for op in ("Shrink",)},
    **{op: "a recurrent layer, not a CNN layer" for op in ("LSTM", "GRU", "RNN", "Scan", "Loop", "If")},
    **{op: "resampling has no connection sets of equations (8)-(9)" for op in ("Resize", "Upsample",
                                                                                "ConvTranspose", "DepthToSpace",
                                                                                "SpaceToDepth")},
    "LogSoftmax": "a log-softmax of the class scores (supported as the output: the scores themselves or their "
                  "Softmax; export the model without its final log_softmax)",
    "InstanceNormalization": "a normalisation over space of neither a feature map (InstanceNorm, with a scale and "
                             "bias per channel) nor GroupNorm as torch.onnx writes it (x viewed as N x groups x "
                             "rest, InstanceNormalization, viewed back), not in the vocabulary",
}


def converter(op_type: str, *versions: int):
    """Register `function(node, ctx)` for `op_type` at the given schema versions."""
    def register(function: Callable) -> Callable:
        for version in versions:
            CONVERTERS.setdefault(op_type, {})[version] = function
        return function
    return register


def supported_ops() -> str:
    return ", ".join(sorted(op for op in CONVERTERS if not op.startswith(f"{FUSED}.")))


def lookup(node, opset: int, path: str) -> Callable:
    label = f"{path}: node {node.name or '(unnamed)'!r} ({node.op_type})"
    if node.domain == FUSED:  # one of ours: a pattern of several nodes that patterns.py made one
        table = CONVERTERS.get(f"{FUSED}.{node.op_type}") or CONVERTERS[f"{FUSED}.Activation"]
        return table[1]
    table = CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    if table is None:
        domain = f" of domain {node.domain!r}" if node.domain not in ("", "ai.onnx") else ""
        reason = REASONS.get(node.op_type, f"op{domain} not in the InterActive vocabulary")
        raise OnnxImportError(f"{label}: {reason}; supported: {supported_ops()}")
    try:
        version = defs.get_schema(node.op_type, opset, "").since_version
    except Exception:  # noqa: BLE001 - onnx raises SchemaError for an unknown version
        version = None
    if version not in table:
        raise OnnxImportError(f"{label}: version {version} of the op (opset {opset}) is not supported; "
                              f"supported versions: {', '.join(str(v) for v in sorted(table))}")
    return table[version]


def attributes(node) -> dict:
    """The node's attributes as Python values (strings decoded); ONNX defaults are the callers' to spell out."""
    found = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        found[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return found
