"""A run's identity, read from its result document: the settings that make two runs comparable,
and the hashes the index stores (``config_hash``: what a figure means; ``setup_hash``: one
configuration on one system over time). The index and the analysis commands read the same ones.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from hwbench.config import default


# Run settings added after results were first hashed, with the value a result written before them
# ran with. A setting at its default is left out of the digests, so a run written before the
# setting existed and one written after, with the same configuration, keep the same hashes.
# spin_us is the one exception to "the value it ran with": runs before it spun up to 200 us with
# the OS's default timer slack; they are taken as today's default so that a setup's history runs
# on across the change (docs/loadgen.md, "The issue thread's spin").
LATER_DEFAULTS = {k: default(k) for k in ("precision", "instances", "batch_timeout_us",
                                          "spin_us")}


def run_config(doc: dict[str, Any]) -> dict[str, Any]:
    return (doc.get("settings") or {}).get("config") or {}


def later_settings(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's precision, instances, batch_timeout_us and spin_us; a result without one ran the
    default."""
    cfg = run_config(doc)
    return {k: default if cfg.get(k) is None else cfg[k] for k, default in LATER_DEFAULTS.items()}


def not_default(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if v != LATER_DEFAULTS[k]}


def comparability_key(doc: dict[str, Any]) -> dict[str, Any]:
    """The settings that change what a figure means; runs compare only when these are equal.

    Systems and backends (and their options) are what a comparison compares, so they are not here;
    nor are instances and the batch timeout, which are ways a system is run, like backend options.
    Precision is: an int8 model is a different computation from the fp32 one. A workload file's
    run also keys on the file's sha256: two files of one name (other preprocessing, another
    reference set) describe two workloads.
    """
    cfg = run_config(doc)
    lg = (doc.get("settings") or {}).get("loadgen") or {}
    info = doc.get("workload_info") or {}
    key = {"workload": doc.get("workload"), "scenario": doc.get("scenario"),
           "mode": doc.get("mode"), "profile": cfg.get("profile"),
           "model_sha256": info.get("model_sha256"),
           "batch_size": cfg.get("batch_size"), "latency_bound_s": lg.get("latency_bound_s"),
           "samples_per_query": lg.get("samples_per_query"),
           "precision": later_settings(doc)["precision"]}
    if lg.get("ttft_bound_s") or lg.get("tpot_bound_s"):
        # A generative run is judged per token: other bounds, another verdict. Only then, so
        # every other run keeps its hash.
        key["token_bounds_s"] = [lg.get("ttft_bound_s"), lg.get("tpot_bound_s")]
    if cfg.get("pipeline", "model") != "model":
        # The whole pipeline times more than the model: its figures are another quantity. The
        # model-only path (every result before --pipeline) is left out, so those keep their hashes.
        key["pipeline"] = cfg["pipeline"]
    if info.get("workload_file"):  # only then: the built-ins' hashes stay as they were
        key["workload_file_sha256"] = info["workload_file"].get("sha256")
    if info.get("inputs"):  # --workload onnx: another input shape is another computation
        key["inputs"] = {"tensors": info["inputs"].get("tensors"),
                         "source": info["inputs"].get("source")}
    if lg.get("scenario") == "Server":
        # Latency at one arrival rate says nothing about another: the rate must match (3 digits).
        key["server_target_qps"] = float(f"{lg.get('server_target_qps') or 0:.3g}")
        # Nor under one arrival process about another; Poisson (MLPerf's, and every result
        # before schema 5) is left out, so those keep their hashes.
        arr = dict((doc.get("latency_windows") or {}).get("arrivals") or {})
        if arr and arr.get("kind") != "poisson":
            arr.pop("trace", None)  # a trace is its content (trace_sha256), not where it lay
            key["arrivals"] = arr
    return key


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def config_hash(doc: dict[str, Any]) -> str:
    key = comparability_key(doc)
    if key["precision"] == LATER_DEFAULTS["precision"]:
        del key["precision"]  # see LATER_DEFAULTS
    return _digest(key)


def setup_hash(doc: dict[str, Any]) -> str:
    """One configuration over time: the comparability key plus backend, its options, precision,
    instances, batch timeout, the load generator's spin and system."""
    opts = run_config(doc).get("backend_options") or {}
    parts = [config_hash(doc), doc.get("backend"), opts,
             (doc.get("system") or {}).get("fingerprint")]
    later = not_default(later_settings(doc))
    return _digest([*parts, later] if later else parts)  # see LATER_DEFAULTS


def power_total(doc: dict[str, Any]) -> dict[str, Any]:
    return (doc.get("power") or {}).get("total") or {}


def repeat_group(doc: dict[str, Any]) -> str | None:
    return (doc.get("settings") or {}).get("repeat_group")
