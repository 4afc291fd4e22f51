"""The comparison every verification makes (exporter/onnx/verify.py), on classifiers of every width."""

from __future__ import annotations

import numpy as np
import pytest

from interactive_trt.exporter.onnx.verification import REDUCED_BOUNDS
from interactive_trt.exporter.onnx.verify import compare, topk_agreement


def test_a_classifier_with_fewer_than_five_classes_has_its_top_k_of_all_of_them():
    """A two-class classifier's top-5 is its two classes: the reduced bounds' top-5 overlap (0.8) counted 2
    of 5 and failed every bf16 and fp16 verification of such a network, whatever its scores (PaddleOCR's
    direction classifier, with its strides made square)."""
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((4, 2)).astype(np.float32)
    candidate = reference + np.float32(1e-4) * rng.standard_normal((4, 2)).astype(np.float32)
    assert topk_agreement(candidate, reference) == (1.0, 1.0)
    report = compare("bf16", {"imagenet.scores_orig": candidate}, {"imagenet.scores_orig": reference}, REDUCED_BOUNDS)
    assert report.passed, report.summary()
    assert topk_agreement(reference[:, ::-1], reference) == (0.0, 1.0)
    scores = rng.standard_normal((3, 1000)).astype(np.float32)
    shuffled = scores.copy()
    order = np.argsort(-scores, axis=1)
    for row, top in zip(shuffled, order):  # the 2nd to 5th classes fall out of the top 5, the 1st stays
        row[top[1:5]] = scores.min() - 1
    assert topk_agreement(shuffled, scores) == (1.0, pytest.approx(0.2))
