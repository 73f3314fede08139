"""Scoring shared by every image-classification workload: outputs by sample index in, an
AccuracyReport against the reference labels out, top-1 (or top-5) judged against a fraction
(99%, as MLPerf) of the reference accuracy.

The reference belongs to the model at hand: the official model's published FP32 figure, one the
user declared, or else the same model's FP32 accuracy on the same samples, computed by the FP32
reference session (``Workload.accuracy_reference``; docs/accuracy.md, "Which reference").
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from hwbench.workloads.scoring import MIN_SUPPORT, ClassificationScores, score_classification
from hwbench.errors import ModelError
from hwbench.workloads.base import AccuracyReference, AccuracyReport

TARGET_RATIO = 0.99  # as MLPerf: 99% of the FP32 reference accuracy
TOP_K = 5  # classes a classifier's post-processing returns per sample


class Classifier:
    """Mixin for a Workload whose samples carry one class label each.

    The workload provides ``num_classes`` and ``labels()``, and may override
    ``accuracy_reference()`` (a known reference; the default None has the run measure the
    model's FP32 accuracy), ``metric``, ``target_ratio`` and ``probabilities``. ``class_scores`` maps the model's
    raw output rows to scores over exactly ``num_classes`` classes in label order (the default
    accepts them as they are).
    """

    num_classes: ClassVar[int]
    probabilities: ClassVar[bool] = False  # class_scores gives probabilities (calibration as is)
    metric: ClassVar[str] = "top1"
    target_ratio: ClassVar[float] = TARGET_RATIO

    def class_scores(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[1] != self.num_classes:
            raise ModelError(f"the model gives {rows.shape[1]} outputs per sample; {self.name} "
                             f"needs {self.num_classes} class scores")
        return rows

    def class_names(self) -> tuple[str, ...] | None:
        """Each class's name in label order (folder names, a names file), or None when the
        reference set does not name its classes."""
        return None

    def postprocess(self, outputs: np.ndarray) -> np.ndarray:
        """The top-k classes of each output row (k = 5, or every class when there are fewer),
        best first: int64 ``(N, k)``."""
        scores = self.class_scores(np.asarray(outputs).reshape(len(outputs), -1))
        k = min(TOP_K, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1).astype(np.int64)

    def _scores(self, outputs: dict[int, np.ndarray]) -> ClassificationScores:
        labels = self.labels()
        n = len(labels)
        missing = n - len(outputs)
        if missing:
            raise ModelError(f"{missing} reference sample(s) have no output: the accuracy pass "
                             "did not complete")
        rows = np.stack([np.asarray(outputs[i]).reshape(-1) for i in range(n)])
        return score_classification(self.class_scores(rows), labels, self.num_classes,
                                    probabilities=self.probabilities)

    def _metric(self, scores: ClassificationScores) -> float:
        return scores.top5 if self.metric == "top5" else scores.top1

    def accuracy_value(self, outputs: dict[int, np.ndarray]) -> float:
        return self._metric(self._scores(outputs))

    def score(self, outputs: dict[int, np.ndarray],
              reference: AccuracyReference | None = None) -> AccuracyReport:
        reference = reference or self.accuracy_reference()
        if reference is None:
            raise ValueError(f"{self.name}: score needs the measured FP32 reference accuracy")
        scores = self._scores(outputs)
        value = self._metric(scores)
        target = self.target_ratio * reference.value
        per_class = scores.per_class
        names = self.class_names()
        if names is not None and len(names) == len(per_class):
            per_class = [{**c, "name": name} for c, name in zip(per_class, names)]
        worst = scores.worst_class()
        if worst is not None and names is not None and len(names) == len(per_class):
            worst = {**worst, "name": names[worst["class"]]}
        details = {"reference_source": reference.source, "target_ratio": self.target_ratio,
                   "count": scores.count, "ece": scores.ece,
                   "per_class": per_class, "worst_class": worst,
                   "worst_class_min_support": MIN_SUPPORT,
                   "confusion": scores.confusion.tolist()}
        if self.metric != "top1":
            details["top1"] = scores.top1
        if scores.top5 is not None:
            details["top5"] = scores.top5
        return AccuracyReport(metric=self.metric, value=value, reference=reference.value,
                              target=target, passed=value >= target, details=details)
