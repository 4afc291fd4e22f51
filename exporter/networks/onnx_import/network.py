"""An ONNX file as a layer table plus weights: canonicalise, run every node through its converter, and
draw up the ModelSpec the rest of the exporter serves like a built-in network.

The choices INTERACTIVE.md ("Any CNN") leaves to a network table are made here from the graph:
- the classifier (fc8's role) is the fully connected layer that makes the graph's output, as a 1x1 conv;
  T of 'last' (fc7's role) is the map it reads;
- default feature layers, like the built-ins': the end of each resolution stage and the last map below T.
  A stage end is the last layer of the stage that every path from the image to T passes through and that
  has a successor with weights; a pool closes the stage it reads (VGG's pool1 ends stage 1), and an
  expansion conv that only feeds the next stage's strided conv belongs to that stage (inverted residuals);
- layer names are the ONNX tensor names, sanitised ('.' and '/' are not allowed in ours); the tensor name is
  kept as the layer's `source` and accepted wherever a layer is named.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import OnnxImportError, SpecError
from interactive_trt.contracts.spec import (
    INPUT, MASK_ACTIVATIONS, PARAMETRIC, Layer, ModelSpec, Preprocessing, ResizeRule, upstream,
)
from interactive_trt.exporter.networks.onnx_import.builder import (
    Dense, GraphContext, Map, Pooled, Probabilities, describe,
)
from interactive_trt.exporter.networks.onnx_import.canonical import Canonical, canonicalise
from interactive_trt.exporter.networks.onnx_import.converters import lookup
from interactive_trt.exporter.networks.onnx_import.patterns import fuse_activations
from interactive_trt.exporter.networks.weights import Weights

RESERVED = {INPUT, "imagenet"}


@dataclass(frozen=True)
class ImportOptions:
    """What an ONNX file does not say: the size it was trained at (when its input is dynamic), the
    preprocessing its input expects, and a name for the exported model."""

    input_size: tuple[int, int] | None = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    name: str | None = None


@dataclass
class ImportedNetwork:
    spec: ModelSpec
    weights: Weights
    canonical: Canonical
    aliases: dict[str, tuple[str, str]]  # ONNX tensor -> (our layer, its layout in the file: NCHW, NHWC, NC)
    file_preprocessing: Preprocessing  # what the original file's input expects (the import's options)
    softmax: bool  # the file's output is a softmax of the class scores
    scores_tensor: str  # the tensor holding the class scores (the softmax's input, or the output itself)
    seconds: float = 0.0

    @property
    def candidates(self) -> list[str]:
        """Layers that can be feature layers: those with a successor with weights, outside the branches of
        gates (1 x 1 after a global pool: no map to weight)."""
        pooled = self.spec.pooled_layers()
        return [layer.name for layer in self.spec.layers
                if layer.name not in pooled and self.spec.successors(layer.name)]

    def resolve_layers(self, names) -> tuple[str, ...]:
        """--layers by our names or by the file's tensor names."""
        resolved = []
        for name in names:
            if name in self.spec.by_name:
                resolved.append(name)
            elif name in self.aliases:
                resolved.append(self.aliases[name][0])
            else:
                sources = [self.spec.layer(layer).source for layer in self.candidates]
                raise SpecError(f"--layers: {name!r} is no tensor of {self.canonical.path.name} that a layer holds; "
                                f"candidates (see --list-layers): {', '.join(sources)}")
        return tuple(resolved)

    def layer_rows(self) -> list[dict]:
        """What --list-layers prints: every candidate plus T and the classifier, at the native size."""
        spec = self.spec
        sizes = spec.spatial_sizes(*self.canonical.native_size)
        strides = total_strides(spec)
        candidates = set(self.candidates)
        rows = []
        for layer in spec.layers:
            role = []
            if layer.name in spec.feature_layers:
                role.append("default")
            if layer.name == spec.last_layer:
                role.append("T of 'last'")
            if layer.name == spec.head_logits:
                role.append("classifier")
            if layer.name in candidates and spec.cancelled_by_norm(layer.name):
                role.append("next only")  # its weight map is 0 in 'last' (ModelSpec.cancelled_by_norm)
            if layer.name not in candidates and not role:
                continue
            height, width = sizes[layer.name]
            rows.append({"tensor": layer.source, "layer": layer.name, "op": layer.op, "channels": layer.channels,
                         "stride": stride_label(strides[layer.name]), "shape": f"{layer.channels}x{height}x{width}",
                         "role": ", ".join(role)})
        return rows

    def record(self) -> dict:
        """The manifest's `source` entry: what was imported and how."""
        canonical = self.canonical
        return {"format": "onnx", "file": str(canonical.path.resolve()), "sha256": canonical.sha256,
                "producer": canonical.producer, "opset": canonical.opset, "canonicaliser": canonical.canonicaliser,
                "input": {"name": canonical.input_name, "layout": canonical.layout,
                          "native_size": list(canonical.native_size), "batch": canonical.batch,
                          "preprocessing": preprocessing_dict(self.file_preprocessing)},
                "output": {"name": canonical.output_name, "softmax": self.softmax, "scores": self.scores_tensor},
                "layers": {layer.name: layer.source for layer in self.spec.layers}}


