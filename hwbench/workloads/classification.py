"""Scoring shared by every image-classification workload: outputs by sample index in, an
AccuracyReport against the reference labels out (top-1 judged against 99% of FP32, as MLPerf)."""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from hwbench.workloads.scoring import score_classification
from hwbench.errors import ModelError
from hwbench.workloads.base import AccuracyReport

TARGET_RATIO = 0.99  # as MLPerf: 99% of the FP32 reference accuracy


class Classifier:
    """Mixin for a Workload whose samples carry one class label each.

    The workload provides ``num_classes``, ``fp32_reference()`` (top-1 of the FP32 model) and
    ``labels()``; ``class_scores`` maps the model's raw output rows to scores over exactly
    ``num_classes`` classes in label order (the default accepts them as they are).
    """

    num_classes: ClassVar[int]

    def fp32_reference(self) -> float:
        raise NotImplementedError

    def class_scores(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[1] != self.num_classes:
            raise ModelError(f"the model gives {rows.shape[1]} outputs per sample; {self.name} "
                             f"needs {self.num_classes} class scores")
        return rows

    def score(self, outputs: dict[int, np.ndarray]) -> AccuracyReport:
        labels = self.labels()
        n = len(labels)
        missing = n - len(outputs)
        if missing:
            raise ModelError(f"{missing} reference sample(s) have no output: the accuracy pass "
                             "did not complete")
        rows = np.stack([np.asarray(outputs[i]).reshape(-1) for i in range(n)])
        scores = score_classification(self.class_scores(rows), labels, self.num_classes)
        reference = self.fp32_reference()
        target = TARGET_RATIO * reference
        details = {"count": scores.count, "ece": scores.ece, "per_class": scores.per_class,
                   "worst_class": scores.worst_class(), "confusion": scores.confusion.tolist()}
        if scores.top5 is not None:
            details["top5"] = scores.top5
        return AccuracyReport(metric="top1", value=scores.top1, reference=reference,
                              target=target, passed=scores.top1 >= target, details=details)
