"""Drift: does a system get worse as it runs (heat, memory growth, a leaking cache)?

A long run (``--soak-minutes``) is cut into windows of completion time (``--window-s``). Per
window: samples completed per second, the p50 and p99 latency of the samples completed in it
(not in Offline, whose samples were all issued at its start), and the agreement of their top-1
outputs with the accuracy pass's for the same samples (with ``--mode both`` and a backend that
computes). Each series is judged by a one-sided Mann-Kendall trend test in its worse direction
(throughput and agreement falling, latency rising), with Sen's slope for the size of the change.

The stated false-alarm rate: a steady run is flagged with probability at most ``FALSE_ALARM``
(1%), over all its series together (Bonferroni: each of k series is tested at 1% / k). A trend
must also be large enough to matter: over the run it moves the series by at least
``MIN_CHANGE`` of its median (5%), or agreement by ``MIN_AGREEMENT_DROP`` (1 point), so that a
long run's tiny but significant slope is not a finding. Mann-Kendall assumes independent windows;
windows of a few seconds over thousands of samples are close to that, and the effect-size floor
keeps what residual correlation there is from raising the false alarms.

``history`` applies the same test across the runs of one setup (``runs_trend``).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

FALSE_ALARM = 0.01
MIN_CHANGE = 0.05
MIN_AGREEMENT_DROP = 0.01
MIN_WINDOWS = 8            # fewer windows judge nothing
MIN_SAMPLES_PER_WINDOW = 20  # a window with fewer completions is left out of the latency series


def mann_kendall(values: Sequence[float]) -> dict[str, float]:
    """Mann-Kendall's S, its variance with the tie correction, the continuity-corrected z, the
    one-sided p-values of a rising and of a falling trend, and Sen's slope (per step)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n < 3:
        raise ValueError("a trend needs three values or more")
    diff = x[None, :] - x[:, None]
    upper = np.triu_indices(n, 1)
    s = float(np.sign(diff[upper]).sum())
    _, counts = np.unique(x, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float(np.sum(counts * (counts - 1) * (2 * counts + 5))))
    var /= 18.0
    z = 0.0 if var <= 0 or s == 0 else (s - math.copysign(1.0, s)) / math.sqrt(var)
    j, i = upper[1], upper[0]
    slope = float(np.median(diff[upper] / (j - i)))
    return {"n": n, "s": s, "z": z, "p_rising": _upper_tail(z), "p_falling": _upper_tail(-z),
            "sen_slope": slope}


def _upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def judge_series(name: str, values: Sequence[float], worse: str, alpha: float) -> dict[str, Any]:
    """One series' verdict: flagged when its trend in the ``worse`` direction ("rising" or
    "falling") is significant at ``alpha`` and large enough to matter."""
    mk = mann_kendall(values)
    med = float(np.median(values))
    change = mk["sen_slope"] * (mk["n"] - 1)  # what the trend moves the series by over the run
    if name == "agreement":
        big = -change >= MIN_AGREEMENT_DROP
        relative = None
    else:
        relative = change / med if med else None
        big = relative is not None and (relative >= MIN_CHANGE if worse == "rising"
                                        else -relative >= MIN_CHANGE)
    p = mk["p_rising"] if worse == "rising" else mk["p_falling"]
    return {"series": name, "worse": worse, "windows": mk["n"], "mann_kendall_s": mk["s"],
            "z": mk["z"], "p": p, "alpha": alpha, "sen_slope_per_window": mk["sen_slope"],
            "change_over_run": change, "relative_change": relative,
            "flagged": bool(p < alpha and big)}


