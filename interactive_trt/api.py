"""The Python API: what the commands do, called from a notebook or a service without shelling out.

    import interactive_trt

    model = interactive_trt.load("engines/vgg19_last_p2_both.onnx")     # ONNX Runtime, CPU
    result = model.run("cat.jpg")                      # or a PIL image, an HxWx3 uint8 array, a list
    result.features("pool5")                           # InterActive AVG vector of pool5
    result.gamma("pool5")                              # its weight map, H x W
    result.top_interactive                             # [(class index, name, score), ...]

    interactive_trt.extract_features({"train": "data/train"}, "engines/model.onnx", out="features")
    interactive_trt.evaluate_imagenet("engines/model.onnx", "val/", synsets_file="synset_words.txt")
    interactive_trt.evaluate_svm("features/train.npz", test="features/test.npz")

It runs on the same library code as `interactive-infer` (decoding, the paper's resize rule, batching
per resolution, the backends), so numbers agree with the command's to the bit. Importing this
module imports no torch; `export` needs the `export` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from interactive_trt.common.errors import ImageError, InterActiveError
from interactive_trt.contracts.manifest import Manifest
from interactive_trt.contracts.outputs import FEATURE_KINDS
from interactive_trt.common.extras import install


@dataclass
class ImageResult:
    """Every output of the model for one image, batch axis removed, by the graph's output names."""

    source: str
    size: tuple[int, int]  # the input resolution the image ran at
    outputs: dict[str, np.ndarray]
    top_original: list[tuple[int, str, float]] | None = None
    top_interactive: list[tuple[int, str, float]] | None = None

    def features(self, layer: str, kind: str = "interactive_avg") -> np.ndarray:
        """The pooled feature vector of `layer`: interactive_avg | interactive_max | orig_avg | orig_max."""
        if kind not in FEATURE_KINDS:
            raise InterActiveError(f"feature kind {kind!r}: expected one of {', '.join(FEATURE_KINDS)}")
        return self._output(f"{layer}.{kind}")

    def gamma(self, layer: str) -> np.ndarray:
        """The weight map gamma of `layer` as H x W ('imagenet' for the head's); channel mean if per channel."""
        return self._output(f"{layer}.gamma").mean(axis=0)

    def _output(self, name: str) -> np.ndarray:
        if name not in self.outputs:
            layers = sorted({key.split(".", 1)[0] for key in self.outputs})
            raise InterActiveError(f"this model has no output {name!r}; its layers are {', '.join(layers)}")
        return self.outputs[name]


class Model:
    """An exported model opened on one backend; close it (or use `with`) to free the backend."""

    def __init__(self, path, backend: str = "onnxruntime", device: str = "auto", labels: str | Path | None = None,
                 **backend_options):
        from interactive_trt.runtime.inference.job import class_labels
        from interactive_trt.runtime.inference.session import open_model, start_runner

        self.exported = open_model(Path(path))
        self.backend = backend
        self.labels = class_labels(self.exported, Path(labels) if labels else None)
        self.runner = start_runner(self.exported, backend, device, **backend_options)

    @property
    def manifest(self) -> Manifest:
        return self.exported.manifest

    @property
    def feature_layers(self) -> list[str]:
        names = self.manifest.output_names
        return [layer for layer in self.manifest.model.feature_layers if f"{layer}.orig_avg" in names]

    @property
    def output_names(self) -> list[str]:
        return list(self.manifest.output_names)

    def run(self, images, *, size: tuple[int, int] | None = None, batch_size: int = 4, topk: int = 5,
            workers: int = 2):
        """Runs one image or an iterable of them (paths, PIL images, HxWx3 or HxW uint8 arrays).

        Returns one ImageResult for one image, else a list in input order. Images are resized by the
        paper's rule (or to `size`) and batched per resolution. An image that cannot be read raises
        ImageError naming it, after the others have run.
        """
        from interactive_trt.runtime.inference.job import top_classes
        from interactive_trt.runtime.inference.pipeline import batched_inference

        single = _is_single(images)
        items = [_as_input(image, index) for index, image in enumerate([images] if single else images)]
        results: dict[int, ImageResult] = {}
        failures: list[str] = []

        def on_result(result) -> None:
            outputs = result.outputs
            record = ImageResult(source=str(result.item.path), size=tuple(result.size), outputs=outputs)
            if self.labels is not None:
                record.top_original = top_classes(np.asarray(outputs["imagenet.scores_orig"]), self.labels, topk)
                if "imagenet.scores_interactive" in outputs:
                    record.top_interactive = top_classes(np.asarray(outputs["imagenet.scores_interactive"]),
                                                         self.labels, topk)
            results[int(result.item.key)] = record

        batched_inference(self.runner, self.manifest.model, items, batch_size=batch_size, workers=workers,
                          size=size, on_result=on_result,
                          on_failure=lambda failure: failures.append(f"{failure.path}: {failure.reason}"))
        if failures:
            raise ImageError("; ".join(failures))
        ordered = [results[index] for index in range(len(items))]
        return ordered[0] if single else ordered

    def close(self) -> None:
        self.runner.deactivate()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_single(images) -> bool:
    return isinstance(images, (str, Path, np.ndarray)) or hasattr(images, "getbands")  # PIL.Image


