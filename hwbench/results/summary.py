"""Human summaries of a result: summary.txt in MLPerf's field names, and the terminal table."""
from __future__ import annotations

from typing import Any

from hwbench.results import drift, pipeline
from hwbench.results.document import correctness_validated, generative, status_line
from hwbench.quality.robustness import grid
from hwbench.tables import table
from hwbench.telemetry.rows import power_rows, telemetry_rows

_RULE = "=" * 48
_SCENARIO = {"single-stream": "SingleStream", "multi-stream": "MultiStream", "server": "Server",
             "offline": "Offline"}
_MODE = {"performance": "PerformanceOnly", "accuracy": "AccuracyOnly", "both": "AccuracyAndPerformance",
         "find-peak": "FindPeakPerformance"}
_PCT_FIELDS = (("p50", "50.00"), ("p90", "90.00"), ("p95", "95.00"), ("p97", "97.00"),
               ("p99", "99.00"), ("p99.9", "99.90"))


def _yes(v: Any) -> str:
    return "not recorded" if v is None else "Yes" if v else "No"


def summary_text(doc: dict[str, Any]) -> str:
    """The run's summary as MLPerf's ``mlperf_log_summary.txt`` lays it out, plus hwbench's."""
    m = doc.get("metrics") or {}
    info = doc.get("backend_info") or {}
    lines = [_RULE, "hwbench Results Summary", _RULE,
             f"SUT name : {doc['backend']} ({info.get('device', '?')}, {info.get('precision', '?')})",
             f"Workload : {doc['workload']}",
             f"Scenario : {_SCENARIO.get(doc['scenario'], doc['scenario'])}",
             f"Mode     : {_MODE.get(doc['mode'], doc['mode'])}"]
    if m:
        sm = m["scenario_metric"]
        lines.append(f"{_metric_label(sm['name'])} : {sm['value']:.6g}")
        lines += _server_headlines(m)
    # MLPerf's parsers read the first word; the rest says what was not validated.
    qualifier = ""
    if doc["valid"] and correctness_validated(doc) is not True:
        qualifier = (" (performance only: fidelity not checked)" if generative(doc)
                     else " (performance only: accuracy not validated)")
    lines.append(f"Result is : {'VALID' if doc['valid'] else 'INVALID'}{qualifier}")
    if m:
        lines += [f"  Min duration satisfied : {_yes(m['min_duration_met'])}",
                  f"  Min queries satisfied : {_yes(m['min_queries_met'])}",
                  f"  Early stopping satisfied: {_yes(m['early_stopping'].get('met'))}"]
    lines.append(f"Status : {status_line(doc)}")
    for reason in doc["invalid_reasons"]:
        lines.append(f" * {reason}")
    if doc.get("accuracy_note"):
        lines.append(f"Accuracy : {doc['accuracy_note']}")
    lines.append(f"Fidelity : {fidelity_line(doc)}")
    if m:
        done = m.get("completed_samples_per_second")  # Server: MLPerf's (n - 1) form
        done = m["samples_per_second"] if done is None else done
        lines += ["", _RULE, "Additional Stats", _RULE,
                  f"Completed samples per second    : {done:.2f}",
                  f"Completed queries per second    : {m['queries_per_second']:.2f}"]
        if m.get("scheduled_qps"):
            lines.append(f"Scheduled samples per second    : {m['scheduled_qps']:.2f}")
        lat = m["latency_ms"]
        lines += [f"Min latency (ns)                : {lat['min'] * 1e6:.0f}",
                  f"Max latency (ns)                : {lat['max'] * 1e6:.0f}",
                  f"Mean latency (ns)               : {lat['mean'] * 1e6:.0f}"]
        lines += [f"{label} percentile latency (ns)   : {lat[k] * 1e6:.0f}" for k, label in _PCT_FIELDS]
        es = m["early_stopping"]
        if es["latency_ms"] is not None:
            pct = f"{m['target_percentile'] * 100:.2f}"
            lines.append(f"Early stopping {pct} percentile estimate (ns) : {es['latency_ms'] * 1e6:.0f}")
        q = m.get("client_queueing")
        if q:
            lines.append(f"Client queueing p50 (ns)        : {q['p50_ms'] * 1e6:.0f}")
            # yes: samples waited for a free worker longer than their calls took, so more
            # --instances may lower latency (results/README.md, metrics.client_queueing)
            lines.append(f"Client-bound                    : {'yes' if q['client_bound'] else 'no'}")
        lines += _token_stats(m, doc)
    lines += ["", _RULE, "Test Parameters Used", _RULE]
    for k, v in (doc["settings"].get("loadgen") or {}).items():
        lines.append(f"{k} : {v}")
    lines.append(f"meets_mlperf_minimums : {doc['settings'].get('meets_mlperf_minimums')}")
    for s in doc["settings"].get("mlperf_shortfalls") or []:
        lines.append(f" * {s}")
    lines += _pipeline_lines(doc.get("pipeline"))
    if doc.get("robustness"):
        lines += ["", _RULE, grid(doc["robustness"])]
    return "\n".join(lines) + "\n"


