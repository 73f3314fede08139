"""The index as a pandas DataFrame, so an analysis can continue in a notebook.

One row per run in ``root/index.sqlite``, oldest first, with typed columns: identity (run id,
time, workload, scenario, backend, mode, precision, batch size, instances, backend options),
verdicts, throughput and latency percentiles, power and energy, accuracy, the system, and the
comparability hashes. Figures a run did not measure are missing (NaN / <NA>), never 0.

pandas (and pyarrow, for parquet) come with the ``analysis`` extra: ``pip install
'hwbench[analysis]'``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwbench.errors import UsageError
from hwbench.results.identity import config_hash, power_total, run_config, setup_hash
from hwbench.results.store import list_runs, load_result

INSTALL = "pip install 'hwbench[analysis]'"

# column -> pandas dtype. Nullable dtypes, so that a figure not measured stays missing.
COLUMNS: dict[str, str] = {
    "run_id": "string", "created_utc": "datetime64[ns, UTC]", "workload": "category",
    "scenario": "category", "backend": "category", "mode": "category", "precision": "category",
    "batch_size": "Int64", "instances": "Int64", "backend_options": "string",
    "valid": "boolean", "performance_valid": "boolean", "accuracy_passed": "boolean",
    "metric_name": "string", "metric_value": "Float64", "samples_per_second": "Float64",
    "completed_samples_per_second": "Float64", "target_qps": "Float64",
    "latency_p50_ms": "Float64", "latency_p90_ms": "Float64", "latency_p99_ms": "Float64",
    "latency_p999_ms": "Float64", "duration_s": "Float64", "avg_w": "Float64",
    "energy_per_sample_j": "Float64", "samples_per_s_per_w": "Float64",
    "accuracy_metric": "string", "accuracy_value": "Float64",
    # generative workloads (llm; missing for every other run)
    "tokens_per_second": "Float64", "output_tokens": "Int64", "ttft_p50_ms": "Float64",
    "ttft_p99_ms": "Float64", "tpot_p50_ms": "Float64", "tpot_p99_ms": "Float64",
    "goodput_rps": "Float64", "fidelity_passed": "boolean",
    "hostname": "string",
    "system_fingerprint": "string", "cpu": "string", "config_hash": "string",
    "setup_hash": "string", "path": "string",
}


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise UsageError(f"pandas is not installed: {INSTALL}") from None
    return pandas


def _row(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    cfg = run_config(doc)
    m = doc.get("metrics") or {}
    lat = m.get("latency_ms") or {}
    acc = doc.get("accuracy") or {}
    total = power_total(doc)
    system = doc.get("system") or {}
    lg = (doc.get("settings") or {}).get("loadgen") or {}
    return {
        "run_id": doc["run_id"], "created_utc": doc.get("created_utc"),
        "workload": doc.get("workload"), "scenario": doc.get("scenario"),
        "backend": doc.get("backend"), "mode": doc.get("mode"),
        "precision": cfg.get("precision") or "fp32", "batch_size": cfg.get("batch_size"),
        "instances": cfg.get("instances") or 1,
        "backend_options": json.dumps(cfg.get("backend_options") or {}, sort_keys=True),
        "valid": doc.get("valid"),
        "performance_valid": (doc.get("validated") or {}).get("performance"),
        "accuracy_passed": acc.get("passed") if acc else None,
        "metric_name": (m.get("scenario_metric") or {}).get("name"),
        "metric_value": (m.get("scenario_metric") or {}).get("value"),
        "samples_per_second": m.get("samples_per_second"),
        "completed_samples_per_second": m.get("completed_samples_per_second"),
        "target_qps": lg.get("server_target_qps") if lg.get("scenario") == "Server" else None,
        "latency_p50_ms": lat.get("p50"), "latency_p90_ms": lat.get("p90"),
        "latency_p99_ms": lat.get("p99"), "latency_p999_ms": lat.get("p99.9"),
        "duration_s": m.get("duration_s"), "avg_w": total.get("avg_w"),
        "energy_per_sample_j": total.get("energy_per_sample_j"),
        "samples_per_s_per_w": total.get("samples_per_s_per_w"),
        "accuracy_metric": acc.get("metric") if acc else None,
        "accuracy_value": acc.get("value") if acc else None,
        "tokens_per_second": m.get("tokens_per_second"), "output_tokens": m.get("output_tokens"),
        "ttft_p50_ms": (m.get("ttft_ms") or {}).get("p50"),
        "ttft_p99_ms": (m.get("ttft_ms") or {}).get("p99"),
        "tpot_p50_ms": (m.get("tpot_ms") or {}).get("p50"),
        "tpot_p99_ms": (m.get("tpot_ms") or {}).get("p99"),
        "goodput_rps": (m.get("goodput") or {}).get("requests_per_second"),
        "fidelity_passed": (doc.get("validated") or {}).get("fidelity"),
        "hostname": system.get("hostname"), "system_fingerprint": system.get("fingerprint"),
        "cpu": system.get("cpu_model"),
        "config_hash": config_hash(doc), "setup_hash": setup_hash(doc), "path": str(path),
    }


def runs_frame(root: str | Path, **where: Any) -> Any:
    """The index under `root` as a DataFrame (oldest run first), filtered by equality on index
    columns (workload=..., scenario=..., backend=...)."""
    pd = _pandas()
    root = Path(root)
    rows = [_row(load_result(root / r["path"]), root / r["path"])
            for r in reversed(list_runs(root, **where))]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for col, dtype in COLUMNS.items():
        if dtype.startswith("datetime"):
            frame[col] = pd.to_datetime(frame[col], utc=True).astype(dtype)
        else:
            frame[col] = frame[col].astype(dtype)
    return frame


def write(frame: Any, path: str, kind: str) -> str:
    """Writes `frame` as CSV or parquet to `path` ('-': standard output, CSV only); returns
    where it went. An existing file is never overwritten."""
    if path == "-":
        if kind != "csv":
            raise UsageError("--parquet - : parquet is binary; give a file name")
        import sys
        frame.to_csv(sys.stdout, index=False)
        return "standard output"
    out = Path(path)
    if out.exists():
        raise UsageError(f"{out} exists: results are never overwritten; give a new file name")
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError(f"parquet needs pyarrow: {INSTALL}") from None
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    return str(out)