def windows(cols: dict[str, np.ndarray], window_s: float, offline: bool) -> list[dict[str, Any]]:
    """Per window of completion time: completed samples, samples per second, p50/p99 latency
    (ms; not in Offline) and top-1 agreement (where ``cols`` has an ``agrees`` column: 1, 0, or
    -1 where unknown). The last, partial window is dropped: its rate would be understated."""
    done = cols["complete_ns"]
    ok = done >= 0
    done, issue = done[ok], cols["issue_ns"][ok]
    agrees = cols["agrees"][ok] if "agrees" in cols else None
    width = int(window_s * 1e9)
    if not len(done):
        return []
    full = int(done.max() // width)  # windows wholly inside the run
    slot = done // width
    out = []
    for k in range(full):
        sel = slot == k
        n = int(sel.sum())
        entry: dict[str, Any] = {"start_s": k * window_s, "end_s": (k + 1) * window_s,
                                 "completed": n, "samples_per_second": n / window_s,
                                 "p50_ms": None, "p99_ms": None, "agreement": None}
        if n and not offline:
            lat = np.sort(done[sel] - issue[sel])
            entry["p50_ms"] = float(lat[min(int(0.5 * n), n - 1)]) / 1e6
            entry["p99_ms"] = float(lat[min(int(0.99 * n), n - 1)]) / 1e6
        if agrees is not None:
            known = agrees[sel]
            known = known[known >= 0]
            if len(known):
                entry["agreement"] = float(known.mean())
        out.append(entry)
    return out


def analyse(cols: dict[str, np.ndarray], window_s: float, offline: bool,
            agreement_note: str | None = None) -> dict[str, Any]:
    """The result's ``drift`` section: the windows, each series' trend test, and the verdict."""
    ws = windows(cols, window_s, offline)
    series: list[tuple[str, list[float], str]] = []
    if ws:
        series.append(("samples_per_second", [w["samples_per_second"] for w in ws], "falling"))
        if not offline:
            full = [w for w in ws if w["completed"] >= MIN_SAMPLES_PER_WINDOW]
            if len(full) == len(ws):
                series.append(("p50_ms", [w["p50_ms"] for w in ws], "rising"))
                series.append(("p99_ms", [w["p99_ms"] for w in ws], "rising"))
        if all(w["agreement"] is not None for w in ws):
            series.append(("agreement", [w["agreement"] for w in ws], "falling"))
    section: dict[str, Any] = {
        "window_s": window_s, "basis": "completion time", "false_alarm_rate": FALSE_ALARM,
        "min_change": MIN_CHANGE, "min_agreement_drop": MIN_AGREEMENT_DROP,
        "windows": ws, "tests": [], "flagged": None, "note": None}
    notes = []
    if "agrees" not in cols:
        notes.append(agreement_note or "top-1 agreement not measured")
    if len(ws) < MIN_WINDOWS:
        notes.append(f"{len(ws)} full windows of {window_s:g} s: a trend needs {MIN_WINDOWS} "
                     "(a longer --soak-minutes or a shorter --window-s)")
    else:
        alpha = FALSE_ALARM / len(series)
        section["tests"] = [judge_series(name, values, worse, alpha)
                            for name, values, worse in series]
        section["flagged"] = any(t["flagged"] for t in section["tests"])
    section["note"] = "; ".join(notes) or None
    return section


def describe(section: dict[str, Any] | None) -> list[str]:
    """Summary lines: the drifting series, or that none drifted, or why none was judged."""
    if not section:
        return []
    if section["flagged"] is None:
        return [f"drift: not judged ({section['note']})"]
    found = [t for t in section["tests"] if t["flagged"]]
    if not found:
        names = ", ".join(t["series"] for t in section["tests"])
        return [f"drift: none over {len(section['windows'])} windows of "
                f"{section['window_s']:g} s ({names}; Mann-Kendall, false-alarm rate "
                f"{section['false_alarm_rate']:.0%})"]
    lines = []
    for t in found:
        how = (f"{t['change_over_run']:+.3f}" if t["relative_change"] is None
               else f"{t['relative_change']:+.1%}")
        lines.append(f"DRIFT: {t['series']} {t['worse']} {how} over the run "
                     f"(Mann-Kendall p={t['p']:.2g} < {t['alpha']:.2g})")
    return lines


def runs_trend(values: Sequence[float], higher_better: bool) -> dict[str, Any] | None:
    """``history``'s drift between runs of one setup: the headline over the runs (oldest first),
    judged as one series at FALSE_ALARM. None with fewer than MIN_WINDOWS runs."""
    if len(values) < MIN_WINDOWS:
        return None
    return judge_series("headline", values, "falling" if higher_better else "rising",
                        FALSE_ALARM)