def _token_stats(m: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    """MLPerf's LLM fields (TTFT and TPOT percentiles in ns, tokens per second) and the verdict
    on both token bounds; nothing for a run without token events."""
    if not m.get("ttft_ms"):
        return []
    out = [f"Tokens per second               : {m['tokens_per_second']:.2f}",
           f"Output tokens                   : {m['output_tokens']}"]
    for key, name in (("ttft_ms", "first token latency"), ("tpot_ms", "time per output token")):
        t = m[key]
        out += [f"Min {name} (ns)   : {t['min'] * 1e6:.0f}",
                f"Max {name} (ns)   : {t['max'] * 1e6:.0f}",
                f"Mean {name} (ns)  : {t['mean'] * 1e6:.0f}"]
        out += [f"{label} percentile {name} (ns) : {t[k] * 1e6:.0f}" for k, label in _PCT_FIELDS]
    out += [f"Inter-token latency p99 (ns)    : {m['inter_token_p99_ms'] * 1e6:.0f}",
            f"Longest stall in a response (ns): {m['max_stall_ms'] * 1e6:.0f}",
            f"Goodput (requests/s in bounds)  : {m['goodput']['requests_per_second']:.3f}"]
    out += token_verdict(m, doc)
    return out


def token_verdict(m: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    """One line per token bound: the percentile measured, the bound, and whether it held
    (judged in Server only, as MLPerf judges its LLM benchmarks)."""
    tb = m.get("token_bounds") or {}
    lg = (doc.get("settings") or {}).get("loadgen") or {}
    if not tb:
        return []
    pct = f"p{tb['percentile'] * 100:g}"
    judged = doc.get("scenario") == "server"
    out = []
    for key, name, bound_key in (("ttft", "TTFT", "ttft_bound_s"), ("tpot", "TPOT", "tpot_bound_s")):
        bound, value = lg.get(bound_key), tb[f"{key}_ms"]
        if not (judged and bound):
            verdict = "not judged (Server judges the token bounds)"
        elif tb[f"{key}_met"]:
            verdict = "met"
        elif value <= bound * 1e3:  # within the bound, but early stopping could not confirm it
            verdict = "NOT met (early stopping: see the reasons)"
        else:
            verdict = "NOT met"
        bound_words = f", bound {bound * 1e3:g} ms" if bound else ""
        out.append(f"{pct} {name} {value:.3f} ms{bound_words}: {verdict}")
    return out


def _pipeline_lines(p: dict[str, Any] | None) -> list[str]:
    line = pipeline.summary_line(p)
    if line is None:
        return []
    return (["", _RULE, f"Whole pipeline (--pipeline {p['mode']}, {p['preprocess_workers']} "
             f"preprocessing worker(s))", _RULE, line]
            + [f"{k.strip():12s}: {v}" for k, v in pipeline.stage_rows(p)])


def _server_headlines(m: dict[str, Any]) -> list[str]:
    """Server has two rates: the scheduled one the run is judged at, and MLPerf v5's headline."""
    if m["scenario_metric"]["name"] != "scheduled_qps":
        return []
    done = m.get("completed_samples_per_second")
    return [f"Completed samples per second : {'-' if done is None else f'{done:.6g}'} "
            "(MLPerf v5's Server headline: (samples - 1) / last completion)",
            "Headline used : scheduled samples per second (the verdict judges the latency bound "
            "at this rate; compare, history and --repeat use it)"]


def _metric_label(name: str) -> str:
    return {"samples_per_second": "Samples per second", "scheduled_qps":
            "Scheduled samples per second", "tokens_per_second": "Tokens per second"}.get(
                name, name.replace("_", " "))


def _reference_words(a: dict[str, Any]) -> str:
    """', 99% of 0.7646 declared': which reference the target came from (results before the
    reference was recorded say nothing)."""
    source = a.get("reference_source")
    if not source or a.get("target_ratio") is None:
        return ""
    kind = ("this model's FP32, measured" if source.startswith("measured") else
            "declared" if source.startswith("declared") else "published")
    return f" = {a['target_ratio']:.0%} of {a['reference']:.4f}, {kind}"


def summary_table(doc: dict[str, Any], run_dir: Any = None) -> str:
    """The table a person reads at the end of a run."""
    m = doc.get("metrics") or {}
    lat = m.get("latency_ms") or {}
    rows: list[tuple[str, Any]] = [
        ("result", status_line(doc)),
        ("workload / scenario", f"{doc['workload']} / {doc['scenario']}"),
        ("backend", _backend_line(doc)),
    ]
    if m:
        sm = m["scenario_metric"]
        rows += [("scenario metric", f"{sm['name']} = {sm['value']:,.4g}"
                  + (" (the verdict's)" if m.get("completed_samples_per_second") else "")),
                 ("throughput", f"{m['samples_per_second']:,.2f} samples/s, "
                                f"{m['queries_per_second']:,.2f} queries/s"),
                 ("completed", f"{m['completed_samples']:,} samples in {m['duration_s']:.2f} s"),
                 *([("completed samples/s (MLPerf v5)",
                     f"{m['completed_samples_per_second']:,.2f}")]
                   if m.get("completed_samples_per_second") else []),
                 ("latency p50 / p90 / p99", f"{lat['p50']:.3f} / {lat['p90']:.3f} / "
                                             f"{lat['p99']:.3f} ms"),
                 ("latency min / mean / max", f"{lat['min']:.3f} / {lat['mean']:.3f} / "
                                              f"{lat['max']:.3f} ms")]
        es = m["early_stopping"]
        if es["latency_ms"] is not None:
            rows.append((f"early-stopping p{m['target_percentile'] * 100:g}", f"{es['latency_ms']:.3f} ms"))
        if m.get("ttft_ms"):
            t, p = m["ttft_ms"], m["tpot_ms"]
            rows += [("tokens", f"{m['tokens_per_second']:,.1f} tokens/s, {m['output_tokens']:,} "
                      f"output tokens; goodput {m['goodput']['requests_per_second']:,.2f} "
                      "requests/s in bounds"),
                     ("TTFT p50 / p90 / p99", f"{t['p50']:.3f} / {t['p90']:.3f} / "
                                              f"{t['p99']:.3f} ms"),
                     ("TPOT p50 / p90 / p99", f"{p['p50']:.3f} / {p['p90']:.3f} / "
                                              f"{p['p99']:.3f} ms"),
                     ("inter-token p99 / longest stall", f"{m['inter_token_p99_ms']:.3f} / "
                                                         f"{m['max_stall_ms']:.3f} ms")]
            rows += [("token bound", line) for line in token_verdict(m, doc)]
        if m.get("issue_spin_s") is not None and m["duration_s"]:
            spin_us = (doc["settings"].get("loadgen") or {}).get("spin_us")
            rows.append(("load generator spin", f"{m['issue_spin_s'] * 1e3:,.1f} ms busy-waiting, "
                         f"{100 * m['issue_spin_s'] / m['duration_s']:.2f}% of one core"
                         + (f" (--spin-us {spin_us:g})" if spin_us is not None else "")))
    rows += _window_rows(doc.get("latency_windows"))
    if doc.get("accuracy"):
        a = doc["accuracy"]
        rows.append(("accuracy", f"{a['metric']} {a['value']:.4f} (target {a['target']:.4f}"
                                 f"{_reference_words(a)}): {'PASS' if a['passed'] else 'FAIL'}"))
    elif doc.get("accuracy_note"):
        rows.append(("accuracy", doc["accuracy_note"]))
    rows.append(("fidelity", fidelity_line(doc)))
    for c in (doc.get("audit") or {}).get("checks", []):
        rows.append((f"audit: {c['name']}", ("PASS" if c["passed"] else "FAIL") + ": "
                     + _audit_evidence(c["evidence"])))
    for c in (doc.get("audit") or {}).get("not_applicable") or []:
        rows.append((f"audit: {c['name']}", f"not applicable: {c['reason']}"))
    if doc.get("robustness_note") and not doc.get("robustness"):
        rows.append(("robustness", doc["robustness_note"]))
    rows += [("drift", line) for line in drift.describe(doc.get("drift"))]
    fp = doc.get("find_peak")
    if fp:
        rows.append(("peak Server QPS", "none valid" if fp["peak_qps"] is None
                     else f"{fp['peak_qps']:,.1f} ({len(fp['steps'])} steps)"))
    line = pipeline.summary_line(doc.get("pipeline"))
    if line:
        rows.append(("whole pipeline", line))
        rows += pipeline.stage_rows(doc["pipeline"])
    rows += power_rows(doc.get("power")) + telemetry_rows(doc.get("telemetry"))
    rows.append(("MLPerf minimums", _minimums(doc["settings"])))
    for reason in doc["invalid_reasons"]:
        rows.append(("invalid because", reason))
    if run_dir is not None:
        rows.append(("written to", str(run_dir)))
    out = table(("", ""), rows)
    return out + "\n\n" + grid(doc["robustness"]) if doc.get("robustness") else out


def _audit_evidence(e: dict[str, Any]) -> str:
    if "error" in e:
        return e["error"]
    if "median_ttft_ratio" in e:
        return (f"repeated / fresh prompt TTFT p50 {e['median_ttft_ratio']:.2f} (median of "
                f"{len(e['ratios'])} pairs; limit {e['limit']:.2f})")
    if "first_token_mismatched" in e:
        return (f"{e['requests_checked']} requests: first token differs in "
                f"{e['first_token_mismatched']}, not reported in "
                f"{e['first_token_not_reported']}, token count differs in "
                f"{e['count_mismatched']}, no output for {e['without_output']}")
    if "median_ratio" in e:
        return (f"repeated / unique throughput {e['median_ratio']:.2f} (median of "
                f"{len(e['ratios'])} pairs; limit {e['limit']:.2f})")
    if "alternate_median" in e:
        low, high = e["interval"]
        return (f"{e['metric']} with other seeds {e['alternate_median']:,.4g} (median of "
                f"{len(e['alternate'])}); configured seeds' 95% interval "
                f"[{low:,.4g}, {high:,.4g}]")
    return (f"{e['mismatched']} of {e['samples_compared']} sampled outputs differ under load "
            f"(max error {e['max_error']:.2g} of scale; tolerance {e['tolerance']:g} at "
            f"{e['declared_precision']})")


def _window_rows(lw: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The arrival process, and the spread of p99 across windows (the worst one named)."""
    if not lw:
        return []
    arr = lw.get("arrivals") or {}
    skip = ("kind", "stationary", "trace_sha256", "trace_rate")
    params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in arr.items() if k not in skip)
    rows = [("arrivals", f"{arr.get('kind', 'poisson')}" + (f" ({params})" if params else "")
             + ("" if arr.get("stationary", True) else "; not stationary: judged per window"
                if lw.get("judged", True) else "; not stationary (no latency bound to judge "
                "windows on)"))]
    seen = [w for w in lw["windows"] if w["p99_ms"] is not None]
    if len(seen) > 1:
        worst = max(seen, key=lambda w: w["p99_ms"])
        rows.append((f"p99 per {lw['window_s']:g} s window",
                     f"{min(w['p99_ms'] for w in seen):.3f} to {worst['p99_ms']:.3f} ms over "
                     f"{len(seen)} windows (worst {worst['start_s']:g}-{worst['end_s']:g} s)"))
    return rows


def _minimums(s: dict[str, Any]) -> str:
    if s.get("meets_mlperf_minimums"):
        return "met"
    short = s.get("mlperf_shortfalls")
    if not short:
        return "-"
    profile = (s.get("config") or {}).get("profile")
    return f"not met ({profile} profile): {'; '.join(short)}" if profile else \
        f"not met: {'; '.join(short)}"


def fidelity_line(doc: dict[str, Any]) -> str:
    """One line: observed against declared precision and agreement with the FP32 reference."""
    f = doc.get("fidelity")
    if not f:
        return doc.get("fidelity_note") or "not checked"
    verdict = "PASS" if f["passed"] else "FAIL"
    outputs = f.get("outputs") or {}
    exact = "".join(f"; {name} exact match {o['exact_match']:.3f}"
                    for name, o in outputs.items() if o.get("kind") == "exact")
    if f.get("max_rel_error") is None:
        return f"{verdict}: no floating-point output, precision not judged{exact}"
    env = f.get("envelope") or {}
    bound = (env.get("bounds") or {}).get(f["expected_precision"])
    within = (f"; {f['expected_precision']} bound {bound:.2g} ({env['method'].split(':')[0]})"
              if bound is not None else "")
    return (f"{verdict}: computes like {f['observed_precision']} (declares "
            f"{f['declared_precision']}); top-1 agreement {f['top1_agreement']:.3f}, max error "
            f"{f['max_rel_error']:.2g} of scale{within}, cosine min {f['cosine_min']:.6f} "
            f"({f['samples']} samples{', worst float output' if outputs else ''}){exact}")


def _backend_line(doc: dict[str, Any]) -> str:
    info = doc.get("backend_info") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())
    extra = f"; {versions}" if versions else ""
    return f"{doc['backend']} ({info.get('device', '?')}, {info.get('precision', '?')}{extra})"
