"""The `telemetry` section of result.json: CPU load, peak memory, GPU state and throttling over
the measured window, and the timeline file's columns."""
from __future__ import annotations

from typing import Any

import numpy as np
import psutil

from hwbench.telemetry import window
from hwbench.telemetry.nvml import STATS as GPU_STATS, THROTTLE_BITS
from hwbench.telemetry.sampler import Track

TIMELINE_FILE = "telemetry.npz"
SYSTEM_COLUMN = "rss_bytes"  # a track with this column is the CPU/memory one


def _column(track: Track, name: str) -> tuple[np.ndarray, np.ndarray]:
    t, rows = track.arrays()
    return t, rows[:, track.layout.columns.index(name)]


def _rate_pct(track: Track, name: str, a: int, b: int, scale: float,
              cap: float | None = None) -> dict[str, float]:
    """Mean and peak of a cumulative seconds counter as a percentage of `scale` CPUs.

    The kernel counts CPU time in 10 ms ticks, so one 100 ms interval reads up to 10 points
    high per CPU; `cap` bounds both figures at what is physically possible."""
    t, v = _column(track, name)
    mean = window.counter_delta(t, v, a, b) / ((b - a) / 1e9) / scale * 100
    peak = window.counter_peak_rate(t, v, a, b) / scale * 100
    if cap is not None:
        mean, peak = min(mean, cap), min(peak, cap)
    return {"mean": mean, "max": peak}


def system_stats(track: Track, a: int, b: int) -> dict[str, Any]:
    t, rss = _column(track, "rss_bytes")
    return {"cpu_util_pct": _rate_pct(track, "cpu_busy_s", a, b, psutil.cpu_count() or 1, cap=100.0),
            "process_cpu_pct_of_core": _rate_pct(track, "process_cpu_s", a, b, 1.0),
            "peak_rss_bytes": int(np.max(window.inside(t, rss, a, b)))}


def gpu_stats(track: Track, a: int, b: int) -> tuple[list[dict], set[str]]:
    """Per GPU figures, and the throttle reasons seen in the window."""
    t, rows = track.arrays()
    cols, gpus, reasons = track.layout.columns, [], set()
    for i in range(track.layout.gpus):
        v = {s: window.inside(t, rows[:, cols.index(f"gpu{i}.{s}")], a, b) for s in GPU_STATS}
        bits = int(np.bitwise_or.reduce(v["throttle_bits"].astype(np.int64)))
        reasons |= {why for bit, why in THROTTLE_BITS.items() if bits & bit}
        gpus.append({"index": i, "util_pct_mean": float(v["util_pct"].mean()),
                     "mem_used_bytes_max": int(v["mem_used_bytes"].max()),
                     "sm_clock_mhz_mean": float(v["sm_clock_mhz"].mean()),
                     "temp_c_max": float(v["temp_c"].max())})
    return gpus, reasons


def timeline(tracks: list[Track], start_ns: int, window_ns: int) -> dict[str, np.ndarray]:
    """Every reading, times relative to the window's start: `<source>.t_ns`, `<source>.<column>`;
    and for each power channel `<source>.<channel>.watts`, watts at each reading (a counter's
    energy over the interval that ends there; NaN at the first reading), so that readers need not
    know which channels count joules."""
    out: dict[str, np.ndarray] = {"window_ns": np.array([0, window_ns], dtype=np.int64)}
    for track in tracks:
        t, rows = track.arrays()
        name = track.source.name
        out[f"{name}.t_ns"] = t - start_ns
        for i, col in enumerate(track.layout.columns):
            out[f"{name}.{col}"] = rows[:, i]
        for i, ch in enumerate(track.layout.channels):
            out[f"{name}.{ch.name}.watts"] = _watts(t, rows[:, i], ch.counter)
    return out


def _watts(t_ns: np.ndarray, values: np.ndarray, counter: bool) -> np.ndarray:
    if not counter:
        return values.copy()
    w = np.full(len(values), np.nan)
    dt = np.diff(t_ns) / 1e9
    with np.errstate(divide="ignore", invalid="ignore"):
        w[1:] = np.where(dt > 0, np.diff(values) / dt, np.nan)
    return w
