"""``hwbench history``: one configuration's runs over time, with regressions flagged.

The rule: a run regressed when, against the runs of the same configuration before it (at least
MIN_EARLIER of them),
- performance: its headline metric is worse than every earlier run's AND worse than their median
  by more than 3 robust standard deviations (1.4826 x the median absolute deviation) AND by more
  than MIN_CHANGE of it: ordinary run-to-run noise is not flagged, nor is a change too small to
  matter when a few earlier runs happened to agree closely;
- accuracy: its accuracy is below every earlier run's, or it failed where all earlier ones passed;
- drift: the headline over this run and every earlier valid one (at least MIN_DRIFT_RUNS) trends
  the worse way by a one-sided Mann-Kendall test at a 1% false-alarm rate, moving it by at least
  5% of its median over the runs (hwbench.results.drift): a slow decline that no single run
  shows as a regression (a filling disk, a driver update, a fan wearing out).
An invalid run (interrupted, a backend fault, a failed check) is not judged: its figures do not
describe the configuration, so it is marked and never makes the command exit 1.
"""
from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from hwbench.analysis.export import Table
from hwbench.results import drift
from hwbench.tables import format_value

MIN_EARLIER = 3
MIN_CHANGE = 0.02  # relative to the earlier median
INVALID = "(invalid: not judged)"
HEADERS = ("created (UTC)", "run id", "valid", "headline", "samples/s", "p99 ms", "accuracy",
           "flag")
# A generative workload's history (llm): tokens/s and the p99 token latencies; accuracy is not
# applicable to it.
LLM_HEADERS = ("created (UTC)", "run id", "valid", "headline", "tokens/s", "TTFT p99 ms",
               "TPOT p99 ms", "flag")


def _perf_regressed(value: float, earlier: list[float], higher_better: bool) -> bool:
    med = statistics.median(earlier)
    mad = statistics.median(abs(v - med) for v in earlier)
    worse = (med - value) if higher_better else (value - med)
    beyond_all = value < min(earlier) if higher_better else value > max(earlier)
    return beyond_all and worse > max(3 * 1.4826 * mad, MIN_CHANGE * abs(med))


def _acc_regressed(row: dict[str, Any], earlier: list[dict[str, Any]]) -> bool:
    values = [r["accuracy_value"] for r in earlier if r["accuracy_value"] is not None]
    if row["accuracy_value"] is not None and values and row["accuracy_value"] < min(values):
        return True
    passed = [r["accuracy_passed"] for r in earlier if r["accuracy_passed"] is not None]
    return row["accuracy_passed"] == 0 and bool(passed) and all(passed)


def flags(rows: list[dict[str, Any]]) -> list[str]:
    """A flag per row (oldest first): '' or the regressions found, or why none could be judged."""
    out = []
    for i, row in enumerate(rows):
        if not row["valid"]:
            out.append(INVALID)
            continue
        earlier = [r for r in rows[:i] if r["valid"]]
        if len(earlier) < MIN_EARLIER:
            out.append(f"(needs {MIN_EARLIER} earlier valid runs to judge)")
            continue
        found = []
        higher = not (row["metric_name"] or "").endswith("_latency_ms")
        perf = [r["metric_value"] for r in earlier if r["metric_value"] is not None]
        if row["metric_value"] is not None and _perf_regressed(row["metric_value"], perf, higher):
            found.append("PERFORMANCE REGRESSION")
        if _acc_regressed(row, earlier):
            found.append("ACCURACY REGRESSION")
        if row["metric_value"] is not None:
            trend = drift.runs_trend([*perf, row["metric_value"]], higher)
            if trend is not None and trend["flagged"]:
                found.append("PERFORMANCE DRIFT")
        out.append(", ".join(found))
    return out


def build(rows: list[dict[str, Any]]) -> Table:
    """The table of one configuration's runs, oldest first, from index rows."""
    marks = flags(rows)
    tokens = any(r.get("ttft_p99_ms") is not None for r in rows)

    def figures(r: dict[str, Any]) -> list[Any]:
        if tokens:
            return [r.get("tokens_per_second"), r.get("ttft_p99_ms"), r.get("tpot_p99_ms")]
        return [r["samples_per_second"], r["p99_ms"], r["accuracy_value"]]

    body = [[r["created_utc"], r["run_id"], bool(r["valid"]),
             f"{r['metric_name']} {format_value(r['metric_value'])}"
             if r["metric_value"] is not None else None, *figures(r), mark]
            for r, mark in zip(rows, marks)]
    first = rows[0]
    title = (f"History: {first['workload']} / {first['scenario']} / {first['backend']} on "
             f"{first['hostname']} (configuration {first['setup_hash']})")
    notes = ["rule: a run regressed when it is worse than every earlier valid run of this "
             "configuration and worse than their median by more than 3 robust standard deviations "
             f"and {MIN_CHANGE:.0%} (performance), or its accuracy is below every earlier run's "
             f"(accuracy); drift: the headline over {drift.MIN_WINDOWS} or more valid runs "
             "trends worse (Mann-Kendall, 1% false alarms, at least 5% over the runs)"]
    if any("REGRESSION" in m for m in marks[-1:]):
        notes.append("the latest run regressed")
    if any("DRIFT" in m for m in marks[-1:]):
        notes.append("the runs up to the latest drift the worse way")
    return Table(title, LLM_HEADERS if tokens else HEADERS, body, notes)


def page(rows: list[dict[str, Any]], table: Table) -> str:
    """The history as a self-contained page: the headline over the runs, then the table."""
    from hwbench.analysis import export, plots
    values = [np.nan if r["metric_value"] is None else r["metric_value"] for r in rows]
    plot = plots.series(np.arange(1, len(rows) + 1), {rows[-1]["metric_name"] or "headline":
                        np.array(values, dtype=float)}, rows[-1]["metric_name"] or "",
                        "headline metric over runs", xlabel="run (oldest first)")
    return export.page(table.title, plot + export.html_table(table))
