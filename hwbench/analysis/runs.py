"""One finished run seen by the analysis commands: its figures, its identity, what it may be
compared with. Every figure is read from the result document; missing ones stay None.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwbench.results.document import generative
from hwbench.results.identity import (config_hash, later_settings, not_default, power_total,
                              repeat_group, run_config)
from hwbench.results.store import load_result


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
        opts = dict(run_config(self.doc).get("backend_options") or {})
        later = not_default(later_settings(self.doc))
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
    def generative(self) -> bool:
        """A generative workload's run (llm): figures per token, validated by fidelity."""
        return generative(self.doc)

    @property
    def accuracy_status(self) -> str:
        if self.generative:
            fid = (self.doc.get("validated") or {}).get("fidelity")
            words = {True: "fidelity PASS", False: "fidelity FAIL", None: "not scored"}[fid]
            return f"n/a ({words})"
        acc = self.doc.get("accuracy")
        if not acc:
            return "not validated"
        return f"{'PASS' if acc.get('passed') else 'FAIL'} {acc['value']:.4f}"

    @property
    def accuracy_validated(self) -> bool:
        """The run's answers were validated: its accuracy passed, or for a generative run (whose
        accuracy is not applicable), its fidelity against the FP32 reference passed."""
        key = "fidelity" if self.generative else "accuracy"
        return (self.doc.get("validated") or {}).get(key) is True

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
    path = Path(run_dir)
    return RunRecord(load_result(path), path if path.is_dir() else path.parent)
