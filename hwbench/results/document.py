"""Builds the versioned result document (result.json) from what a run measured."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from hwbench import __version__
from hwbench.harness.loadgen import Summary
from hwbench.results.store import SCHEMA_VERSION

_PCTS = (("min", "min"), ("mean", "mean"), ("p50", "p50"), ("p90", "p90"), ("p95", "p95"),
         ("p97", "p97"), ("p99", "p99"), ("p99.9", "p999"), ("max", "max"))


def metrics(m: Summary, stale_completions: int = 0, spin_ns: int | None = None) -> dict[str, Any]:
    """The load generator's summary as plain JSON values (latencies in milliseconds)."""
    lat = m.latency
    # Only the latency scenarios have an early-stopping estimate; Server's early stopping judges
    # a count of queries over the bound (MLPerf results.cc), so it has none to report.
    estimate = m.early_stopping_supported and m.metric_name.endswith("_latency_ms")
    return {
        "samples_per_second": m.samples_per_second,
        "queries_per_second": m.queries_per_second,
        "scheduled_qps": m.scheduled_qps or None,
        # Server: MLPerf v5's headline, (completed samples - 1) / the last completion
        "completed_samples_per_second": m.completed_samples_per_second or None,
        "completed_samples": m.completed_samples,
        "issued_samples": m.issued_samples,
        "completed_queries": m.completed_queries,
        "issued_queries": m.issued_queries,
        "duration_s": m.duration_s,
        "latency_ms": {k: getattr(lat, attr) / 1e6 for k, attr in _PCTS},
        "scenario_metric": {"name": m.metric_name, "value": m.metric_value},
        "target_percentile": m.target_percentile,
        "percentile_latency_ms": m.percentile_latency_ns / 1e6,
        "early_stopping": {
            "supported": m.early_stopping_supported,
            "met": m.early_stopping_met,
            "latency_ms": m.early_stopping_latency_ns / 1e6 if estimate else None,
            "overlatency_queries": m.overlatency_queries,
            "min_queries": m.early_stopping_min_queries,
        },
        "min_duration_met": m.meets_min_duration,
        "min_queries_met": m.meets_min_queries,
        "stale_completions": stale_completions,
        # the issue thread's busy-waiting in the measured window (--spin-us): a core it held
        "issue_spin_s": None if spin_ns is None else spin_ns / 1e9,
        **token_metrics(m),
    }


TOKEN_KEYS = ("ttft_ms", "tpot_ms", "tokens_per_second", "output_tokens", "inter_token_p99_ms",
              "max_stall_ms", "goodput", "token_bounds")


def token_metrics(m: Summary) -> dict[str, Any]:
    """Token timing (a generative workload's run), every key null for any other run."""
    if not m.has_tokens:
        return dict.fromkeys(TOKEN_KEYS)
    return {
        "ttft_ms": {k: getattr(m.ttft, attr) / 1e6 for k, attr in _PCTS},
        "tpot_ms": {k: getattr(m.tpot, attr) / 1e6 for k, attr in _PCTS},
        "tokens_per_second": m.tokens_per_second,
        "output_tokens": m.output_tokens,
        "inter_token_p99_ms": m.itl_p99_ns / 1e6,
        "max_stall_ms": m.max_stall_ns / 1e6,
        # requests per second that met both token bounds, and how many did
        "goodput": {"requests_per_second": m.goodput, "requests": m.good_samples},
        "token_bounds": {"percentile": m.target_percentile,
                         "ttft_ms": m.percentile_ttft_ns / 1e6,
                         "tpot_ms": m.percentile_tpot_ns / 1e6,
                         "tpot_samples": m.tpot_samples,
                         "over_ttft": m.over_ttft, "over_tpot": m.over_tpot,
                         "ttft_met": m.ttft_met, "tpot_met": m.tpot_met},
    }


def samples_columns(records: dict[str, np.ndarray], start_ns: int,
                    stages: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per-sample columns with times relative to the window's start (ns); with the whole
    pipeline, each sample's time in each stage too (hwbench.harness.pipeline.stage_columns)."""
    done = records["complete_ns"]
    cols = {"sample_index": records["index"], "query": records["query"],
            "issue_ns": records["issue_ns"] - start_ns,
            "complete_ns": np.where(done != 0, done - start_ns, -1), **(stages or {})}
    if "token_count" in records:  # a generative run: when each sample's tokens came
        first, last = records["first_token_ns"], records["last_token_ns"]
        cols.update(first_token_ns=np.where(first != 0, first - start_ns, -1),
                    last_token_ns=np.where(last != 0, last - start_ns, -1),
                    token_count=records["token_count"], max_gap_ns=records["max_gap_ns"])
        if "first_token_value" in records:  # -1: the first event reported no value
            cols["first_token_value"] = records["first_token_value"]
    return cols


def generative(doc: dict[str, Any]) -> bool:
    """A generative workload's run (llm): timed per token, and validated by its performance
    verdict and fidelity; accuracy is not applicable (synthetic weights generate no text)."""
    return bool((doc.get("workload_info") or {}).get("generative"))


def correctness_validated(doc: dict[str, Any]) -> bool | None:
    """What validates a run's answers: accuracy, or for a generative run, fidelity against the
    FP32 reference (None: not judged, e.g. a backend that computes nothing)."""
    return doc["validated"].get("fidelity" if generative(doc) else "accuracy")


def status_line(doc: dict[str, Any]) -> str:
    """VALID / INVALID, and which of performance and accuracy (a generative run: fidelity)
    were validated."""
    v = doc["validated"]
    perf = {True: "performance VALID", False: "performance INVALID", None: "performance not run"}
    acc = {True: "accuracy PASS", False: "accuracy FAIL", None: "accuracy not validated"}
    if generative(doc):
        fid = {True: "fidelity PASS", False: "fidelity FAIL", None: "fidelity not checked"}
        acc = dict.fromkeys(acc, f"{fid[v.get('fidelity')]}, accuracy not applicable")
    if doc["valid"]:
        # Only a run whose performance and answers were both validated is a clean VALID.
        both = v["performance"] is True and correctness_validated(doc) is True
        head = "VALID" if both else "PERFORMANCE VALID" if v["performance"] else "ACCURACY PASS"
    else:
        head = "INTERRUPTED" if doc["interrupted"] else "INVALID"
    return f"{head} ({perf[v['performance']]}, {acc[v['accuracy']]})"


def new_document(run_id: str, cfg: dict[str, Any], system: dict[str, Any]) -> dict[str, Any]:
    """The skeleton every run starts from; the runner fills it as passes finish."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hwbench_version": __version__,
        "workload": cfg["workload"],
        "scenario": cfg["scenario"],
        "backend": cfg["backend"],
        "mode": cfg["mode"],
        "valid": False,
        "invalid_reasons": [],
        "interrupted": False,
        "validated": {"performance": None, "accuracy": None, "fidelity": None},
        "metrics": None,
        "accuracy": None,
        "accuracy_note": None,
        "find_peak": None,
        "latency_windows": None,
        "fidelity": None,
        "fidelity_note": None,
        "robustness": None,
        "robustness_note": None,
        "power": None,
        "telemetry": None,
        "repeat": None,
        "audit": None,
        "drift": None,
        "pipeline": None,
        "settings": {"config": cfg},
        "backend_info": None,
        "workload_info": None,
        "system": system,
    }