def _as_input(image, index: int):
    from interactive_trt.common.imaging import to_rgb
    from interactive_trt.runtime.inference.inputs import ImageInput

    key = str(index)
    if isinstance(image, (str, Path)):
        return ImageInput(path=Path(image), key=key)
    if hasattr(image, "getbands"):
        return ImageInput(path=Path(f"<PIL image {index}>"), key=key, rgb=to_rgb(image))
    if isinstance(image, np.ndarray):
        array = image if image.ndim == 3 else (image[..., None].repeat(3, axis=2) if image.ndim == 2 else image)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
            raise ImageError(f"<array {index}>: expected H x W x 3 (or H x W) uint8 RGB, got "
                             f"{image.dtype} {tuple(image.shape)}")
        return ImageInput(path=Path(f"<array {index}>"), key=key, rgb=np.ascontiguousarray(array))
    raise ImageError(f"input {index}: a path, a PIL image or a uint8 array, not {type(image).__name__}")


def load(path, backend: str = "onnxruntime", device: str = "auto", labels: str | Path | None = None,
         **backend_options) -> Model:
    """Opens an exported model (.onnx, its .json manifest, or a folder holding one) on a backend.

    backend: onnxruntime | torch | tensorrt; device: auto | cpu | cuda. The model file is checked
    against its manifest first. `labels`: a synset-words file for class names in top-k.
    """
    return Model(path, backend=backend, device=device, labels=labels, **backend_options)


@dataclass
class Exported:
    onnx_path: Path
    manifest_path: Path
    manifest: Manifest


def export(model: str = "vgg19", weights: str | None = None, *, out: str | Path = "engines",
           verify_images: Iterable[str | Path] = (), log=None, **options) -> Exported:
    """Exports a built-in network with the InterActive graph, verified, as `interactive-export MODEL` does.

    options: config ('last' | 'next'), p, head ('features' | 'imagenet' | 'both'), seed, seed_scale,
    verify, precision ('fp32' | 'fp16' | 'fp16-backward'), loss_scale, trt, buckets, max_batch (the command's options).
    model 'onnx' imports an ONNX file instead (`interactive-export onnx`): source=PATH, and optionally
    input_size=(H, W), preprocessing=Preprocessing(...), name, layers (ONNX tensor names).
    Raises VerificationError when the graph misses its bounds (the manifest records the reports).
    """
    try:
        from interactive_trt.exporter.onnx.export import export_model
        from interactive_trt.exporter.onnx.request import ExportRequest
    except ImportError as exc:
        from interactive_trt.common.errors import BackendUnavailable

        raise BackendUnavailable(f"export needs PyTorch ({exc.name} is missing): pip install torch==2.13.0 "
                                 f"(the CPU build), then {install('export')}") from None
    from interactive_trt.contracts.manifest import manifest_path_for

    request = ExportRequest(model=model, weights=weights, out=Path(out),
                            verify_images=tuple(Path(p) for p in verify_images), **options)
    onnx_path, manifest = export_model(request, log=log or (lambda message: None))
    return Exported(onnx_path=onnx_path, manifest_path=manifest_path_for(onnx_path), manifest=manifest)


def extract_features(splits, engine, out: str | Path = "features", *, events=None, **options):
    """Features of whole ImageFolder datasets, as `interactive-features` writes them: `<out>/<name>.npz`.

    splits: {name: folder}, or folders (each named after itself). options: synsets_file, backend,
    device, batch_size, workers, shard_size, ray, ray_address, ray_workers, overwrite (the command's
    options). Resumable like the command. Returns a FeatureSummary (per split: file, image count,
    failures); `events` (a runtime.features.job.FeatureEvents) sees progress.
    """
    from interactive_trt.runtime.features.job import FeatureEvents, FeatureOptions, named_splits
    from interactive_trt.runtime.features.job import extract_features as run

    return run(Path(engine), named_splits(splits), Path(out), FeatureOptions(**options), events or FeatureEvents())


def evaluate_imagenet(engine, val, *, out: str | Path = "eval-imagenet", events=None, **options):
    """The ImageNet protocol of `interactive-eval imagenet`: top-1/top-5 error of both heads.

    options: scales, flips, limit, synsets_file, ground_truth, devkit_meta, backend, device,
    batch_size, workers, overwrite, ray, ray_address, ray_workers (the command's options). Writes
    results.jsonl, report.json, report.md under `out`; resumable. Returns an ImagenetResult
    (`.summary` holds the errors, `.report` all of report.json).
    """
    from interactive_trt.runtime.evaluation.imagenet_job import EvaluationEvents, ImagenetOptions
    from interactive_trt.runtime.evaluation.imagenet_job import evaluate_imagenet as run

    return run(Path(engine), Path(val), ImagenetOptions(out=Path(out), **options), events or EvaluationEvents())


def evaluate_svm(features, *, out: str | Path = "eval-svm", events=None, **options):
    """The linear-SVM protocol of `interactive-eval svm` on feature files (Tables 1 and 2).

    options: test, train_per_class, dataset, c, seed. Writes table.md and table.json under `out`.
    Returns an SvmResult (`.rows`: one per layer and configuration, then all layers).
    """
    from interactive_trt.runtime.evaluation.svm_job import SvmEvents, SvmOptions, run_svm_protocol

    return run_svm_protocol(Path(features), SvmOptions(out=Path(out), **options), events or SvmEvents())
