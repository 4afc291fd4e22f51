"""Our rebuilt forward pass against the ORIGINAL file run by ONNX Runtime, at the model's native size.

On noise and on photos (resized to the native size, each side fed the preprocessing it expects: the
original the import's options, ours the recorded one, which also holds any per-channel scale the file
applied to its input): the class scores (the softmax's input, when the file ends in one) and the softmax
outputs as probabilities, plus every feature layer and T as maps where the original file names the tensor.
The original's computation is not changed: the compared tensors are only added as graph outputs (and graph
inputs that no node reads are dropped, which ONNX Runtime would ask to be fed).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from interactive_trt.common.imaging import load_rgb, normalise, resize_rgb, sample_photo
from interactive_trt.contracts.graph import OnnxGraph
from interactive_trt.exporter.onnx.verify import Bounds, Report, compare
from interactive_trt.runners.onnxrt import OnnxRuntimeRunner

SOURCE_BOUNDS = Bounds(min_cosine=0.9999, max_rel_l2=None, top1_agreement=1.0)
SCORES, PROBABILITIES = "imagenet.scores_orig", "imagenet.scores_orig_softmax"


@contextmanager
def probed_original(imported) -> Iterator[tuple[str, dict[str, str]]]:
    """The original model with the scores and the compared layers' tensors added as outputs: inside the
    block, the path of a temporary copy (the original's own where nothing is added) and the probes."""
    import onnx

    from interactive_trt.exporter.networks.onnx_import.canonical import drop_unread_inputs
    from interactive_trt.forms.cpu import written

    probes: dict[str, str] = {}

    def probed():
        model = onnx.load(str(imported.canonical.path))
        produced = {name for node in model.graph.node for name in node.output}
        existing = {output.name for output in model.graph.output}
        if imported.softmax and imported.scores_tensor in produced:
            probes[SCORES] = imported.scores_tensor
        spec = imported.spec
        for layer in dict.fromkeys((*spec.feature_layers, spec.last_layer)):
            for tensor, (name, _) in imported.aliases.items():
                if name == layer and tensor in produced:
                    probes[layer] = tensor
                    break
        added = [tensor for tensor in dict.fromkeys(probes.values()) if tensor not in existing]
        for tensor in added:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
        return model, {"probes": len(added), "unread inputs": drop_unread_inputs(model)}

    with written(probed, imported.canonical.path) as (path, _):
        yield path, probes


def source_inputs(imported, images: tuple[Path, ...]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, what the original takes, what ours takes), all at the native size."""
    height, width = imported.canonical.native_size
    batch = imported.canonical.batch or 2
    rng = np.random.default_rng(4321)
    noise = rng.standard_normal((batch, 3, height, width), dtype=np.float32)
    cases = [(f"noise {batch}x{height}x{width}", noise, None)]
    photos = [(str(path), load_rgb(path)) for path in images] or [("scikit-image chelsea", sample_photo("chelsea"))]
    for label, rgb in photos:
        resized = resize_rgb(rgb, (height, width))
        theirs = np.repeat(normalise(resized, imported.file_preprocessing)[None], imported.canonical.batch or 1, 0)
        ours = np.repeat(normalise(resized, imported.spec.preprocessing)[None], imported.canonical.batch or 1, 0)
        cases.append((f"{label} {height}x{width}", theirs, ours))
    batches = []
    for label, theirs, ours in cases:
        if ours is None:  # noise: the same tensor the original sees, after any input scaling the file applies
            ours = to_ours(imported, theirs)
        batches.append((label, theirs, ours))
    return batches


def to_ours(imported, theirs: np.ndarray) -> np.ndarray:
    """The input our network needs for the same pixels: undo the file's preprocessing, apply ours."""
    file_pre, our_pre = imported.file_preprocessing, imported.spec.preprocessing
    if file_pre == our_pre:
        return theirs
    shape = (1, 3, 1, 1)
    pixels = theirs * np.asarray(file_pre.std, np.float32).reshape(shape) + np.asarray(file_pre.mean,
                                                                                       np.float32).reshape(shape)
    return ((pixels - np.asarray(our_pre.mean, np.float32).reshape(shape))
            / np.asarray(our_pre.std, np.float32).reshape(shape)).astype(np.float32)


def verify_against_source(imported, images: tuple[Path, ...] = (),
                          log: Callable[[str], None] = lambda message: None) -> list[Report]:
    canonical = imported.canonical
    with probed_original(imported) as (path, probes):
        names = list(dict.fromkeys([canonical.output_name, *probes.values()]))
        graph = OnnxGraph(Path(path), canonical.input_name, names, layout=canonical.layout)
        with OnnxRuntimeRunner(graph, device="cpu", convolutions="direct") as runner:
            return compared(imported, runner, probes, images, log)


def compared(imported, runner, probes: dict[str, str], images: tuple[Path, ...], log) -> list[Report]:
    import torch

    from interactive_trt.exporter.interactive.forward import class_scores, run_forward, weight_tensors

    spec, canonical = imported.spec, imported.canonical
    params = weight_tensors(spec, imported.weights)
    layers = [name for name in probes if name != SCORES]
    reports = []
    for label, theirs, ours in source_inputs(imported, images):
        feed = theirs.transpose(0, 2, 3, 1) if canonical.layout == "NHWC" else theirs
        fetched = runner.infer({canonical.input_name: np.ascontiguousarray(feed)})
        with torch.no_grad():
            acts, _ = run_forward(spec, params, torch.from_numpy(ours), [spec.head_logits, *layers])
        scores = class_scores(spec, params, acts).double().numpy()
        expected, got = {}, {}
        output = np.asarray(fetched[canonical.output_name], np.float64).reshape(len(theirs), -1)
        if imported.softmax:
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            expected[PROBABILITIES], got[PROBABILITIES] = output, shifted / shifted.sum(axis=1, keepdims=True)
            if SCORES in probes:
                expected[SCORES] = np.asarray(fetched[probes[SCORES]], np.float64).reshape(len(theirs), -1)
                got[SCORES] = scores
        else:
            expected[SCORES], got[SCORES] = output, scores
        for layer in layers:
            original = np.asarray(fetched[probes[layer]])
            layout = imported.aliases[probes[layer]][1]
            if layout == "NHWC":
                original = original.transpose(0, 3, 1, 2)
            expected[layer] = original.reshape(len(theirs), -1)
            got[layer] = acts[layer].numpy().reshape(len(theirs), -1)
        reports.append(compare(f"rebuilt forward vs original {canonical.path.name} (onnxruntime), {label}",
                               got, expected, SOURCE_BOUNDS))
        log(f"  compared with the original on {label}")
    return reports
