"""Agreement metrics and reports between a candidate (graph, ONNX Runtime, TensorRT) and the
autograd reference.

INTERACTIVE.md, "Numerics that bite": reordered arithmetic flips a few ReLU masks and pool arg-maxes,
so a few elements of gamma may differ a lot while the maps agree; we compare with cosine similarity
and relative L2 error per output, top-k agreement for class scores, and report every output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from interactive_trt.common.errors import VerificationError


@dataclass
class Bounds:
    """A tolerance per metric; None means 'report, do not enforce'."""

    min_cosine: float | None = 0.9999
    max_rel_l2: float | None = None
    # for outputs one spatial position can move (gamma maps, interactive max), when they get their own bound
    positional_min_cosine: float | None = None
    top1_agreement: float | None = 1.0
    top5_overlap: float | None = None


@dataclass
class OutputCheck:
    name: str
    cosine: float
    rel_l2: float
    max_abs: float
    zero_fraction: float
    reference_zero_fraction: float
    passed: bool
    top1_agreement: float | None = None
    top5_overlap: float | None = None
    zeroed_fraction: float = 0.0  # zero here, nonzero in the reference: underflow in reduced precision


@dataclass
class Report:
    label: str
    checks: list[OutputCheck] = field(default_factory=list)
    note: str = ""  # why it missed, where verification can tell (said with the error)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[OutputCheck]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict:
        return {"label": self.label, "passed": self.passed, "checks": [asdict(c) for c in self.checks]}

    def rows(self) -> list[list[str]]:
        rows = []
        for check in self.checks:
            top = "" if check.top1_agreement is None else f"{check.top1_agreement:.2f} / {check.top5_overlap:.2f}"
            rows.append([check.name, f"{check.cosine:.6f}", f"{check.rel_l2:.2e}", f"{check.max_abs:.2e}",
                         f"{100 * check.zeroed_fraction:.2f}%", top, "pass" if check.passed else "FAIL"])
        return rows

    def summary(self) -> str:
        """One line: pass or FAIL, and the output farthest from the reference (lowest cosine)."""
        if not self.checks:
            return f"{self.label}: no outputs compared"
        worst = min(self.checks, key=lambda check: (check.cosine, -check.rel_l2))
        verdict = "pass" if self.passed else f"FAIL ({len(self.failures)} of {len(self.checks)} outputs)"
        return (f"{self.label}: {verdict}; worst {worst.name}: cosine {worst.cosine:.6f}, "
                f"rel L2 {worst.rel_l2:.2e}")

    def raise_if_failed(self) -> None:
        if self.passed:
            return
        listing = "; ".join(f"{c.name} (cosine {c.cosine:.6f}, rel L2 {c.rel_l2:.2e})" for c in self.failures)
        note = f". {self.note}" if self.note else ""
        raise VerificationError(f"{self.label}: {len(self.failures)} output(s) missed their bound: {listing}{note}",
                                self)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def rel_l2(candidate: np.ndarray, reference: np.ndarray, magnitude: np.ndarray | None = None) -> float:
    """||candidate - reference|| / ||reference||, or / ||magnitude|| where the reference is a sum whose terms
    cancel and `magnitude` is the same sum of their absolute values (see `compare`)."""
    diff = np.linalg.norm((candidate.astype(np.float64) - reference.astype(np.float64)).ravel())
    scale = np.linalg.norm((reference if magnitude is None else magnitude).astype(np.float64).ravel())
    if scale == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / scale)


def topk_agreement(candidate: np.ndarray, reference: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Fraction of images with the same top-1 class, and mean overlap of the top-k sets; k is at most the
    number of classes (a two-class classifier's top-5 is its two classes, which always overlap wholly)."""
    k = min(k, candidate.shape[1])
    top_c = np.argsort(-candidate, axis=1)[:, :k]
    top_r = np.argsort(-reference, axis=1)[:, :k]
    top1 = float(np.mean(top_c[:, 0] == top_r[:, 0]))
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_c, top_r)]))
    return top1, overlap


def compare(label: str, candidate: dict, reference: dict, bounds: Bounds, magnitudes: dict | None = None) -> Report:
    """Every output of `reference` against `candidate`.

    `magnitudes` (AutogradReference.magnitudes): for an output that is a mean of signed terms (the
    InterActive average of a layer without a ReLU: linear bottlenecks, residual sums, SiLU's negative
    lobe), the mean of the terms' absolute values. Its relative L2 error is taken against that: the terms
    cancel, and float32's rounding of gamma, which any correct implementation carries (the autograd
    reference as much as ours), is amplified by the cancellation; against the terms it is not. Where no
    term cancels, the two scales are the same.
    """
    magnitudes = magnitudes or {}
    report = Report(label)
    for name, ref in reference.items():
        if name not in candidate:
            report.checks.append(OutputCheck(name, 0.0, float("inf"), float("inf"), 0.0, 0.0, False))
            continue
        ref = np.asarray(ref)
        got = np.asarray(candidate[name])
        if got.shape != ref.shape:
            report.checks.append(OutputCheck(name, 0.0, float("inf"), float("inf"), 0.0, 0.0, False))
            continue
        check = OutputCheck(
            name=name,
            cosine=cosine(got, ref),
            rel_l2=rel_l2(got, ref, magnitudes.get(name)),
            max_abs=float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0,
            zero_fraction=float(np.mean(got == 0)),
            reference_zero_fraction=float(np.mean(ref == 0)),
            zeroed_fraction=float(np.mean((got == 0) & (ref != 0))),
            passed=True,
        )
        positional = name.endswith(("gamma", "interactive_max")) and bounds.positional_min_cosine is not None
        min_cosine = bounds.positional_min_cosine if positional else bounds.min_cosine
        if min_cosine is not None and check.cosine < min_cosine:
            check.passed = False
        if bounds.max_rel_l2 is not None and check.rel_l2 > bounds.max_rel_l2:
            check.passed = False
        if name.startswith("imagenet.scores"):
            check.top1_agreement, check.top5_overlap = topk_agreement(got, ref)
            if bounds.top1_agreement is not None and check.top1_agreement < bounds.top1_agreement:
                check.passed = False
            if bounds.top5_overlap is not None and check.top5_overlap < bounds.top5_overlap:
                check.passed = False
        report.checks.append(check)
    return report


# Kinds of output, as docs/precision.md's fp16 table groups them, and how to tell them by name.
OUTPUT_KINDS = (
    ("feature averages", lambda name: name.endswith("_avg")),
    ("class scores", lambda name: name.startswith("imagenet.scores")),
    ("interactive max", lambda name: name.endswith("interactive_max")),
    ("gamma", lambda name: name.endswith("gamma")),
)


def lowest_cosines(reports: list[Report]) -> dict[str, dict]:
    """Per kind of output, the lowest cosine over all `reports` and the output that had it."""
    lowest: dict[str, dict] = {}
    for kind, matches in OUTPUT_KINDS:
        checks = [check for report in reports for check in report.checks if matches(check.name)]
        if checks:
            worst = min(checks, key=lambda check: check.cosine)
            lowest[kind] = {"cosine": worst.cosine, "output": worst.name}
    return lowest


def describe_lowest(lowest: dict[str, dict]) -> str:
    return ", ".join(f"{kind} {entry['cosine']:.5f} ({entry['output']})" for kind, entry in lowest.items())
