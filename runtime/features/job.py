"""`interactive-features` as a library function: ImageFolder splits in, one feature file per split out.

The command and the Python API call this one function; how progress is shown is the caller's,
through `FeatureEvents`. Each split is resumable (finished images sit in atomic shards until the
split is assembled), in one process or on a Ray cluster: both write the same shards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from interactive_trt.common.errors import InterActiveError
from interactive_trt.runtime.evaluation.datasets import Dataset, Skip, image_folder, read_synsets
from interactive_trt.runtime.features.extract import extract_into
from interactive_trt.runtime.features.store import FeatureStore, is_feature_output
from interactive_trt.runtime.inference.inputs import Failure
from interactive_trt.runtime.inference.session import open_model, provenance, start_runner
from interactive_trt.runtime.inference.writers import write_failures


class FeatureEvents:
    """Hooks a caller overrides to show progress; every default does nothing."""

    def started(self, info: dict) -> None:
        """The model's provenance, before any split."""

    def skipped(self, split: str, skip: Skip) -> None:
        """A file or folder of the split that holds no usable image (listed, not an error)."""

    def split_started(self, split: str, total: int, done: int) -> None:
        """`done` of the split's `total` images are in shards of an earlier run already."""

    def advanced(self) -> None:
        """One more image of the current split finished."""

    def failure(self, failure: Failure) -> None:
        pass

    def split_finished(self, result: "SplitResult") -> None:
        pass


@dataclass
class FeatureOptions:
    synsets_file: Path | None = None  # class list for the labels; default: sorted class folders
    backend: str = "onnxruntime"
    device: str = "auto"
    precision: str = "exported"  # or a reduced precision the backend offers (OpenVINO's bf16)
    batch_size: int = 4
    workers: int = 2  # decoding threads (single process)
    shard_size: int = 64
    ray: bool = False
    ray_address: str | None = None
    ray_workers: int = 2  # model replicas on the cluster
    overwrite: bool = False


@dataclass
class SplitResult:
    name: str
    path: Path  # <out>/<split>.npz
    images: int = 0  # images in the written file (0 when it was complete already)
    complete_already: bool = False
    failures: list[Failure] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


@dataclass
class FeatureSummary:
    info: dict
    splits: list[SplitResult] = field(default_factory=list)

    @property
    def failures(self) -> list[Failure]:
        return [failure for split in self.splits for failure in split.failures]


def valid_split_name(name: str) -> bool:
    """A split names its files (`<name>.npz`, `<name>.parts/`): letters, digits, - and _ only."""
    return bool(name) and name.replace("-", "").replace("_", "").isalnum()


def named_splits(splits) -> list[tuple[str, Path]]:
    """{name: folder}, or folders named after themselves, as [(name, folder)] (the Python API's forms)."""
    pairs = ([(str(name), Path(folder)) for name, folder in splits.items()] if hasattr(splits, "items")
             else [(Path(folder).name or "all", Path(folder)) for folder in
                   ([splits] if isinstance(splits, (str, Path)) else splits)])
    for name, folder in pairs:
        if not valid_split_name(name):
            raise InterActiveError(f"split {name!r} ({folder}): a split name may hold letters, digits, - and _ only")
    return pairs


def extract_features(engine: Path, splits: list[tuple[str, Path]], out: Path, options: FeatureOptions = FeatureOptions(),
                     events: FeatureEvents = FeatureEvents()) -> FeatureSummary:
    """Writes `<out>/<name>.npz` for every (name, ImageFolder) split; returns what was done.

    Everything that can be refused (duplicate split names, a model without feature outputs, a
    dataset that cannot give labels, a backend that cannot load the model) is refused before the
    first image. Splits finished earlier are left alone; interrupted ones resume.
    """
    out = Path(out)
    names = [name for name, _ in splits]
    if len(set(names)) != len(names):
        raise InterActiveError(f"two splits share a name ({', '.join(names)}); name them with NAME=DIR")
    model = open_model(Path(engine))
    manifest = model.manifest
    if not any(is_feature_output(name) for name in manifest.output_names):
        raise InterActiveError(f"{model.onnx_path}: no feature outputs; export with --head features (or both)")
    synsets = read_synsets(options.synsets_file) if options.synsets_file else None
    datasets = [(name, image_folder(Path(folder), synsets)) for name, folder in splits]
    # a model the backend cannot load is refused here, not inside a Ray worker half-way through
    runner = start_runner(model, options.backend, "cpu" if options.ray else options.device,
                          batch_size=options.batch_size, precision=options.precision)
    if options.ray:
        runner.deactivate()
        runner = None
    summary = FeatureSummary(provenance(model, options.backend, options.precision))
    events.started(summary.info)
    try:
        for name, dataset in datasets:
            result = _extract_split(model, runner, name, dataset, out, options, events, summary.info)
            summary.splits.append(result)
            events.split_finished(result)
    finally:
        if runner is not None:
            runner.deactivate()
    return summary


def _extract_split(model, runner, name: str, dataset: Dataset, out: Path, options: FeatureOptions, events: FeatureEvents,
                   info: dict) -> SplitResult:
    manifest = model.manifest
    header = {"onnx_sha256": manifest.onnx_sha256, "split": name, "root": str(dataset.root.resolve()),
              "classes": dataset.classes}
    store = FeatureStore(out, name, header, overwrite=options.overwrite)
    result = SplitResult(name, store.final, skips=list(dataset.skips))
    if store.is_complete():
        result.complete_already = True
        return result
    for skip in dataset.skips:
        events.skipped(name, skip)
    done = store.done()
    todo = [image for image in dataset.images if image.item.key not in done]
    events.split_started(name, len(dataset.images), len(dataset.images) - len(todo))

    def on_done(key: str) -> None:
        events.advanced()

    def on_failure(failure: Failure) -> None:
        result.failures.append(failure)
        events.failure(failure)
        events.advanced()

    if todo and options.ray:
        from interactive_trt.runtime.features.ray_scaleout import extract_on_ray

        extract_on_ray(model, options.backend, options.device, todo, store, address=options.ray_address,
                       replicas=options.ray_workers, shard_size=options.shard_size, batch_size=options.batch_size,
                       precision=options.precision,
                       on_done=on_done, on_failure=on_failure)
    elif todo:
        extract_into(runner, manifest.model, todo, store.writer(options.shard_size), batch_size=options.batch_size,
                     workers=options.workers, on_done=on_done, on_failure=on_failure)
    meta = {**info, "scale_out": f"ray ({options.ray_workers} replicas)" if options.ray else "single process",
            "feature_layers": list(manifest.model.feature_layers),
            "skipped": [vars(s) for s in dataset.skips], "failures": [vars(f) for f in result.failures]}
    result.images = store.assemble([(image.item.key, str(image.item.path)) for image in dataset.images], meta)
    write_failures(out / f"{name}.failures.tsv", result.failures)
    return result