def preprocessing_dict(preprocessing: Preprocessing) -> dict:
    return {"scale": preprocessing.scale, "mean": list(preprocessing.mean), "std": list(preprocessing.std),
            "channel_order": preprocessing.channel_order}


def sanitise(name: str) -> str:
    cleaned = re.sub(r"_output_0$", "", re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_"))
    cleaned = cleaned.strip("_") or "tensor"
    return f"t_{cleaned}" if cleaned[0].isdigit() else cleaned


def total_strides(spec: ModelSpec) -> dict[str, tuple[int, int]]:
    """Each layer's (height, width) product of the strides from the image (at a sum, its inputs' larger)."""
    strides = {INPUT: (1, 1)}
    for layer in spec.layers:
        step_h, step_w = layer.strides
        strides[layer.name] = (max(strides[source][0] for source in layer.inputs) * step_h,
                               max(strides[source][1] for source in layer.inputs) * step_w)
    return strides


def stride_label(stride: tuple[int, int]) -> int | str:
    """A square total stride as its side (what --list-layers has always shown), else "height x width"."""
    return stride[0] if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"


def needed(drafts: dict, head: str) -> set[str]:
    return upstream([head], lambda name: drafts[name].inputs)


def is_cut(spec: ModelSpec, target: str, removed: str) -> bool:
    """Does every path from the image to `target` pass through `removed`?"""
    by_name, seen, stack = spec.by_name, set(), [target]
    while stack:
        name = stack.pop()
        if name == INPUT:
            return False
        if name in seen or name == removed:
            continue
        seen.add(name)
        stack.extend(by_name[name].inputs)
    return True


def default_feature_layers(spec: ModelSpec) -> tuple[str, ...]:
    target, by_name = spec.last_layer, spec.by_name
    strides = total_strides(spec)
    below = set()
    stack = list(by_name[target].inputs)
    while stack:
        name = stack.pop()
        if name != INPUT and name not in below:
            below.add(name)
            stack.extend(by_name[name].inputs)

    def expansion(layer: Layer) -> bool:
        readers = spec.consumers(layer.name)
        source = by_name.get(layer.inputs[0])
        return (layer.op == "conv" and bool(readers) and all(r.op == "conv" and max(r.strides) > 1 for r in readers)
                and source is not None and source.op in ("conv", "add") and not source.activation)

    ends: dict[tuple[int, int], str] = {}
    for layer in spec.layers:
        successors = spec.successors(layer.name)
        if layer.name not in below or not successors or expansion(layer) or spec.cancelled_by_norm(layer.name) \
                or layer.op == "pad":  # a padded copy of the map before it, which serves in its place
            continue
        if any(successor.name not in below and successor.name != target for successor in successors):
            continue  # read through weight-free ops by a layer above T (a norm and activation before the head)
        if not is_cut(spec, target, layer.name):
            continue
        stage = strides[layer.inputs[0]] if layer.op in ("maxpool", "avgpool") else strides[layer.name]
        ends[stage] = layer.name
    return tuple(sorted(ends.values(), key=[layer.name for layer in spec.layers].index))


def network_name(path: Path, name: str | None) -> str:
    chosen = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem) or "model"
    return chosen


def import_onnx(path: Path, options: ImportOptions = ImportOptions()) -> ImportedNetwork:
    """The file's network in our vocabulary, or one OnnxImportError naming the first node that is not."""
    started = time.perf_counter()
    path = Path(path)
    canonical = canonicalise(path, options.input_size)
    fuse_activations(canonical.model)  # the canonical graph is ours: mapped here, never run
    ctx = GraphContext(model=canonical.model, path=str(path), opset=canonical.opset, batch=canonical.batch or 1,
                       native_size=canonical.native_size)
    ctx.set_value(canonical.input_name, Map(INPUT, canonical.layout, 0))
    nodes = [node for node in canonical.model.graph.node
             if not (node.op_type == "Constant" and node.domain in ("", "ai.onnx"))]
    converters = [lookup(node, canonical.opset, str(path)) for node in nodes]  # every op known, before any mapping
    for node, convert in zip(nodes, converters):
        convert(node, ctx)
    output = canonical.output_name
    if output not in ctx.values:
        raise OnnxImportError(f"{path}: output {output!r} is a constant or the input; supported: class scores")
    result = ctx.values[output]
    softmax = isinstance(result, Probabilities)
    scores = result.scores if softmax else result
    if not isinstance(scores, (Dense, Pooled)):
        raise OnnxImportError(f"{path}: output {output!r} is {describe(scores)}; supported: class scores from a "
                              "fully connected classifier (after a global average pool or a flatten) or a 1x1 conv "
                              "followed by a global average pool, optionally through a softmax")
    head = ctx.drafts[scores.layer]
    if head.version != scores.version:
        raise OnnxImportError(f"{path}: output {output!r} is a value its layer no longer holds")
    if head.op != "conv" or head.kernel != 1 or head.kernel_w > 1 or head.groups != 1 or head.strides != (1, 1) \
            or any(head.pads):
        what = (f"reads a flattened {head.kernel}x{head.kernel} map directly" if head.dense and head.kernel > 1
                else f"is a {head.op} layer")
        raise OnnxImportError(f"{path}: the classifier {head.source!r} {what}; supported: a classifier that is a "
                              "1x1 conv over a map (after a global average pool, or after a first fully connected "
                              "layer over the flatten), so that the map it reads can be re-weighted (section 4.4)")
    if head.inputs[0] == INPUT:
        raise OnnxImportError(f"{path}: the classifier {head.source!r} reads the image itself; no layer plays fc7")
    scores_tensor = ctx.softmax_input if softmax else output
    return assemble(ctx, canonical, head.id, options, softmax, scores_tensor, started)


