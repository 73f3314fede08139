"""The `power` section of result.json: per channel figures over the measured window, and a total
over sources that do not overlap.

A channel whose source is unavailable, faulted, or whose readings cannot support a figure is
listed with the reason and null figures: a number is never invented.
"""
from __future__ import annotations

from typing import Any

from hwbench.errors import MeasurementError
from hwbench.telemetry import window
from hwbench.telemetry.base import Channel
from hwbench.telemetry.sampler import Track

# A counter refreshed less than this many times over the window is too coarse to report.
MIN_COUNTER_UPDATES = 10
_FIGURES = ("avg_w", "peak_w", "energy_j", "energy_per_sample_j", "energy_per_query_j",
            "samples_per_s_per_w")


def unavailable(name: str, kind: str, reason: str, requested: bool) -> dict[str, Any]:
    return {"name": name, "kind": kind, "available": False, "reason": reason, "method": None,
            "expected_error": None, **dict.fromkeys(_FIGURES), "valid": False,
            "invalid_reason": None, "requested": requested}


def _entry(ch: Channel, requested: bool) -> dict[str, Any]:
    return {"name": ch.name, "kind": ch.kind, "available": True, "reason": None,
            "method": ch.method, "expected_error": ch.expected_error,
            **dict.fromkeys(_FIGURES), "valid": False, "invalid_reason": None,
            "requested": requested, "role": ch.role}


def _energy(ch: Channel, t, v, a: int, b: int, window_s: float) -> tuple[float, float, str]:
    """(energy J, peak W, note on the error at this window's length)."""
    if ch.counter:
        note = ""
        if ch.update_period_s:
            if window_s < MIN_COUNTER_UPDATES * ch.update_period_s:
                raise MeasurementError(f"the {window_s:.3f} s window is shorter than "
                                 f"{MIN_COUNTER_UPDATES} refreshes of the counter "
                                 f"({ch.update_period_s:g} s): lengthen the run (--duration)")
            note = (f"; one refresh at each edge is up to "
                    f"{200 * ch.update_period_s / window_s:.1f}% of this window")
        return (window.counter_delta(t, v, a, b), window.counter_peak_rate(t, v, a, b), note)
    if window.readings_inside(t, a, b) < 2:
        raise MeasurementError(f"fewer than 2 readings inside the {window_s:.3f} s window: raise "
                         "--telemetry-hz or lengthen the run")
    return window.integral(t, v, a, b), window.peak(t, v, a, b), ""


def channel_results(track: Track, a: int, b: int, metrics: dict[str, Any]) -> list[dict]:
    t, rows = track.arrays()
    out = []
    for i, ch in enumerate(track.layout.channels):
        e = _entry(ch, track.requested)
        out.append(e)
        if track.fault is not None:
            e["invalid_reason"] = f"{track.source.name}: {track.fault}"
            continue
        try:
            energy, peak_w, note = _energy(ch, t, rows[:, i], a, b, (b - a) / 1e9)
        except MeasurementError as exc:  # NotBracketed included
            e["invalid_reason"] = str(exc)
            continue
        e.update(_figures(energy, (b - a) / 1e9, metrics), peak_w=peak_w, valid=True)
        e["expected_error"] += note
    return out


def _figures(energy_j: float, window_s: float, metrics: dict[str, Any]) -> dict[str, Any]:
    samples, queries = metrics["completed_samples"], metrics["completed_queries"]
    avg_w = energy_j / window_s
    return {"energy_j": energy_j, "avg_w": avg_w,
            "energy_per_sample_j": energy_j / samples if samples else None,
            "energy_per_query_j": energy_j / queries if queries else None,
            "samples_per_s_per_w": metrics["samples_per_second"] / avg_w if avg_w > 0 else None}


def total(entries: list[dict], window_s: float, metrics: dict[str, Any]) -> tuple[dict | None, str]:
    """A wall analyzer alone, else a whole-board rail alone, else the sum of the components
    (CPU packages + DRAM + GPUs); never two readings of the same watts."""
    usable = [e for e in entries if e["available"] and e["role"] != "part"]
    for tier in (("whole", "wall"), ("whole", "board"), ("component", None)):
        group = [e for e in usable if e["role"] == tier[0] and tier[1] in (None, e["kind"])]
        if not group:
            continue
        bad = [e["name"] for e in group if not e["valid"]]
        if bad:
            return None, f"no total: {', '.join(bad)} has no valid figure"
        chosen = group[:1] if tier[0] == "whole" else group
        energy = sum(e["energy_j"] for e in chosen)
        names = [e["name"] for e in chosen]
        return {"sources": names, **_figures(energy, window_s, metrics)}, f"total of {' + '.join(names)}"
    return None, "no total: no power source measured"


def requested_failures(section: dict[str, Any] | None) -> list[str]:
    """Invalid reasons for the run: sources the user asked for that gave no valid figure."""
    return [f"power source {e['name']} was asked for but has no valid figure: "
            f"{e['invalid_reason'] or e['reason']}"
            for e in (section or {}).get("sources", []) if e["requested"] and not e["valid"]]
