"""One finished run seen by the analysis commands: its figures, its identity, what it may be
compared with. Every figure is read from the result document; missing ones stay None.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


# Run settings added after results were first hashed, with the value a result written before them
# ran with. A setting at its default is left out of the digests, so a run written before the
# setting existed and one written after, with the same configuration, keep the same hashes.
LATER_DEFAULTS = {"precision": "fp32", "instances": 1, "batch_timeout_us": 0.0}


def _config(doc: dict[str, Any]) -> dict[str, Any]:
    return (doc.get("settings") or {}).get("config") or {}


def later_settings(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's precision, instances and batch_timeout_us; a result without one ran the default."""
    cfg = _config(doc)
    return {k: default if cfg.get(k) is None else cfg[k] for k, default in LATER_DEFAULTS.items()}


def _not_default(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if v != LATER_DEFAULTS[k]}


def comparability_key(doc: dict[str, Any]) -> dict[str, Any]:
    """The settings that change what a figure means; runs compare only when these are equal.

    Systems and backends (and their options) are what a comparison compares, so they are not here;
    nor are instances and the batch timeout, which are ways a system is run, like backend options.
    Precision is: an int8 model is a different computation from the fp32 one.
    """
    cfg = _config(doc)
    lg = (doc.get("settings") or {}).get("loadgen") or {}
    key = {"workload": doc.get("workload"), "scenario": doc.get("scenario"),
           "mode": doc.get("mode"), "profile": cfg.get("profile"),
           "model_sha256": (doc.get("workload_info") or {}).get("model_sha256"),
           "batch_size": cfg.get("batch_size"), "latency_bound_s": lg.get("latency_bound_s"),
           "samples_per_query": lg.get("samples_per_query"),
           "precision": later_settings(doc)["precision"]}
    if lg.get("scenario") == "Server":
        # Latency at one arrival rate says nothing about another: the rate must match (3 digits).
        key["server_target_qps"] = float(f"{lg.get('server_target_qps') or 0:.3g}")
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
    instances, batch timeout and system."""
    opts = _config(doc).get("backend_options") or {}
    parts = [config_hash(doc), doc.get("backend"), opts,
             (doc.get("system") or {}).get("fingerprint")]
    later = _not_default(later_settings(doc))
    return _digest([*parts, later] if later else parts)  # see LATER_DEFAULTS


def power_total(doc: dict[str, Any]) -> dict[str, Any]:
    return (doc.get("power") or {}).get("total") or {}


def repeat_group(doc: dict[str, Any]) -> str | None:
    return (doc.get("settings") or {}).get("repeat_group")


@dataclass(frozen=True)
class RunRecord:
    """The figures of one run that the analysis commands use."""

    doc: dict[str, Any]
    run_dir: Path | None

    @property
    def run_id(self) -> str:
        return self.doc["run_id"]

    @property
    def label(self) -> str:
        """backend[options]@host: what a reader recognises as the thing being compared; precision
        and instances join the options when not the defaults (fp32, 1)."""
        opts = dict(_config(self.doc).get("backend_options") or {})
        later = _not_default(later_settings(self.doc))
        opts.update({k: later[k] for k in ("precision", "instances") if k in later})
        extra = "[" + ",".join(f"{k}={v}" for k, v in sorted(opts.items())) + "]" if opts else ""
        return f"{self.doc['backend']}{extra}@{self.system}"

    @property
    def system(self) -> str:
        return (self.doc.get("system") or {}).get("hostname") or "?"

    @property
    def fingerprint(self) -> str | None:
        return (self.doc.get("system") or {}).get("fingerprint")

    def metric(self, path: str) -> float | None:
        """A number from ``metrics`` by dotted path (``latency_ms.p99``), or None."""
        node: Any = self.doc.get("metrics") or {}
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None

    @property
    def headline(self) -> tuple[str | None, float | None]:
        sm = (self.doc.get("metrics") or {}).get("scenario_metric") or {}
        return sm.get("name"), sm.get("value")

    @property
    def higher_is_better(self) -> bool:
        return not (self.headline[0] or "").endswith("_latency_ms")

    @property
    def accuracy_value(self) -> float | None:
        return (self.doc.get("accuracy") or {}).get("value")

    @property
    def accuracy_status(self) -> str:
        acc = self.doc.get("accuracy")
        if not acc:
            return "not validated"
        return f"{'PASS' if acc.get('passed') else 'FAIL'} {acc['value']:.4f}"

    @property
    def accuracy_validated(self) -> bool:
        return (self.doc.get("validated") or {}).get("accuracy") is True

    @property
    def watts(self) -> float | None:
        return power_total(self.doc).get("avg_w")

    @property
    def energy_per_query_j(self) -> float | None:
        return power_total(self.doc).get("energy_per_query_j")

    @property
    def perf_per_watt(self) -> float | None:
        return power_total(self.doc).get("samples_per_s_per_w")

    @property
    def config_hash(self) -> str:
        return config_hash(self.doc)

    @property
    def group(self) -> str:
        """Runs of one ``--repeat`` series share a group; a single run is its own group."""
        return repeat_group(self.doc) or self.run_id


def load(run_dir: str | Path) -> RunRecord:
    from hwbench.results import load_result
    path = Path(run_dir)
    return RunRecord(load_result(path), path if path.is_dir() else path.parent)
