"""``hwbench report``: one self-contained HTML page about one run, for people who were not there.

Every section is shown only when its data exists; otherwise a line says why it is missing. Plots
are inline SVG, styles inline, no scripts: the page needs no network to be viewed.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.analysis import export, plots
from hwbench.analysis.export import Table
from hwbench.results.document import generative, status_line
from hwbench.results.drift import describe as describe_drift
from hwbench.results.summary import summary_table


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _missing(why: str) -> str:
    return f"<p class='note'>{html.escape(why)}</p>"


def _kv(rows: list[tuple[str, Any]]) -> str:
    return export.html_table(Table("", ("", ""), [list(r) for r in rows]))


def _latencies(run_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Completion time (s from the window's start) and latency (ms) of completed samples."""
    path = run_dir / "samples.npz"
    if not path.is_file():
        return None
    with np.load(path) as cols:
        issue, done = cols["issue_ns"], cols["complete_ns"]
    ok = done >= 0
    if not ok.any():
        return None
    return done[ok] / 1e9, (done[ok] - issue[ok]) / 1e6


def tokens(doc: dict[str, Any], run_dir: Path) -> str:
    """A generative run's token timing: TTFT and TPOT percentiles beside the request latency,
    and their distributions per request (samples.npz)."""
    m = doc.get("metrics") or {}
    if not m.get("ttft_ms"):
        return ""
    pcts = ("p50", "p90", "p99", "max")
    rows = [[name, *(m[key].get(p) for p in pcts)] for name, key in
            (("TTFT ms", "ttft_ms"), ("TPOT ms", "tpot_ms"), ("request latency ms", "latency_ms"))]
    body = export.html_table(Table("", ("", *pcts), rows))
    body += _kv([("tokens/s", m.get("tokens_per_second")),
                 ("output tokens", m.get("output_tokens")),
                 ("inter-token latency p99 ms", m.get("inter_token_p99_ms")),
                 ("longest stall ms", m.get("max_stall_ms")),
                 ("goodput (requests/s within both bounds)",
                  (m.get("goodput") or {}).get("requests_per_second"))])
    path = run_dir / "samples.npz"
    if path.is_file():
        with np.load(path) as cols:
            if "token_count" in cols:
                first, issue = cols["first_token_ns"], cols["issue_ns"]
                ok = first >= 0
                if ok.any():
                    body += plots.latency_distribution((first[ok] - issue[ok]) / 1e6)
    return _section("Token timing", body)


def summary(doc: dict[str, Any], run_dir: Path) -> str:
    text = html.escape(summary_table(doc, run_dir))
    return _section("Summary", f"<p><b>{html.escape(status_line(doc))}</b></p><pre>{text}</pre>")


def latency(run_dir: Path) -> str:
    data = _latencies(run_dir)
    if data is None:
        return _section("Latency", _missing("no per-sample times (samples.npz absent or empty)"))
    t_s, lat_ms = data
    body = ("<p class='note'>Per sample: completion time minus issue time, measured window "
            "only.</p>" + plots.latency_distribution(lat_ms) + plots.over_time(t_s, lat_ms))
    return _section("Latency and throughput", body)


def latency_windows(doc: dict[str, Any]) -> str:
    """Server's p50 and p99 per window of scheduled arrival time, with the bound: a burst
    shows as a peak, which the whole run's percentile averages away."""
    lw = doc.get("latency_windows")
    if not lw:
        return ""
    ws = [w for w in lw["windows"] if w["p50_ms"] is not None]
    if not ws:
        return _section("Latency per window", _missing("no window held a completed query"))
    mid = np.array([(w["start_s"] + w["end_s"]) / 2 for w in ws])
    cols = {"p50": np.array([w["p50_ms"] for w in ws], float),
            "p99": np.array([np.nan if w["p99_ms"] is None else w["p99_ms"] for w in ws], float),
            "bound": np.full(len(ws), lw["bound_ms"])}
    arr = lw.get("arrivals") or {}
    note = (f"<p class='note'>Arrivals: {html.escape(str(arr.get('kind', 'poisson')))}; "
            f"windows of {lw['window_s']:g} s by scheduled arrival"
            + ("; each window with enough queries is judged against the bound" if lw["judged"]
               else "") + ".</p>")
    return _section("Latency per window",
                    note + plots.series(mid, cols, "ms", f"latency per {lw['window_s']:g} s window"))


def drift(doc: dict[str, Any]) -> str:
    """A soak's windows: throughput (and latency, and answers' agreement) over the run, with the
    trend tests' verdicts."""
    d = doc.get("drift")
    if not d:
        return ""
    ws = d["windows"]
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in describe_drift(d))
    if not ws:
        return _section("Drift over the soak", lines)
    mid = np.array([(w["start_s"] + w["end_s"]) / 2 for w in ws])
    body = lines + plots.series(mid, {"samples/s": np.array([w["samples_per_second"]
                                                             for w in ws], float)},
                                "samples/s", f"throughput per {d['window_s']:g} s window")
    if all(w["p99_ms"] is not None for w in ws):
        body += plots.series(mid, {"p50": np.array([w["p50_ms"] for w in ws], float),
                                   "p99": np.array([w["p99_ms"] for w in ws], float)},
                             "ms", f"latency per {d['window_s']:g} s window")
    if all(w["agreement"] is not None for w in ws):
        body += plots.series(mid, {"agreement": np.array([w["agreement"] for w in ws], float)},
                             "fraction", "top-1 agreement with the accuracy pass per window")
    return _section("Drift over the soak", body)


