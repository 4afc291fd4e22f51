"""The paper's classification protocol (section 4, Tables 1 and 2): l2-normalised features, a
linear SVM (scikit-learn's LinearSVC is LIBLINEAR) with C = 10, N training images per class.

Each row of Table 1 is one layer in one configuration; Table 2 concatenates the nine layers
(6848 dimensions for VGG-19), each l2-normalised first so that no layer dominates by its scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from interactive_trt.common.errors import InterActiveError

from interactive_trt.runtime.features.store import FeatureSet
from interactive_trt.common.extras import install

CONFIGURATIONS = (("Orig. AVG", "orig_avg"), ("Orig. MAX", "orig_max"),
                  ("InterActive AVG", "interactive_avg"), ("InterActive MAX", "interactive_max"))
# images per class for training in the paper's datasets (section 4)
TRAIN_PER_CLASS = {"caltech256": 60, "indoor67": 80, "sun397": 50, "pet37": 100, "flower102": 20, "bird200": 30}


@dataclass
class Split:
    train: np.ndarray
    test: np.ndarray
    skipped_classes: list[tuple[str, int]]  # (class, images) with too few images for train + test


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def per_class_split(labels: np.ndarray, classes: list[str], per_class: int, seed: int) -> Split:
    """`per_class` seeded-random training images of every class, the rest for test; a class with no
    image left for test is skipped and listed."""
    rng = np.random.default_rng(seed)
    train, test, skipped = [], [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) <= per_class:
            skipped.append((classes[label] if label < len(classes) else str(label), int(len(members))))
            continue
        chosen = rng.permutation(members)
        train.append(chosen[:per_class])
        test.append(chosen[per_class:])
    if len(train) < 2:
        raise InterActiveError(f"fewer than two classes have more than {per_class} images; "
                               f"lower --train-per-class")
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(test)), skipped)


def subsample_per_class(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """At most `per_class` seeded-random rows of each class (a given training split, thinned)."""
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(labels == label))[:per_class] for label in np.unique(labels)]
    return np.sort(np.concatenate(rows))


def layers_of(features: FeatureSet) -> list[str]:
    layers = []
    for name in features.arrays:
        layer = name.rsplit(".", 1)[0]
        if layer not in layers:
            layers.append(layer)
    order = features.meta.get("feature_layers")
    return [layer for layer in order if layer in layers] if order else layers


def matrix(features: FeatureSet, layers: list[str], kind: str) -> np.ndarray:
    """l2-normalised per layer; several layers are concatenated, then normalised again."""
    blocks = [l2_normalise(features.arrays[f"{layer}.{kind}"]) for layer in layers]
    return blocks[0] if len(blocks) == 1 else l2_normalise(np.concatenate(blocks, axis=1))


def fit_and_score(x_train, y_train, x_test, y_test, c: float, seed: int) -> dict:
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.svm import LinearSVC
    except ImportError:
        raise InterActiveError(f"the SVM protocol needs scikit-learn: {install('eval')}") from None

    classifier = LinearSVC(C=c, max_iter=20000, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        classifier.fit(x_train, y_train)
    predicted = classifier.predict(x_test)
    correct = predicted == y_test
    per_class = [float(correct[y_test == label].mean()) for label in np.unique(y_test)]
    return {"accuracy": float(correct.mean()), "mean_class_accuracy": float(np.mean(per_class)),
            "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught)}


def available_kinds(features: FeatureSet, layers: list[str]) -> list[tuple[str, str]]:
    return [(title, kind) for title, kind in CONFIGURATIONS
            if all(f"{layer}.{kind}" in features.arrays for layer in layers)]


def evaluate(train: FeatureSet, test: FeatureSet, train_rows: np.ndarray, test_rows: np.ndarray,
             c: float = 10.0, seed: int = 0, on_row=lambda row: None) -> list[dict]:
    layers = layers_of(train)
    if layers_of(test) != layers:
        raise InterActiveError(f"{train.path} and {test.path} hold different layers")
    kinds = available_kinds(train, layers)
    if not kinds:
        raise InterActiveError(f"{train.path}: no pooled features in it")
    y_train, y_test = train.labels[train_rows], test.labels[test_rows]
    rows = []
    groups = [([layer], layer) for layer in layers] + [(layers, "all layers")]
    for group, title in groups:
        for config_title, kind in kinds:
            x_train = matrix(train, group, kind)[train_rows]
            x_test = matrix(test, group, kind)[test_rows]
            scores = fit_and_score(x_train, y_train, x_test, y_test, c, seed)
            row = {"layer": title, "configuration": config_title, "dimensions": int(x_train.shape[1]),
                   "train": int(len(train_rows)), "test": int(len(test_rows)), **scores}
            rows.append(row)
            on_row(row)
    return rows


def markdown_table(rows: list[dict], provenance: dict) -> str:
    lines = ["# Linear SVM on InterActive features (paper Tables 1 and 2)", ""]
    lines += [f"- {name}: {value}" for name, value in provenance.items()]
    lines += ["", "| layer | configuration | dims | accuracy | mean class accuracy |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        flag = "" if row["converged"] else " (not converged)"
        lines.append(f"| {row['layer']} | {row['configuration']} | {row['dimensions']} | "
                     f"{100 * row['accuracy']:.2f}%{flag} | {100 * row['mean_class_accuracy']:.2f}% |")
    return "\n".join(lines) + "\n"
