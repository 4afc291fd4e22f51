"""ONNX-level rewrites of the exported graph, run after torch.onnx.export and before verification.

`transposed_as_convolutions`: the backward pass applies each 3x3 layer's kernel transposed. A stride-1
transposed convolution with 'same' padding (k - 1 - p = p) is exactly the convolution with the kernel's
input and output channels swapped and its taps flipped, with the same padding. ONNX Runtime runs
ConvTranspose as a GEMM plus col2im outside its blocked (NCHWc) convolution path; as a Conv it joins
that path: InterActive 2.51 -> 2.29 s at 512x512 on VGG-19 (2 AVX-512 cores, the quiet rounds of an
interleaved run), more under contention. The price is the flipped kernels as initializers of their
own: +76 MiB on VGG-19's 548 (conv2_2 to conv5_4), +2.2 MB on SqueezeNet 1.1; fc6 (7x7 without
padding, whose convolution form would mostly multiply padding) and the 1x1 layers (fc7: +64 MiB for
no gain) keep their ConvTranspose. Every runtime then reads a plain Conv with a plain initializer.
Grouped and depthwise layers (EfficientNet-Lite0's) are rewritten too, group by group: ONNX Runtime's
CPU provider has no blocked path at all for a grouped ConvTranspose, and runs it group by group.

Strided depthwise ConvTransposes stay: as a zero-spread input (Unsqueeze, Pad, Reshape, or Pad and
DepthToSpace) and a depthwise Conv they cost ONNX Runtime as much in the spreading as they save (tried
on EfficientNet-Lite0: its four stride-2 layers 41 ms, the spreading alone 27-35 ms).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def attributes_of(node) -> dict:
    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


POINTWISE_LIMIT = 1 << 20  # kernel elements up to which a 1x1 transposed convolution joins the Conv path


def pointwise_stride_one(node, kernel: np.ndarray) -> bool:
    """An unpadded stride-1 1x1 ConvTranspose of at most POINTWISE_LIMIT weights: the 1x1 Conv with the
    kernel's channels swapped. On ONNX Runtime's CPU provider it joins the blocked convolutions instead of
    leaving their layout around it (a load-time form, `cpu.cpu_model`: EfficientNet-B0 at 512x512, 128 ->
    102 ms; Lite0, ResNet-50 and SqueezeNet 1.1 2-6% faster; VGG's fc7, 16.8M weights, stays a product)."""
    attributes = attributes_of(node)
    return (kernel.ndim == 4 and tuple(kernel.shape[2:]) == (1, 1) and kernel.size <= POINTWISE_LIMIT
            and all(s == 1 for s in attributes.get("strides", [1, 1]))
            and not any(attributes.get("pads", [0, 0, 0, 0]))
            and not any(attributes.get("output_padding", [0, 0])) and "output_shape" not in attributes
            and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))


def same_padded_stride_one(node, kernel: np.ndarray) -> bool:
    """ConvTranspose attributes for which the flipped-kernel Conv is the same op with the same pads."""
    attributes = attributes_of(node)
    size = list(kernel.shape[2:])
    pads = list(attributes.get("pads", [0] * 2 * len(size)))
    return (kernel.ndim == 4 and max(size) > 1
            and all(s == 1 for s in attributes.get("strides", [1, 1]))
            and all(d == 1 for d in attributes.get("dilations", [1, 1]))
            and not any(attributes.get("output_padding", [0, 0])) and "output_shape" not in attributes
            and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            and all(k - 1 - p == p for k, p in zip(size + size, pads)))


def convolution_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """The Conv kernel (C_out, C_in / g, k, k) equal to a ConvTranspose kernel (C_in, C_out / g, k, k):
    within each group input and output channels swap places, and the taps are flipped."""
    c_in, per_group_out = kernel.shape[:2]
    taps = kernel.shape[2:]
    grouped = kernel.reshape(groups, c_in // groups, per_group_out, *taps).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(grouped.reshape(groups * per_group_out, c_in // groups, *taps)[:, :, ::-1, ::-1])


def initializer_behind(name: str, initializers: dict, producers: dict) -> str | None:
    """The initializer a value is, through Identity nodes (torch.onnx reads a shared weight through one)."""
    while name not in initializers:
        node = producers.get(name)
        if node is None or node.op_type != "Identity":
            return None
        name = node.input[0]
    return name


def drop_unread_initializers(model: onnx.ModelProto) -> None:
    """In place: re-adding the kept ones would copy every kernel."""
    read = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    for index in reversed(range(len(model.graph.initializer))):
        if model.graph.initializer[index].name not in read:
            del model.graph.initializer[index]


def replace_nodes(model: onnx.ModelProto, op_type: str, replacement) -> int:
    """Each `op_type` node whose weight (input 1) is an initializer, or an Identity of one, is offered to
    `replacement(node, initializer, name)`, which returns the nodes that compute it instead, or None to
    keep it. Kernels nobody reads afterwards are dropped; returns how many nodes were replaced."""
    initializers = {item.name: item for item in model.graph.initializer}
    producers = {output: node for node in model.graph.node for output in node.output}
    replaced, nodes = 0, []
    for node in model.graph.node:
        source = (initializer_behind(node.input[1], initializers, producers)
                  if node.op_type == op_type and node.domain in ("", "ai.onnx") and len(node.input) > 1 else None)
        instead = replacement(node, initializers[source], source) if source else None
        if instead is None:
            nodes.append(node)
            continue
        nodes.extend(instead)
        replaced += 1
    if replaced:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        drop_unread_initializers(model)
    return replaced


def drop_unread_identities(model: onnx.ModelProto) -> None:
    read = {name for node in model.graph.node for name in node.input} | {out.name for out in model.graph.output}
    kept = [node for node in model.graph.node if node.op_type != "Identity" or node.output[0] in read]
    del model.graph.node[:]
    model.graph.node.extend(kept)


def transposed_as_convolutions(model: onnx.ModelProto, which=same_padded_stride_one) -> int:
    """Rewrites, in place, every ConvTranspose that `which` accepts (by default the same-padded stride-1
    ones) whose kernel is an initializer (or an Identity of one) into a Conv reading `<kernel>__flipped`;
    returns how many."""
    initializers = {item.name: item for item in model.graph.initializer}
    producers = {output: node for node in model.graph.node for output in node.output}
    flipped_names = set()
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "ConvTranspose" or node.domain not in ("", "ai.onnx"):
            continue
        source = initializer_behind(node.input[1], initializers, producers)
        if source is None:
            continue
        kernel = numpy_helper.to_array(initializers[source])
        if not which(node, kernel):
            continue
        attributes = attributes_of(node)
        groups = int(attributes.get("group", 1))
        name = f"{source}__flipped"
        if name not in flipped_names:
            flipped = convolution_kernel(kernel, groups)
            model.graph.initializer.append(numpy_helper.from_array(flipped, name))
            flipped_names.add(name)
        pads = attributes.get("pads", [0, 0, 0, 0])
        node.op_type = "Conv"
        node.input[1] = name
        del node.attribute[:]
        node.attribute.extend([helper.make_attribute("kernel_shape", list(kernel.shape[2:])),
                               helper.make_attribute("pads", list(pads)),
                               helper.make_attribute("strides", [1, 1])]
                              + ([helper.make_attribute("group", groups)] if groups > 1 else []))
        rewritten += 1
    if rewritten:
        drop_unread_identities(model)
    return rewritten

