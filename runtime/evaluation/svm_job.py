"""`interactive-eval svm` as a library function: feature files in, the Table 1 / Table 2 rows out.

The command and the Python API call this one function; each row is handed to `SvmEvents` as soon
as its classifier is scored (the whole table takes minutes on the paper's datasets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interactive_trt.common.errors import InterActiveError
from interactive_trt.contracts.manifest import atomic_write_bytes, atomic_write_json
from interactive_trt.runtime.evaluation.svm import (TRAIN_PER_CLASS, evaluate, markdown_table, per_class_split,
                                                    subsample_per_class)
from interactive_trt.runtime.features.store import load_features


class SvmEvents:
    """Hooks a caller overrides to show progress; every default does nothing."""

    def skipped_class(self, name: str, images: int, needed: int) -> None:
        """A class with too few images to leave any for test once `needed` are taken for training."""

    def started(self, info: dict) -> None:
        """The features' provenance and the split, before the first classifier."""

    def row(self, row: dict) -> None:
        """One layer x configuration scored."""


@dataclass
class SvmOptions:
    test: Path | None = None  # a separate test split's feature file
    train_per_class: int | None = None
    dataset: str | None = None  # take train_per_class from the paper (TRAIN_PER_CLASS)
    c: float = 10.0
    seed: int = 0
    out: Path = Path("eval-svm")


@dataclass
class SvmResult:
    info: dict
    rows: list[dict]
    skipped_classes: list[tuple[str, int]] = field(default_factory=list)
    out: Path = Path("eval-svm")

    @property
    def converged(self) -> bool:
        return all(row["converged"] for row in self.rows)


def run_svm_protocol(features: Path, options: SvmOptions = SvmOptions(), events: SvmEvents = SvmEvents()) -> SvmResult:
    """Linear-SVM accuracy per layer and configuration, plus all layers concatenated; writes
    `table.md` and `table.json` under options.out."""
    features, train_per_class = Path(features), options.train_per_class
    if options.dataset is not None:
        if options.dataset.lower() not in TRAIN_PER_CLASS:
            raise InterActiveError(f"--dataset {options.dataset}: unknown; known: {', '.join(TRAIN_PER_CLASS)}")
        train_per_class = train_per_class or TRAIN_PER_CLASS[options.dataset.lower()]
    test = Path(options.test) if options.test is not None else None
    train_set = load_features(features)
    test_set = load_features(test) if test else train_set
    if test is not None and test_set.classes != train_set.classes:
        raise InterActiveError(f"{test}: its classes differ from those of {features}")
    if test is None:
        if train_per_class is None:
            raise InterActiveError("one feature file needs --train-per-class N (or --dataset NAME) to split it; "
                                   "or pass --test FILE")
        split = per_class_split(train_set.labels, train_set.classes, train_per_class, options.seed)
        train_rows, test_rows, skipped = split.train, split.test, split.skipped_classes
    else:
        skipped = []
        if train_per_class is not None:
            train_rows = subsample_per_class(train_set.labels, train_per_class, options.seed)
        else:
            train_rows = np.arange(len(train_set.labels))
        test_rows = np.arange(len(test_set.labels))
    for name, count in skipped:
        events.skipped_class(name, count, train_per_class)
    meta = train_set.meta
    info = {"features": str(features), "test": str(test) if test else f"rest of {features.name}",
            "engine": meta.get("engine"), "onnx_sha256": meta.get("onnx_sha256"),
            "weights_sha256": meta.get("weights_sha256"), "config": meta.get("config"), "p": meta.get("p"),
            "C": options.c, "train_per_class": train_per_class, "seed": options.seed,
            "train_images": int(len(train_rows)), "test_images": int(len(test_rows)),
            "classes": int(len(np.unique(train_set.labels[train_rows])))}
    events.started(dict(info))
    rows = evaluate(train_set, test_set, train_rows, test_rows, c=options.c, seed=options.seed, on_row=events.row)
    out = Path(options.out)
    atomic_write_json(out / "table.json", {"provenance": info, "rows": rows, "skipped_classes": [list(s) for s in skipped]})
    atomic_write_bytes(out / "table.md", markdown_table(rows, info).encode())
    return SvmResult(info, rows, list(skipped), out)
