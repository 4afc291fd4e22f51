"""The exported graph as the CPU runtimes load it: the same function in the forms their CPU kernels
run fast, made on a copy at load time (the file stays what TensorRT and every other runtime read).

* 3x3 layers as Winograd F(4x4, 3x3), on ONNX Runtime and OpenVINO (`winograd`).
* On ONNX Runtime, the 1x1 transposed convolutions of up to 1M weights as 1x1 Convs (`pointwise`:
  `rewrite.pointwise_stride_one` says why), and the backward pass's other stride-1 transposed
  convolutions (fc6's 7x7, fc7's 1x1)
  as a MatMul against the kernel as a constant matrix, which ONNX Runtime prepacks, and, for k > 1, a
  grouped ConvTranspose with one-hot kernels that adds the k x k blocks into place (col2im). ONNX
  Runtime's own ConvTranspose does the same product without prepacking: VGG-19's fc6 backward at
  512x512 takes 181 ms that way and 113 ms this way, against 105 ms for the forward fc6. (OpenVINO's
  loader already gives these a product and Col2Im of its own: `openvino.reexpressed`.)
* On ONNX Runtime, strided depthwise transposed convolutions (the backward pass of EfficientNets' and
  MobileNets' stride-2 depthwise layers) as their input spread with zeros and a depthwise Conv (`spread`):
  ONNX Runtime runs a grouped ConvTranspose as one small product per channel, outside its blocked layout,
  and the depthwise Conv inside it (EfficientNet-B0 at 512x512: 14 of its 115 ms in four such layers).
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import onnx
from onnx import numpy_helper

from interactive_trt.common.memory import return_freed_memory
from interactive_trt.forms.rewrite import (
    attributes_of, pointwise_stride_one, replace_nodes, transposed_as_convolutions,
)
from interactive_trt.forms.winograd import Writer, winograd_convolutions

MIN_PRODUCT_CHANNELS = 4096  # C_in * C_out from which a transposed convolution is a product (not a spread)


def product_form(node, shape: tuple[int, ...]) -> bool:
    """A dense, stride-1, undilated transposed convolution of a real layer (a float32 kernel of `shape`;
    the all-ones spreads of connection sums have one or a few channels)."""
    attributes = attributes_of(node)
    return (len(shape) == 4 and int(attributes.get("group", 1)) == 1 and shape[0] * shape[1] >= MIN_PRODUCT_CHANNELS
            and all(s == 1 for s in attributes.get("strides", [1, 1]))
            and all(d == 1 for d in attributes.get("dilations", [1, 1]))
            and not any(attributes.get("output_padding", [0, 0])) and "output_shape" not in attributes
            and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            and (tuple(shape[2:]) != (1, 1) or not any(attributes.get("pads", [0, 0, 0, 0]))))


def product_nodes(model: onnx.ModelProto, node, shape: tuple[int, ...], source: str,
                  placement: str = "convtranspose") -> list:
    """The product, then the k x k blocks added into place: by a grouped ConvTranspose with one-hot kernels
    ("convtranspose", the CPU's), or by one Sum of the blocks padded to their offsets ("pads": cuDNN runs
    grouped transposed convolutions slowly, and fc6's blocks are 10 x 10 maps)."""
    channels_in, channels_out, k_h, k_w = shape
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    w = Writer(model, node.name or node.output[0])
    rows = w.node("Reshape", [node.input[0], w.constant("rows", np.array([0, channels_in, -1], dtype=np.int64))])
    by_position = w.node("Transpose", [rows], perm=[0, 2, 1])  # N, HW, C_in
    # the kernel read as a matrix: a Reshape of the initializer, folded when the session is made
    matrix = w.node("Reshape", [source, w.constant("matrix", np.array([channels_in, -1], dtype=np.int64))])
    products = w.node("MatMul", [by_position, matrix], label="product")
    columns = w.node("Transpose", [products], perm=[0, 2, 1])  # N, C_out k k, HW
    grid = w.shape(node.input[0], 2, 4)
    if (k_h, k_w) == (1, 1):
        out = w.node("Reshape", [columns, w.concat([-1, channels_out], grid)],
                     output=None if bias else node.output[0])
        if bias:
            w.add_bias(out, bias, output=node.output[0])
        return w.nodes
    if placement == "pads":
        padded_sum(w, columns, node, channels_out, (k_h, k_w), grid, bias)
        return w.nodes
    one_hot = np.zeros((channels_out, k_h * k_w, 1, k_h, k_w), dtype=np.float32)
    for tap in range(k_h * k_w):
        one_hot[:, tap, 0, tap // k_w, tap % k_w] = 1
    blocks = w.node("Reshape", [columns, w.concat([-1, channels_out * k_h * k_w], grid)])
    w.node("ConvTranspose", [blocks, w.constant("col2im", one_hot.reshape(-1, 1, k_h, k_w))] + ([bias] if bias else []),
           output=node.output[0], group=channels_out, kernel_shape=[k_h, k_w],
           pads=list(attributes_of(node).get("pads", [0, 0, 0, 0])))
    return w.nodes


def padded_sum(w: Writer, columns: str, node, channels_out: int, kernel: tuple[int, int], grid: str,
               bias: str | None) -> None:
    """col2im as one Sum: block (i, j) of every input position, padded to land at offset (i, j) of the
    full output, whose border the ConvTranspose's pads then crop."""
    k_h, k_w = kernel
    blocks = w.node("Reshape", [columns, w.concat([-1, channels_out, k_h * k_w], grid)])  # N, C_out, taps, H, W
    placed = []
    for tap in range(k_h * k_w):
        i, j = divmod(tap, k_w)
        block = w.node("Gather", [blocks, w.constant(f"tap_{tap}", np.array(tap, dtype=np.int64))], axis=2)
        pads = np.array([0, 0, i, j, 0, 0, k_h - 1 - i, k_w - 1 - j], dtype=np.int64)
        placed.append(w.node("Pad", [block, w.constant(f"pads_{tap}", pads)]))
    top, left, bottom, right = attributes_of(node).get("pads", [0, 0, 0, 0])
    cropped = any((top, left, bottom, right))
    out = w.node("Sum", placed, output=None if cropped or bias else node.output[0])
    if cropped:
        end = w.node("Sub", [w.shape(out, 2, 4), w.constant("crop_end", np.array([bottom, right], dtype=np.int64))])
        out = w.node("Slice", [out, w.constant("crop_start", np.array([top, left], dtype=np.int64)), end,
                               w.constant("crop_axes", np.array([2, 3], dtype=np.int64))],
                     output=None if bias else node.output[0])
    if bias:
        w.add_bias(out, bias, output=node.output[0])


def transposed_as_products(model: onnx.ModelProto, placement: str = "convtranspose") -> int:
    """Rewrites, in place, every transposed convolution of `product_form`; returns how many."""
    def replacement(node, stored, name):
        if stored.data_type != onnx.TensorProto.FLOAT or not product_form(node, tuple(stored.dims)):
            return None
        return product_nodes(model, node, tuple(stored.dims), name, placement)

    return replace_nodes(model, "ConvTranspose", replacement)


def spread_pads(node, shape: tuple[int, ...]) -> list[int] | None:
    """The pads of the depthwise Conv that equals a strided depthwise transposed convolution read on its input
    spread with zeros (`spread_nodes`), or None where that form does not apply: not depthwise with one output
    per channel, not strided, dilated, an explicit output shape, or pads past what the spread holds."""
    attributes = attributes_of(node)
    strides = list(attributes.get("strides", [1, 1]))
    if (len(shape) != 4 or shape[1] != 1 or int(attributes.get("group", 1)) != shape[0] or max(strides) < 2
            or any(d != 1 for d in attributes.get("dilations", [1, 1])) or "output_shape" in attributes
            or attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
        return None
    top, left, bottom, right = attributes.get("pads", [0, 0, 0, 0])
    extra_h, extra_w = attributes.get("output_padding", [0, 0])
    (k_h, k_w), (s_h, s_w) = shape[2:], strides
    # the spread is s x H long: the s - 1 zeros after the last row are already the start of the end padding
    pads = [k_h - 1 - top, k_w - 1 - left, k_h - 1 - bottom + extra_h - (s_h - 1), k_w - 1 - right + extra_w - (s_w - 1)]
    return pads if min(pads) >= 0 else None


def spread_nodes(model: onnx.ModelProto, node, kernel: np.ndarray, pads: list[int]) -> list:
    """The input spread with zeros (each value at the top left of its s x s block: a nearest-neighbour Resize
    times a tiled one-hot mask), then the depthwise Conv with the flipped kernel."""
    strides = list(attributes_of(node).get("strides", [1, 1]))
    w = Writer(model, node.name or node.output[0])
    scales = w.constant("scales", np.array([1, 1, *strides], dtype=np.float32))
    repeated = w.node("Resize", [node.input[0], "", scales], mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    one_hot = np.zeros((1, 1, *strides), dtype=np.float32)
    one_hot[0, 0, 0, 0] = 1
    mask = w.node("Tile", [w.constant("one_hot", one_hot), w.concat([1, 1], w.shape(node.input[0], 2, 4))])
    spread = w.node("Mul", [repeated, mask])
    flipped = w.constant("flipped", np.ascontiguousarray(kernel[:, :, ::-1, ::-1]))
    bias = [node.input[2]] if len(node.input) > 2 and node.input[2] else []
    w.node("Conv", [spread, flipped, *bias], output=node.output[0], group=kernel.shape[0],
           kernel_shape=list(kernel.shape[2:]), pads=pads, strides=[1, 1])
    return w.nodes


def strided_depthwise_as_spreads(model: onnx.ModelProto) -> int:
    """Rewrites, in place, every strided depthwise transposed convolution that `spread_pads` accepts; returns
    how many."""
    def replacement(node, stored, name):
        if stored.data_type != onnx.TensorProto.FLOAT:
            return None
        pads = spread_pads(node, tuple(stored.dims))
        return None if pads is None else spread_nodes(model, node, numpy_helper.to_array(stored), pads)

    return replace_nodes(model, "ConvTranspose", replacement)


@contextmanager
def cpu_model(path, runtime: str) -> Iterator[tuple[str, dict[str, int]]]:
    """The exported file as `runtime` ("onnxruntime" or "openvino") runs it on the CPU, and how many layers
    took each form: inside the block, the path of a temporary copy a session loads (`written`); the
    file's own path where nothing changes."""
    with written(lambda: cpu_rewrite(path, runtime), path) as form:
        yield form


def cpu_rewrite(path, runtime: str) -> tuple[onnx.ModelProto, dict[str, int]]:
    model = onnx.load(str(path))
    counts = {"winograd": winograd_convolutions(model, runtime),
              "pointwise": transposed_as_convolutions(model, pointwise_stride_one) if runtime == "onnxruntime" else 0,
              "products": transposed_as_products(model) if runtime == "onnxruntime" else 0,
              "spread": strided_depthwise_as_spreads(model) if runtime == "onnxruntime" else 0}
    return model, counts


@contextmanager
def written(rewrite: Callable[[], tuple[onnx.ModelProto, dict[str, int]]], path) -> Iterator[tuple[str, dict]]:
    """A load-time form as a session takes it: a temporary ONNX file with its weights in a data file
    beside it, removed when the block ends; `path` itself where `rewrite` changed nothing.

    Not bytes: serializing a rewritten VGG-19 (1.1 GiB) holds the proto and two copies of its bytes
    (3.6 GiB at the peak), and the session then parses the bytes beside them. Written out with
    external data, the proto is gone before the session loads, and no 2 GiB protobuf limit applies.
    The folder is the system's temporary one (TMPDIR).
    """
    with tempfile.TemporaryDirectory(prefix="interactive-form-") as folder:
        target, counts = save_rewritten(rewrite, Path(folder))
        return_freed_memory(collect=False)  # the proto's, before the session takes its own
        yield str(target or path), counts


def save_rewritten(rewrite, folder: Path) -> tuple[Path | None, dict[str, int]]:
    """Runs `rewrite` and saves its model into `folder`; the proto is released when this returns."""
    model, counts = rewrite()
    if not any(counts.values()):
        return None, counts
    target = folder / "form.onnx"
    onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="form.data", size_threshold=1024)
    return target, counts
