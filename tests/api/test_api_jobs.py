"""The Python API's whole-dataset jobs: features, the ImageNet protocol and the SVM protocol, called
from Python as the commands call them (progress through an events object, a summary back)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import interactive_trt
from interactive_trt.common.errors import InterActiveError
from interactive_trt.runtime.evaluation.imagenet_job import EvaluationEvents
from interactive_trt.runtime.features.job import FeatureEvents
from interactive_trt.runtime.features.store import load_features

SYNSETS = [f"n{index:08d}" for index in range(1000)]


@pytest.fixture(scope="module")
def folder(photos, tmp_path_factory):
    """Three classes (photos), three 256x256 crops each, in ImageFolder layout under synset names."""
    root = tmp_path_factory.mktemp("api-jobs-data") / "shots"
    for label, name in enumerate(("chelsea", "astronaut", "coffee")):
        (root / SYNSETS[label]).mkdir(parents=True)
        rgb = photos[name]
        for index in range(3):
            crop = rgb[20 * index:20 * index + 256, 30 * index:30 * index + 256]
            Image.fromarray(np.ascontiguousarray(crop)).save(root / SYNSETS[label] / f"{name}_{index}.png")
    return root


class CountingFeatures(FeatureEvents):
    def __init__(self):
        self.calls = []

    def advanced(self):
        self.calls.append("advanced")


class CountingScores(EvaluationEvents):
    def __init__(self):
        self.calls = []

    def scored(self, record, running):
        self.calls.append(record["key"])


@pytest.fixture(scope="module")
def features(exported, folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("api-features")
    events = CountingFeatures()
    summary = interactive_trt.extract_features({"train": folder}, exported.onnx_path, out=out, shard_size=4,
                                               events=events)
    return out, summary, events


def test_extract_features_writes_the_commands_file(features, exported, folder):
    out, summary, events = features
    (split,) = summary.splits
    assert (split.name, split.path, split.images, split.failures) == ("train", out / "train.npz", 9, [])
    assert events.calls == ["advanced"] * 9
    stored = load_features(out / "train.npz")
    assert stored.classes == SYNSETS[:3] and stored.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    with interactive_trt.load(exported.onnx_path) as model:
        direct = model.run(folder / stored.keys[4])
    np.testing.assert_allclose(stored.arrays["pool5.interactive_max"][4], direct.features("pool5", "interactive_max"),
                               rtol=1e-5, atol=1e-6)
    again = interactive_trt.extract_features([folder], exported.onnx_path, out=out / "other", shard_size=4)
    assert again.splits[0].name == "shots" and again.splits[0].images == 9
    with pytest.raises(InterActiveError, match="a split name may hold letters, digits"):
        interactive_trt.extract_features({"a b": folder}, exported.onnx_path, out=out)


def test_evaluate_svm_returns_the_table_rows(features, tmp_path):
    out, _, _ = features
    result = interactive_trt.evaluate_svm(out / "train.npz", train_per_class=1, out=tmp_path)
    assert [row["layer"] for row in result.rows[::4]][-1] == "all layers"
    assert all(row["train"] == 3 and row["test"] == 6 for row in result.rows)
    assert json.loads((tmp_path / "table.json").read_text())["rows"] == result.rows


def test_evaluate_imagenet_reports_and_resumes(exported, folder, tmp_path):
    words = tmp_path / "synsets.txt"
    words.write_text("".join(f"{s} class {i}\n" for i, s in enumerate(SYNSETS)))
    events = CountingScores()
    result = interactive_trt.evaluate_imagenet(exported.onnx_path, folder, synsets_file=words, scales=[224],
                                               flips=False, limit=4, out=tmp_path / "eval", events=events)
    assert (result.done_before, result.scored, result.summary["images"]) == (0, 4, 4)
    assert len(events.calls) == 4
    assert json.loads((tmp_path / "eval" / "report.json").read_text()) == result.report
    again = interactive_trt.evaluate_imagenet(exported.onnx_path, folder, synsets_file=words, scales=[224],
                                              flips=False, limit=4, out=tmp_path / "eval")
    assert (again.done_before, again.scored) == (4, 0) and again.summary == result.summary
    with pytest.raises(InterActiveError, match="earlier results were made with different flips"):
        interactive_trt.evaluate_imagenet(exported.onnx_path, folder, synsets_file=words, scales=[224],
                                          out=tmp_path / "eval")
