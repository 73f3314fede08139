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


def min_queries(t: int, p: float, confidence: float) -> int:
    """Smallest n with P(X <= t) <= 1 - confidence for X ~ B(n, 1 - p)."""
    q, alpha = 1 - Fraction(str(p)), 1 - Fraction(str(confidence))
    lo = hi = t + 1  # the CDF falls as n grows: bracket, then bisect
    while binom_cdf(t, hi, q) > alpha:
        lo, hi = hi + 1, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if binom_cdf(t, mid, q) > alpha else (lo, mid)
    return lo


def max_overlatency(n: int, p: float, confidence: float) -> int:
    """Largest t with P(X <= t) <= 1 - confidence for X ~ B(n, 1 - p)."""
    q, alpha = 1 - Fraction(str(p)), 1 - Fraction(str(confidence))
    cdf, t = _pmf(0, n, q), 0
    while t + 1 < n:
        nxt = cdf + _pmf(t + 1, n, q)
        if nxt > alpha:
            break
        cdf, t = nxt, t + 1
    return t
