"""Summary-table rows for the `power` and `telemetry` sections (no numpy: read-only use)."""
from __future__ import annotations

from typing import Any


def _source_line(e: dict[str, Any]) -> str:
    if not e["available"]:
        return f"unavailable: {e['reason']}"
    if not e["valid"]:
        return f"invalid: {e['invalid_reason']}"
    per = e["energy_per_sample_j"]
    eff = e["samples_per_s_per_w"]
    return (f"{e['avg_w']:.2f} W avg, {e['peak_w']:.2f} W peak, {e['energy_j']:.3f} J"
            + (f", {per:.4g} J/sample" if per is not None else "")
            + (f", {eff:,.4g} samples/s/W" if eff is not None else ""))


def power_rows(p: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not p:
        return []
    rows = [(f"power {e['name']}", _source_line(e)) for e in p["sources"]]
    t = p["total"]
    if t is not None:
        # No sample completed in the window (Ctrl-C right after it opened) leaves the
        # per-sample energy None; the table must still print, as result.json is already written.
        per = t.get("energy_per_sample_j")
        rows.append(("power total", f"{t['avg_w']:.2f} W avg, {t['energy_j']:.3f} J"
                                    + (f", {per:.4g} J/sample" if per is not None else "")
                                    + f" ({' + '.join(t['sources'])})"))
    else:
        rows.append(("power total", p.get("total_note") or "none"))
    return rows


def telemetry_rows(t: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not t:
        return []
    rows = []
    cpu, own = t.get("cpu_util_pct"), t.get("process_cpu_pct_of_core")
    if cpu:
        process = f" (process: {own['mean']:.1f}% of one core)" if own else ""
        rows.append(("CPU utilisation", f"{cpu['mean']:.1f}% mean, {cpu['max']:.1f}% max"
                                        + process))
    if t.get("peak_rss_bytes") is not None:
        rows.append(("peak RSS", f"{t['peak_rss_bytes'] / 2**20:,.1f} MiB"))
    for g in t.get("gpus") or []:
        rows.append((f"GPU {g['index']}", f"{g['util_pct_mean']:.0f}% busy, "
                     f"{g['mem_used_bytes_max'] / 2**30:.2f} GiB, {g['sm_clock_mhz_mean']:.0f} MHz "
                     f"SM, {g['temp_c_max']:.0f} C max"))
    throttled = t.get("throttled")
    rows.append(("throttled", "unknown (no GPU clock-event reasons)" if throttled is None
                 else f"yes: {', '.join(t['throttle_reasons'])}" if throttled else "no"))
    if t.get("overhead_pct_of_core") is not None:
        rows.append(("telemetry overhead", f"{t['overhead_pct_of_core']:.2f}% of one core at "
                                           f"{t['sample_rate_hz']:g} Hz"))
    return rows
