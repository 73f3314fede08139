"""A deliberately simple Python reference for the load generator's statistics, in exact
rational arithmetic. The compiled analysis must agree with it (differential test)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def percentile(sorted_values: np.ndarray, p: float) -> float:
    n = len(sorted_values)
    return float(sorted_values[min(int(math.floor(p * n)), n - 1)])


def _pmf(k: int, n: int, q: Fraction) -> Fraction:
    return math.comb(n, k) * q**k * (1 - q) ** (n - k)


def binom_cdf(t: int, n: int, q: Fraction) -> Fraction:
    return sum((_pmf(k, n, q) for k in range(t + 1)), Fraction(0))


def find_min_passing(t: int, p: float, confidence: float) -> int:
    """MLPerf LoadGen's h(t): the fewest extra queries h with P(B(h + t, 1 - p) <= t) < 1 - c."""
    q, alpha = 1 - Fraction(str(p)), 1 - Fraction(str(confidence))
    lo, hi = 0, 1  # the CDF falls as h grows: bracket, then bisect
    while binom_cdf(t, hi + t, q) >= alpha:
        lo, hi = hi + 1, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if binom_cdf(t, mid + t, q) >= alpha else (lo, mid)
    return lo


def min_queries(t: int, p: float, confidence: float) -> int:
    """h(t) + t: the fewest queries at which t queries over the bound still pass."""
    return find_min_passing(t, p, confidence) + t


def single_stream_estimate(sorted_latencies: np.ndarray, p: float, confidence: float):
    """MLPerf's SingleStream/MultiStream early-stopping estimate, following its loop literally:
    None when there are too few queries, else the t-th largest latency."""
    n = len(sorted_latencies)
    if n < find_min_passing(1, p, confidence) + 1:
        return None
    t = 1
    for i in range(2, n + 1):
        if n < find_min_passing(i, p, confidence) + i:
            t = i - 1
            break
    return float(sorted_latencies[n - t])


def server_passes(n: int, overlatency: int, p: float, confidence: float) -> bool:
    """MLPerf's Server early-stopping check: n >= h(t) + t, t the count over the bound."""
    return n >= find_min_passing(overlatency, p, confidence) + overlatency
