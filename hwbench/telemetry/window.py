"""Cutting timelines to the measured window: energy from cumulative counters and from power
readings, and rates from any cumulative counter (CPU seconds as well as joules).

Times are ns on the load generator's clock; values are floats. A boundary that falls between two
readings takes the value linearly interpolated between them.
"""
from __future__ import annotations

import numpy as np

from hwbench.errors import NotBracketed


def clip(t: np.ndarray, v: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """The readings strictly inside [a, b], with interpolated points at a and b added."""
    if len(t) < 2 or t[0] > a or t[-1] < b:
        raise NotBracketed(f"{len(t)} readings from {_s(t, 0)} to {_s(t, -1)} do not cover "
                           "the measured window")
    inside = (t > a) & (t < b)
    tt = np.concatenate(([a], t[inside], [b])).astype(np.float64)
    vv = np.concatenate(([np.interp(a, t, v)], v[inside], [np.interp(b, t, v)]))
    return tt, vv


def _s(t: np.ndarray, i: int) -> str:
    return "-" if len(t) == 0 else f"{int(t[i])} ns"


def counter_delta(t: np.ndarray, v: np.ndarray, a: int, b: int) -> float:
    """Increase of a cumulative counter over [a, b]."""
    _, vv = clip(t, v, a, b)
    return float(vv[-1] - vv[0])


def counter_peak_rate(t: np.ndarray, v: np.ndarray, a: int, b: int) -> float:
    """The highest rate (per second) between consecutive points inside [a, b]."""
    tt, vv = clip(t, v, a, b)
    dt = np.diff(tt) / 1e9
    keep = dt > 0
    return float(np.max(np.diff(vv)[keep] / dt[keep])) if keep.any() else 0.0


def integral(t: np.ndarray, v: np.ndarray, a: int, b: int) -> float:
    """Trapezoidal integral over [a, b] of a quantity per second (watts -> joules)."""
    tt, vv = clip(t, v, a, b)
    return float(np.sum((vv[1:] + vv[:-1]) / 2 * np.diff(tt)) / 1e9)


def peak(t: np.ndarray, v: np.ndarray, a: int, b: int) -> float:
    """The highest reading inside [a, b] (interpolated edges included)."""
    return float(np.max(clip(t, v, a, b)[1]))


def inside(t: np.ndarray, v: np.ndarray, a: int, b: int) -> np.ndarray:
    """Readings taken inside [a, b]; the nearest one when none was."""
    mask = (t >= a) & (t <= b)
    if mask.any():
        return v[mask]
    return v[[int(np.argmin(np.abs(t - (a + b) // 2)))]] if len(t) else v[:0]


def readings_inside(t: np.ndarray, a: int, b: int) -> int:
    return int(((t >= a) & (t <= b)).sum())