def power(doc: dict[str, Any], run_dir: Path) -> str:
    sources = (doc.get("power") or {}).get("sources") or []
    rows = [[s.get("name"), s.get("kind"), s.get("available"), s.get("avg_w"), s.get("peak_w"),
             s.get("energy_per_query_j"), s.get("reason") or s.get("invalid_reason")]
            for s in sources]
    body = export.html_table(Table("Power sources", ("source", "kind", "available", "avg W",
                                                     "peak W", "J/query", "note"), rows)) if rows else ""
    timeline = _power_timeline(run_dir)
    body += timeline or _missing("no power telemetry: no telemetry.npz with power columns "
                                 "(no power sensor was read in this run)")
    return _section("Power", body)


def _power_timeline(run_dir: Path) -> str | None:
    """Plots telemetry.npz's power channels (`<source>.<channel>.watts` against `<source>.t_ns`;
    layout in results/README.md)."""
    path = run_dir / "telemetry.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            cols = {k: np.asarray(f[k], dtype=float) for k in f.files}
    except (OSError, ValueError):
        return None
    times, watts = {}, {}
    for key, values in cols.items():
        source, _, rest = key.partition(".")
        t = cols.get(f"{source}.t_ns")
        if rest.endswith(".watts") and t is not None and len(t) == len(values):
            channel = rest[:-len(".watts")]
            times[channel], watts[channel] = t / 1e9, values
    if not watts:
        return None
    return plots.series(times, watts, "W", "power over time")


def accuracy(doc: dict[str, Any], run_dir: Path) -> str:
    if generative(doc):
        return _section("Accuracy", _missing(
            "accuracy not applicable: a generative run's answers are validated by fidelity "
            f"against the FP32 reference ({'checked' if doc.get('fidelity') else 'not checked'}, "
            "see below)"))
    acc = doc.get("accuracy")
    if not acc:
        return _section("Accuracy", _missing(doc.get("accuracy_note") or "accuracy not measured"))
    body = _kv([("metric", acc["metric"]), ("value", acc["value"]),
                ("reference (FP32)", acc.get("reference")), ("target", acc.get("target")),
                ("result", "PASS" if acc.get("passed") else "FAIL"), ("samples", acc.get("count")),
                ("expected calibration error", acc.get("ece"))])
    per_class = acc.get("per_class") or []
    if per_class:
        rows = [[c.get("class"), c.get("support"), c.get("recall"), c.get("precision")]
                for c in per_class]
        body += export.html_table(Table("Per class", ("class", "support", "recall", "precision"),
                                        rows))
    full = run_dir / "accuracy.json"
    matrix = json.loads(full.read_text()).get("confusion") if full.is_file() else None
    body += plots.confusion(matrix) if matrix else _missing("no confusion matrix (accuracy.json "
                                                            "absent or without one)")
    return _section("Accuracy", body)


def robustness(doc: dict[str, Any]) -> str:
    rob = doc.get("robustness")
    if not rob:
        return _section("Robustness", _missing("robustness not measured in this run"))
    corr = rob.get("corruptions") or {}
    sev = sorted({s for levels in corr.values() for s in levels}, key=lambda s: int(s))
    rows = [[name, *(levels.get(s) for s in sev)] for name, levels in corr.items()]
    worst = rob.get("worst") or {}
    body = _kv([("clean accuracy", rob.get("clean_accuracy")),
                ("mean corruption accuracy", rob.get("mean_corruption_accuracy")),
                ("relative drop", rob.get("relative_drop")),
                ("worst", f"{worst.get('corruption')} severity {worst.get('severity')}: "
                          f"{worst.get('accuracy')}" if worst else None),
                ("samples / seed", f"{rob.get('samples')} / {rob.get('seed')}")])
    body += export.html_table(Table("Accuracy by corruption and severity",
                                    ("corruption", *[f"severity {s}" for s in sev]), rows))
    return _section("Robustness", body)


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flat(f"{prefix}.{k}" if prefix else k, v)]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [(prefix, json.dumps(value))]
    return [(prefix, ", ".join(map(str, value)) if isinstance(value, list) else value)]


def keyed(title: str, value: Any, why_missing: str) -> str:
    """A section that lists a result section's fields, or says why it is missing."""
    return _section(title, _kv(_flat("", value)) if value else _missing(why_missing))


def build(doc: dict[str, Any], run_dir: Path) -> str:
    title = f"hwbench report: {doc['workload']} / {doc['scenario']} / {doc['backend']}"
    parts = [
        f"<p>Run <code>{html.escape(doc['run_id'])}</code>, {html.escape(doc['created_utc'])}, "
        f"hwbench {html.escape(str(doc.get('hwbench_version')))}</p>",
        summary(doc, run_dir), tokens(doc, run_dir), latency(run_dir), latency_windows(doc),
        drift(doc),
        power(doc, run_dir),
        accuracy(doc, run_dir),
        keyed("Fidelity against the reference", doc.get("fidelity"), "fidelity not measured"),
        robustness(doc),
        keyed("Telemetry", doc.get("telemetry"), "no telemetry recorded in this run"),
        keyed("Repeats", doc.get("repeat"), "a single run: no repeat series"),
        keyed("System", doc.get("system"), "no system description"),
        keyed("Backend", doc.get("backend_info"), "no backend description"),
        keyed("Settings", (doc.get("settings") or {}), "no settings recorded"),
    ]
    return export.page(title, "".join(parts))