def assemble(ctx: GraphContext, canonical: Canonical, head: str, options: ImportOptions, softmax: bool,
             scores_tensor: str, started: float) -> ImportedNetwork:
    path = canonical.path
    keep = needed(ctx.drafts, head)
    names, used = {INPUT: INPUT}, set(RESERVED)
    for draft_id in ctx.order:
        if draft_id not in keep:
            continue
        base = sanitise(ctx.drafts[draft_id].source)
        name, count = base, 1
        while name in used:
            count += 1
            name = f"{base}_{count}"
        used.add(name)
        names[draft_id] = name
    layers, arrays = [], {}
    for draft_id in ctx.order:
        if draft_id not in keep:
            continue
        draft = ctx.drafts[draft_id]
        name = names[draft_id]
        layers.append(Layer(name=name, op=draft.op, inputs=tuple(names[i] for i in draft.inputs),
                            channels=draft.channels, kernel=draft.kernel, kernel_w=draft.kernel_w, stride=draft.strides[0],
                            stride_w=draft.strides[1] if draft.strides[1] != draft.strides[0] else 0, pads=draft.pads,
                            relu=bool(draft.activation), relu6=draft.activation == "relu6",
                            act=draft.activation if draft.op == "act" or draft.activation not in MASK_ACTIVATIONS
                            else "", alpha=draft.alpha, beta=draft.beta, bn_eps=draft.eps, offset=draft.offset,
                            ceil_mode=draft.ceil_mode, weight_key=draft.weight_key, in_channels=draft.in_channels,
                            groups=draft.groups, count_include_pad=draft.count_include_pad, source=draft.source,
                            pad_mode=draft.pad_mode, channel_window=draft.channel_window, dilation=draft.dilation))
        if draft.op in PARAMETRIC:
            arrays[name] = (np.ascontiguousarray(draft.weight, np.float32),
                            np.ascontiguousarray(draft.bias, np.float32))
    preprocessing = options.preprocessing
    if ctx.input_scale is not None:
        scale, shift = ctx.input_scale, ctx.input_shift
        if np.any(scale == 0):
            raise OnnxImportError(f"{path}: the graph multiplies an image channel by zero")
        std = np.asarray(preprocessing.std, np.float64)
        mean = np.asarray(preprocessing.mean, np.float64)
        preprocessing = replace(preprocessing, mean=tuple(float(v) for v in mean - shift * std / scale),
                                std=tuple(float(v) for v in std / scale))
    head_name = names[head]
    last = names[ctx.head_map if ctx.head_pooled else ctx.drafts[head].inputs[0]]
    # each axis' sides: multiples of its total stride (2x1 strides leave the width's smaller), plus what the
    # native size leaves over
    stride_h, stride_w = ctx.total_stride_of(*keep)
    height, width = canonical.native_size
    offset_h, offset_w = height % stride_h, width % stride_w
    resize = ResizeRule(target_side=512, multiple=stride_h, min_side=min(height, width), offset=offset_h,
                        **({} if (stride_w, offset_w) == (stride_h, offset_h)
                           else {"multiple_w": stride_w, "offset_w": offset_w}))
    name = network_name(path, options.name)
    provisional = ModelSpec(name=name, layers=tuple(layers), feature_layers=(), last_layer=last,
                            head_logits=head_name, preprocessing=preprocessing, resize=resize,
                            head_pooled=ctx.head_pooled)
    spec = replace(provisional, feature_layers=default_feature_layers(provisional))
    try:
        spec.spatial_sizes(height, width)
    except SpecError as error:
        raise OnnxImportError(f"{path}: {error}") from None
    aliases = {}
    for tensor, value in ctx.values.items():
        layer = getattr(value, "layer", None)
        if layer in names and layer != INPUT and isinstance(value, (Map, Dense)) \
                and value.version == ctx.drafts[layer].version:
            aliases[tensor] = (names[layer], value.layout if isinstance(value, Map) else "NC")
    weights = Weights(arrays=arrays, source=str(path))
    weights.check(spec, origin=str(path))
    return ImportedNetwork(spec=spec, weights=weights, canonical=canonical, aliases=aliases,
                           file_preprocessing=options.preprocessing, softmax=softmax, scores_tensor=scores_tensor,
                           seconds=time.perf_counter() - started)
