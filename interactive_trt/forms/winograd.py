"""3x3 convolutions as Winograd F(4x4, 3x3) in ordinary ONNX ops, for the CPU runtimes at load time (and
for ONNX Runtime's CUDA provider where asked: interactive_trt.forms.cuda).

On a CPU, a direct 3x3 convolution is a matrix product at the machine's matmul rate; VGG-19's
InterActive pass is 427 GFLOP of them at 512x512, about two seconds on two cores however well they are
scheduled. Winograd's minimal filtering (Lavin and Gray, CVPR 2016) computes each 4x4 output tile from a
6x6 input tile with 36 products per channel pair instead of 144: the same layer as 36 matrix products of
a quarter the work, plus input and output transforms that are linear in the channels. ONNX Runtime's and
OpenVINO's CPU kernels (oneDNN, MLAS) no longer carry Winograd, so the graph says it in ops they do run
fast: a strided convolution with fixed 6x6 kernels (the input transform), one batched MatMul against the
transformed kernels G W G^T, and the output transform back into place.

The exported file keeps its plain convolutions (TensorRT and cuDNN choose their own algorithms, and the
file is the contract every runtime reads alike); the CPU backends rewrite a copy when they load it. It
is the same function in exact arithmetic; in float32 F(4x4, 3x3) differs from the direct form by about
1e-5 of a layer's largest value. Only float32 layers are rewritten: float16 and bfloat16 lose too much
in the transforms.

Which layers pay: the transforms cost about the same per channel as the products save per channel pair,
so a layer gains when C_in * C_out / (C_in + C_out) is large enough; the threshold is each runtime's own
(`MIN_CHANNEL_RATIO`, measured on two AVX-512 cores: docs/benchmarks.md). The two runtimes also differ
in which form of the transforms they run fast (`LAYOUTS`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from interactive_trt.forms.rewrite import attributes_of, replace_nodes

TILE = 4  # output tile m; input tile m + 2
B_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
               dtype=np.float64)
ALPHA = TILE + 2
# node names end so: the transforms, which a reduced precision must leave in float32
INPUT, OUTPUT = "winograd/input_transform", "winograd/output_transform"

# C_in * C_out / (C_in + C_out) from which a layer is rewritten
MIN_CHANNEL_RATIO = {"onnxruntime": 64, "openvino": 128, "cuda": 64}
# how the transforms are written: ONNX Runtime runs grouped convolutions for both well; OpenVINO's CPU
# plugin runs a grouped ConvTranspose far slower than a MatMul and DepthToSpace, and so does cuDNN ("cuda":
# ONNX Runtime's CUDA provider, interactive_trt.forms.cuda)
LAYOUTS = {"onnxruntime": "grouped", "openvino": "matmul", "cuda": "matmul"}


def input_transform() -> np.ndarray:
    """(36, 1, 6, 6): output channel i*6+j is row i of B^T by column j of B over a 6x6 tile."""
    return np.einsum("ia,jb->ijab", B_T, B_T).reshape(ALPHA * ALPHA, 1, ALPHA, ALPHA)


def kernel_transform(weight: np.ndarray) -> np.ndarray:
    """(36, C_out, C_in): G W G^T for every channel pair."""
    rows = np.tensordot(G, weight.astype(np.float64), axes=([1], [2]))  # i, k, c, b
    return np.tensordot(rows, G, axes=([3], [1])).transpose(0, 3, 1, 2).reshape(ALPHA * ALPHA, *weight.shape[:2])


def output_transform() -> np.ndarray:
    """(16, 36): A^T M A, output tap p*4+q from the 36 products."""
    return np.einsum("pi,qj->pqij", A_T, A_T).reshape(TILE * TILE, ALPHA * ALPHA)


def eligible(node) -> bool:
    """A dense, stride-1, undilated convolution with explicit pads (its kernel: `replacement` checks)."""
    attributes = attributes_of(node)
    return (int(attributes.get("group", 1)) == 1
            and all(s == 1 for s in attributes.get("strides", [1, 1]))
            and all(d == 1 for d in attributes.get("dilations", [1, 1]))
            and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))


def pays(weight: np.ndarray, runtime: str) -> bool:
    channels_out, channels_in = weight.shape[:2]
    return channels_in * channels_out / (channels_in + channels_out) >= MIN_CHANNEL_RATIO[runtime]


class Writer:
    """Appends the nodes and constants of one layer's rewrite under a common name prefix."""

    def __init__(self, model: onnx.ModelProto, prefix: str):
        self.model, self.prefix, self.nodes = model, prefix, []

    def constant(self, name: str, value: np.ndarray) -> str:
        """An initializer written in place (appending a finished TensorProto copies it once more)."""
        name = f"{self.prefix}/{name}"
        value = np.asarray(value, order="C")  # 0-d stays 0-d (a scalar index)
        tensor = self.model.graph.initializer.add()
        tensor.name, tensor.data_type = name, helper.np_dtype_to_tensor_dtype(value.dtype)
        tensor.dims.extend(value.shape)
        tensor.raw_data = value.tobytes()
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, label: str | None = None,
             **attributes) -> str:
        name = output or f"{self.prefix}/{label or f'{op.lower()}_{len(self.nodes)}'}"
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def shape(self, value: str, start: int, end: int) -> str:
        return self.node("Shape", [value], start=start, end=end)

    def add_bias(self, value: str, bias: str, output: str | None = None) -> str:
        """`value` (N, C, H, W) plus a per-channel bias vector."""
        shape = self.constant("bias_shape", np.array([1, -1, 1, 1], dtype=np.int64))
        return self.node("Add", [value, self.node("Reshape", [bias, shape])], output=output)

    def concat(self, fixed: list[int], dynamic: str) -> str:
        return self.node("Concat", [self.constant(f"dims_{len(self.nodes)}", np.array(fixed, dtype=np.int64)), dynamic],
                         axis=0)


