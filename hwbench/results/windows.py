"""Server latency per time window: what a burst does to the tail, which one percentile over the
whole run averages away. Non-stationary arrivals (on-off, ramp, a trace) are judged here: a run
is valid only if every window holding enough queries to estimate the percentile meets the bound.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def _pct(sorted_ns: np.ndarray, p: float) -> float:
    """The load generator's percentile: the sorted value at floor(p * n) (ext/analysis.cc)."""
    n = len(sorted_ns)
    return float(sorted_ns[min(int(math.floor(p * n)), n - 1)])


def latency_windows(cols: dict[str, np.ndarray], window_s: float, bound_s: float,
                    percentile: float, judge: bool) -> dict[str, Any]:
    """Per window of scheduled arrival time: queries, p50, p99 and the run's percentile, in ms.
    A sample never completed counts as infinitely late. With ``judge``, each window with at
    least 1 / (1 - percentile) queries is judged against ``bound_s``."""
    issue, done = cols["issue_ns"], cols["complete_ns"]
    lat = np.where(done >= 0, done - issue, np.iinfo(np.int64).max).astype(np.int64)
    width = int(window_s * 1e9)
    slot = issue // width if len(issue) else np.zeros(0, np.int64)
    need = math.ceil(1.0 / (1.0 - percentile) - 1e-9)
    windows = []
    for k in range(int(slot.max()) + 1 if len(slot) else 0):
        w = np.sort(lat[slot == k])
        entry: dict[str, Any] = {"start_s": k * window_s, "end_s": (k + 1) * window_s,
                                 "queries": int(len(w)), "p50_ms": None, "p99_ms": None,
                                 "percentile_ms": None, "judged": False, "over_bound": None}
        if len(w):
            ms = [None if v >= np.iinfo(np.int64).max else v / 1e6
                  for v in (_pct(w, 0.5), _pct(w, 0.99), _pct(w, percentile))]
            entry.update(p50_ms=ms[0], p99_ms=ms[1], percentile_ms=ms[2])
            if judge and len(w) >= need:
                entry["judged"] = True
                entry["over_bound"] = bool(_pct(w, percentile) > bound_s * 1e9)
        windows.append(entry)
    return {"window_s": window_s, "percentile": percentile, "bound_ms": bound_s * 1e3,
            "judged": judge, "min_queries_judged": need, "windows": windows}


def invalid_reasons(section: dict[str, Any]) -> list[str]:
    """One reason per judged window over the bound."""
    p = f"p{section['percentile'] * 100:g}"
    out = []
    for w in section["windows"]:
        if w["over_bound"]:
            value = ("never completed" if w["percentile_ms"] is None
                     else f"{w['percentile_ms']:.3f} ms")
            out.append(f"window {w['start_s']:g}-{w['end_s']:g} s: {p} latency {value} exceeds "
                       f"the bound {section['bound_ms']:.3f} ms (non-stationary arrivals are "
                       "judged per window)")
    return out
