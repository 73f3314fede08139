"""Run-to-run statistics of a headline metric: spread, confidence intervals, ratios, noise.

Confidence intervals are Student-t intervals of the mean. Repeats are few (3 to 10), and each value
is already an aggregate of thousands of queries, so run-level values are close to normal; a
bootstrap from so few values would understate the spread. Fewer than 3 values give no CI.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

MIN_CI_RUNS = 3
# Two-sided 95% Student-t quantiles by degrees of freedom; beyond 30 the normal 1.96 is close.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def t95(df: float) -> float:
    """The 95% two-sided t quantile, rounded to the table's next smaller df (conservative)."""
    if df > 30:
        return 1.96
    return _T95[max(k for k in _T95 if k <= max(1.0, df))]


@dataclass(frozen=True)
class Spread:
    """The spread of one metric over repeated runs."""

    values: tuple[float, ...]
    median: float
    mean: float
    min: float
    max: float
    ci95: tuple[float, float] | None  # of the mean; None with fewer than MIN_CI_RUNS values
    cv: float | None  # sample standard deviation / mean

    @property
    def n(self) -> int:
        return len(self.values)


def spread(values: Sequence[float]) -> Spread:
    vals = tuple(float(v) for v in values)
    if not vals:
        raise ValueError("spread of no values")
    mean = statistics.fmean(vals)
    sd = statistics.stdev(vals) if len(vals) > 1 else None
    ci = None
    if sd is not None and len(vals) >= MIN_CI_RUNS:
        half = t95(len(vals) - 1) * sd / math.sqrt(len(vals))
        ci = (mean - half, mean + half)
    cv = sd / mean if sd is not None and mean else None
    return Spread(vals, statistics.median(vals), mean, min(vals), max(vals), ci, cv)


def ratio(num: Spread, den: Spread) -> tuple[float, tuple[float, float] | None]:
    """Ratio of means and its 95% CI (delta method on the log ratio, Welch's degrees of freedom).

    The CI exists only when both sides have at least MIN_CI_RUNS values.
    """
    r = num.mean / den.mean
    if num.n < MIN_CI_RUNS or den.n < MIN_CI_RUNS or not num.mean or not den.mean:
        return r, None
    va = (statistics.variance(num.values) / num.n) / num.mean ** 2
    vb = (statistics.variance(den.values) / den.n) / den.mean ** 2
    se = math.sqrt(va + vb)
    if se == 0:
        return r, (r, r)
    df = (va + vb) ** 2 / (va ** 2 / (num.n - 1) + vb ** 2 / (den.n - 1))
    half = t95(df) * se
    return r, (r * math.exp(-half), r * math.exp(half))


def within_noise(r: float, ci: tuple[float, float] | None, noise_cv: float | None) -> bool:
    """True when a claimed ratio `r` is not distinguishable from 1 by run-to-run noise.

    With a CI: it contains 1. Without one but with a known run-to-run CV (from repeats of either
    side): the difference is under twice that CV.
    """
    if ci is not None:
        return ci[0] <= 1.0 <= ci[1]
    if noise_cv is not None:
        return abs(r - 1.0) < 2 * noise_cv
    return False


def to_contract(s: Spread, metric: str, run_ids: Sequence[str], left_out: int = 0) -> dict:
    """The result document's ``repeat`` section; `left_out` counts the series' runs not in it."""
    return {"n": s.n, "metric": metric, "values": list(s.values), "median": s.median,
            "min": s.min, "max": s.max, "ci95": list(s.ci95) if s.ci95 else None,
            "cv": s.cv, "run_ids": list(run_ids), "left_out": left_out}