def winograd_nodes(model: onnx.ModelProto, node, weight: np.ndarray, bias: str | None, layout: str) -> list:
    """The nodes that compute `node` (a Conv) as Winograd F(4x4, 3x3), writing its output name."""
    channels_out, channels_in = weight.shape[:2]
    pads = list(attributes_of(node).get("pads", [0, 0, 0, 0]))
    top, left, bottom, right = pads
    w = Writer(model, node.name or node.output[0])
    source = node.input[0]
    # padding the end by m - 1 beyond the layer's own makes the tile count ceil(out / m) for any size
    transform_pads = [top, left, bottom + TILE - 1, right + TILE - 1]
    taps = ALPHA * ALPHA
    if layout == "grouped":
        kernel = np.tile(input_transform(), (channels_in, 1, 1, 1)).astype(np.float32)
        tiles_in = w.node("Conv", [source, w.constant("input_transform", kernel)], label=INPUT, group=channels_in,
                          kernel_shape=[ALPHA, ALPHA], strides=[TILE, TILE], pads=transform_pads)
    else:
        single = w.node("Reshape", [source, w.constant("single_channels", np.array([-1, 1, 0, 0], dtype=np.int64))])
        tiles_in = w.node("Conv", [single, w.constant("input_transform", input_transform().astype(np.float32))],
                          label=INPUT, kernel_shape=[ALPHA, ALPHA], strides=[TILE, TILE], pads=transform_pads)
    grid = w.shape(tiles_in, 2, 4)  # tile rows, tile columns
    count = w.node("ReduceProd", [grid], keepdims=1)
    by_channel = w.node("Reshape", [tiles_in, w.concat([-1, channels_in, taps], count)])  # N, C, 36, T
    by_tap = w.node("Transpose", [by_channel], perm=[0, 2, 1, 3])  # N, 36, C, T
    products = w.node("MatMul", [w.constant("kernel", kernel_transform(weight).astype(np.float32)), by_tap],
                      label="product")
    by_output = w.node("Transpose", [products], perm=[0, 2, 1, 3])  # N, K, 36, T
    if layout == "grouped":
        blocks = w.node("Reshape", [by_output, w.concat([-1, channels_out * taps], grid)])
        spread = np.tile(np.einsum("pi,qj->ijpq", A_T, A_T).reshape(taps, 1, TILE, TILE), (channels_out, 1, 1, 1))
        placed = w.node("ConvTranspose", [blocks, w.constant("output_transform", spread.astype(np.float32))]
                        + ([bias] if bias else []), label=OUTPUT, group=channels_out, kernel_shape=[TILE, TILE],
                        strides=[TILE, TILE])
    else:
        rows = w.node("Reshape", [by_output, w.concat([-1, taps], count)])  # N K, 36, T
        outputs = w.node("MatMul", [w.constant("output_transform", output_transform().astype(np.float32)), rows],
                         label=OUTPUT)
        blocks = w.node("Reshape", [outputs, w.concat([-1, channels_out * TILE * TILE], grid)])
        placed = w.node("DepthToSpace", [blocks], blocksize=TILE, mode="CRD")
        if bias:
            placed = w.add_bias(placed, bias)
    size = w.node("Add", [w.shape(source, 2, 4),
                          w.constant("grown", np.array([top + bottom - 2, left + right - 2], dtype=np.int64))])
    w.node("Slice", [placed, w.constant("starts", np.zeros(2, dtype=np.int64)), size,
                     w.constant("axes", np.array([2, 3], dtype=np.int64))], output=node.output[0])
    return w.nodes


def winograd_convolutions(model: onnx.ModelProto, runtime: str) -> int:
    """Rewrites, in place, every 3x3 convolution that pays on `runtime` ("onnxruntime" or "openvino");
    returns how many. Kernels no other node reads are dropped."""
    if runtime not in LAYOUTS:
        raise ValueError(f"no Winograd layout for {runtime!r}")

    def replacement(node, stored, _name):
        """Float32 4-D 3x3 kernels only; the kernel is read once the layer qualifies."""
        if (len(stored.dims) != 4 or list(stored.dims[2:]) != [3, 3] or stored.data_type != onnx.TensorProto.FLOAT
                or not eligible(node)):
            return None
        weight = numpy_helper.to_array(stored)
        if not pays(weight, runtime):
            return None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        return winograd_nodes(model, node, weight, bias, LAYOUTS[runtime])

    return replace_nodes(model, "Conv", replacement)
