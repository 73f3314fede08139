"""Real runs for the analysis tests, and copies of them with contract-shaped sections set."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

from hwbench.cli import main
from hwbench.results.store import index_run, load_result

FAST = ["--duration", "0.3", "--warmup", "0.1", "--min-queries", "20", "--quiet"]


def make_run(root: Path, *args: str) -> Path:
    """One real run (in-process, through the CLI); returns its directory."""
    before = set(root.iterdir()) if root.is_dir() else set()
    code = main(["run", "--output", str(root), *FAST, *args])
    assert code == 0, f"hwbench run {args} exited {code}"
    (new,) = [p for p in root.iterdir() if p not in before and p.is_dir()]
    return new


def derive(src: Path, root: Path, change: Callable[[dict[str, Any]], None], suffix: str) -> Path:
    """A copy of a real run with `change` applied to its result, indexed in `root` like a run."""
    doc = load_result(src)
    change(doc)
    doc["run_id"] = f"{doc['run_id']}-{suffix}"
    dst = root / doc["run_id"]
    shutil.copytree(src, dst)
    (dst / "result.json").write_text(json.dumps(doc, indent=2))
    index_run(root, dst, doc)
    return dst


POWER = {"window_s": 0.3, "sources": [
    {"name": "rapl:package-0", "kind": "cpu-package", "available": True, "reason": None,
     "method": "RAPL energy counter", "expected_error": "±5%", "avg_w": 20.0, "peak_w": 31.0,
     "energy_j": 6.0, "energy_per_sample_j": 0.001, "energy_per_query_j": 0.001,
     "samples_per_s_per_w": 500.0, "valid": True, "invalid_reason": None},
    {"name": "nvml:0", "kind": "gpu", "available": False, "reason": "no NVIDIA GPU",
     "method": "NVML", "expected_error": "±5 W", "avg_w": None, "peak_w": None,
     "energy_j": None, "energy_per_sample_j": None, "energy_per_query_j": None,
     "samples_per_s_per_w": None, "valid": False, "invalid_reason": None}],
    "total": {"sources": ["rapl:package-0"], "avg_w": 20.0, "energy_j": 6.0,
              "energy_per_sample_j": 0.001, "energy_per_query_j": 0.001,
              "samples_per_s_per_w": 500.0}}
TELEMETRY = {"sample_rate_hz": 10.0, "cpu_util_pct": {"mean": 80.0, "max": 100.0},
             "peak_rss_bytes": 300_000_000, "gpus": [], "throttled": False,
             "throttle_reasons": [], "overhead_pct_of_core": 0.5,
             "timeline_file": "telemetry.npz"}
ROBUSTNESS = {"samples": 100, "seed": 1, "clean_accuracy": 0.98,
              "corruptions": {"gaussian_noise": {"1": 0.97, "2": 0.95, "3": 0.9, "4": 0.8, "5": 0.7},
                              "blur": {"1": 0.97, "2": 0.96, "3": 0.94, "4": 0.9, "5": 0.85}},
              "mean_corruption_accuracy": 0.894, "relative_drop": 0.0878,
              "worst": {"corruption": "gaussian_noise", "severity": 5, "accuracy": 0.7},
              "worst_class": {"class": 8, "recall": 0.6, "clean_recall": 0.96}}


def module_env(tmp_path_factory) -> "pytest.MonkeyPatch":
    """The suite's model cache for module-scoped fixtures (conftest's autouse one is per test)."""
    import os

    import pytest
    mp = pytest.MonkeyPatch()
    cache = os.environ.get("HWBENCH_TEST_CACHE") or tmp_path_factory.getbasetemp() / "cache"
    mp.setenv("HWBENCH_CACHE", str(cache))
    return mp
