"""Classification scoring: top-k accuracy, per-class recall and precision, the confusion matrix
and calibration. Shared by every classification workload; vectorised numpy throughout."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ECE_BINS = 15
# A class's recall on fewer samples than this moves by a tenth or more when one sample changes:
# such classes stay in the full tables (accuracy.json, robustness.json) but are never named the
# worst class, nor listed among the worst in a report.
MIN_SUPPORT = 10


@dataclass(frozen=True)
class ClassificationScores:
    top1: float
    top5: float | None
    per_class: list[dict[str, Any]]  # {"class", "support", "recall", "precision"}
    confusion: np.ndarray  # [true, predicted] counts
    ece: float
    count: int

    def worst_class(self, min_support: int = MIN_SUPPORT) -> dict[str, Any] | None:
        """The class of lowest recall among those with at least `min_support` samples (None
        when no class has that many)."""
        worst = worst_classes(self.per_class, 1, min_support)
        return worst[0] if worst else None


def worst_classes(per_class: list[dict[str, Any]], n: int, min_support: int = MIN_SUPPORT
                  ) -> list[dict[str, Any]]:
    """The `n` classes of lowest recall (then lowest index) among those with at least
    `min_support` samples."""
    seen = [c for c in per_class if c["support"] >= max(min_support, 1)]
    return sorted(seen, key=lambda c: (c["recall"], c["class"]))[:n]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """Top-1 ECE with equal-width confidence bins: sum over bins of |B|/n * |acc(B) - conf(B)|."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    # Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 joins bin 0.
    b = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    acc = np.bincount(b, weights=correct, minlength=bins)
    cs = np.bincount(b, weights=conf, minlength=bins)
    return float(np.abs(acc - cs).sum() / max(len(labels), 1))


def score_classification(logits: np.ndarray, labels: np.ndarray, num_classes: int,
                         probabilities: bool = False) -> ClassificationScores:
    """`logits` (n, num_classes) in label order; `labels` (n,) ints in [0, num_classes). With
    `probabilities`, the scores are probabilities already: calibration reads them as given."""
    labels = np.asarray(labels, dtype=np.int64)
    pred = logits.argmax(axis=1)
    n = len(labels)
    top1 = float((pred == labels).mean()) if n else 0.0
    top5 = None
    if num_classes > 5:
        k5 = np.argpartition(-logits, 5, axis=1)[:, :5]
        top5 = float((k5 == labels[:, None]).any(axis=1).mean()) if n else 0.0
    confusion = np.bincount(labels * num_classes + pred, minlength=num_classes ** 2)
    confusion = confusion.reshape(num_classes, num_classes)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    hits = np.diag(confusion)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
        precision = np.where(predicted > 0, hits / np.maximum(predicted, 1), np.nan)
    per_class = [{"class": c, "support": int(support[c]),
                  "recall": None if np.isnan(recall[c]) else float(recall[c]),
                  "precision": None if np.isnan(precision[c]) else float(precision[c])}
                 for c in range(num_classes)]
    probs = logits.astype(np.float64) if probabilities else softmax(logits)
    ece = expected_calibration_error(probs, labels) if n else 0.0
    return ClassificationScores(top1, top5, per_class, confusion, ece, n)
