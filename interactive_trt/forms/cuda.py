"""The exported graph as ONNX Runtime's CUDA provider loads it: the same function in forms that provider
runs fast, made on a copy at load time, as `cpu.py` does for the CPU (the file stays what TensorRT and
every other runtime read: TensorRT times its own tactics per layer, and needs none of this).

ONNX Runtime's CUDA provider (cuDNN 9) takes each convolution's plan from cuDNN's heuristics and times
nothing, where PyTorch with `cudnn.benchmark` times the candidates; in float32 with TF32 off (the only
float32 that meets our bounds) its 3x3 layers then run well below the card's rate. The forms:

* "winograd": dense float32 3x3 layers as Winograd F(4x4, 3x3) (`winograd.py`, its MatMul layout): the
  products become batched matrix products, which cuBLAS runs at the float32 rate with a quarter of the
  multiplications; the transforms are memory-bound passes.
* "products": fc6's and fc7's backward (stride-1 transposed products) as one MatMul against the kernel
  read as a matrix, fc6's 7 x 7 blocks added into place by one Sum of padded blocks.
* "sums": the connection sums' all-ones 1 x 1 convolutions over channels as ReduceSum (the CPU form
  keeps convolutions: ONNX Runtime's CPU ReduceSum over channels is slow; cuDNN plans a one-channel
  output poorly).

None is on by default until a GPU run measures it (docs/gpu.md says what is expected, and how to measure:
benchmarks/gpu_check.sh); `INTERACTIVE_CUDA_FORMS` (or a runner's `cuda_forms`) turns them on.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

from interactive_trt.common.errors import InterActiveError
from interactive_trt.forms.cpu import transposed_as_products, written
from interactive_trt.forms.rewrite import attributes_of
from interactive_trt.forms.winograd import winograd_convolutions

FORMS = ("winograd", "products", "sums")
DEFAULT_FORMS: tuple[str, ...] = ()  # unmeasured on a GPU so far: see the module's docstring
FORMS_VARIABLE = "INTERACTIVE_CUDA_FORMS"


def chosen_forms(value: str | None = None) -> tuple[str, ...]:
    """The forms named in `value` (comma-separated; "none" for the file as exported), else the
    environment variable's, else the defaults; an unknown name is refused in one line."""
    value = os.environ.get(FORMS_VARIABLE) if value is None else value
    if value is None:
        return DEFAULT_FORMS
    names = tuple(name.strip() for name in value.split(",") if name.strip() and name.strip() != "none")
    unknown = [name for name in names if name not in FORMS]
    if unknown:
        raise InterActiveError(f"{FORMS_VARIABLE}={value!r}: unknown form {unknown[0]!r}; choose from "
                               f"{', '.join(FORMS)}, or none")
    return names


def ones_over_channels(node, constants: dict) -> bool:
    """A bias-free, unpadded, stride-1 1 x 1 Conv whose kernel is an all-ones (1, C, 1, 1) Constant."""
    if node.op_type != "Conv" or len(node.input) != 2 or node.input[1] not in constants:
        return False
    kernel = constants[node.input[1]]
    attributes = attributes_of(node)
    return (kernel.ndim == 4 and kernel.shape[0] == 1 and kernel.shape[2:] == (1, 1) and bool(np.all(kernel == 1))
            and int(attributes.get("group", 1)) == 1 and not any(attributes.get("pads", [0, 0, 0, 0]))
            and all(s == 1 for s in attributes.get("strides", [1, 1])))


def channel_sums_as_reductions(model: onnx.ModelProto) -> int:
    """Rewrites, in place, every all-ones channel sum (`ones_over_channels`) as a ReduceSum over axis 1;
    returns how many. Its Constant stays where another node reads it."""
    constants = {}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for item in model.graph.initializer:
        if len(item.dims) == 4 and item.dims[0] == 1 and list(item.dims[2:]) == [1, 1]:
            constants[item.name] = numpy_helper.to_array(item)
    axes = "interactive_cuda/channel_axis"
    rewritten = 0
    for node in model.graph.node:
        if not ones_over_channels(node, constants):
            continue
        node.op_type = "ReduceSum"
        node.input[1] = axes
        del node.attribute[:]
        node.attribute.append(helper.make_attribute("keepdims", 1))
        rewritten += 1
    if rewritten:
        model.graph.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), axes))
        read = {name for node in model.graph.node for name in node.input}
        kept = [node for node in model.graph.node if node.op_type != "Constant" or node.output[0] in read]
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return rewritten


@contextmanager
def cuda_model(path, forms: tuple[str, ...] = DEFAULT_FORMS) -> Iterator[tuple[str, dict[str, int]]]:
    """The exported file in `forms`, and how many nodes took each: inside the block, the path of a
    temporary copy a session loads (`cpu.written`); the file's own path where nothing changes."""
    with written(lambda: cuda_rewrite(path, forms), path) as form:
        yield form


def cuda_rewrite(path, forms: tuple[str, ...]) -> tuple[onnx.ModelProto | None, dict[str, int]]:
    counts = dict.fromkeys(FORMS, 0)
    if not forms:
        return None, counts
    model = onnx.load(str(path))
    if "winograd" in forms:
        counts["winograd"] = winograd_convolutions(model, "cuda")
    if "products" in forms:
        counts["products"] = transposed_as_products(model, placement="pads")
    if "sums" in forms:
        counts["sums"] = channel_sums_as_reductions(model)
    return model, counts
