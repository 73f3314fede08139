"""Run results on disk: one new directory per run, written atomically, indexed in SQLite.

A run directory holds ``result.json`` (the versioned result document), ``summary.txt`` (the
summary in MLPerf's field names) and ``samples.npz`` (per-sample issue and completion times of
the performance window, columnar; ``samples_accuracy.npz`` for an accuracy pass),
``telemetry.npz`` (telemetry readings of the performance pass) and, after an accuracy pass,
``accuracy.json`` (the full report, confusion matrix included). Readers go through
``load_result``, which migrates older schema versions.
"""
from __future__ import annotations

import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.atomic import create_dir_atomically
from hwbench.errors import UsageError
from hwbench.results.identity import config_hash, power_total, repeat_group, setup_hash

# Schema history:
#   1 - first version.
#   2 - adds fidelity, robustness, power, telemetry and repeat (null when not measured).
#   3 - metrics add completed_samples_per_second (Server), early_stopping.met, stale_completions.
#       fidelity adds envelope (how the precision bounds were derived).
#   4 - metrics add issue_spin_s (the load generator's busy-waiting; null before it was counted).
#   5 - adds latency_windows (Server latency per window, and the arrival process; null before).
#   6 - adds audit (hwbench audit's checks and their evidence; null for every other run).
#   7 - accuracy adds reference_source and target_ratio (which reference the target came from;
#       null before: those runs were judged against the workload's published figure).
#   8 - adds drift (a soak's windows and trend tests, hwbench.results.drift; null for other runs
#       and before).
#   9 - metrics add token timing (ttft_ms, tpot_ms, tokens_per_second, output_tokens,
#       inter_token_p99_ms, max_stall_ms, goodput, token_bounds; null for every run without
#       token events, and for runs before 9). backend_info adds streams; workload_info adds
#       generative; validated adds fidelity (fidelity.passed, null when not checked); fidelity
#       adds teacher_forced (a generative run's teacher-forced comparison; null for every other).
#  10 - adds pipeline (--pipeline full/both: end-to-end against model-only, stage times,
#       utilisation, bound_by; null for a model-only run, MLPerf's timed path, as every run
#       before it). accuracy adds worst_class_min_support and per_class names (when the
#       reference set names its classes); robustness's worst_class (null when no class has that
#       many samples) adds support, and the section worst_class_min_support.
#  11 - system adds node (the cluster node a fleet run ran on; null for every other run).
#  12 - metrics add client_queueing (each sample's wait for a free worker after its arrival, and
#       whether it dominates: client_bound; null before it was stamped); backend_info adds
#       request_errors (a remote backend's failed requests by kind; null for others and before).
#  13 - audit adds not_applicable (the checks that do not apply to the run's workload, with why:
#       empty before, when every check applied); a generative run's samples.npz adds
#       first_token_value (the first token's value its event reported; -1: none).
#  14 - fidelity adds outputs (every output's agreement, by name, for a model of several outputs
#       or of no float one: --workload onnx; null for one float output, as every run before);
#       its figures may be null when no output is a float (precision then not judged).
#       workload_info of an onnx run adds inputs (the tensors fed, their source, the outputs).
SCHEMA_VERSION = 14
_ADDED_IN_2 = ("fidelity", "robustness", "power", "telemetry", "repeat")
INDEX_NAME = "index.sqlite"


def default_output_root() -> Path:
    """``results/runs`` when run inside an hwbench checkout, else ``./hwbench-results``."""
    here = Path.cwd()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file() and (d / "ext").is_dir() and (d / "results").is_dir():
            return d / "results" / "runs"
    return here / "hwbench-results"


def output_root(output: str | None) -> Path:
    """Where run directories go: ``--output``, else the default. A file there is a usage error,
    found before anything is measured."""
    root = Path(output) if output else default_output_root()
    if root.exists() and not root.is_dir():
        raise UsageError(f"--output {root} is a file: give a folder to hold the run directories")
    return root


def new_run_id(workload: str, scenario: str, backend: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{workload}-{scenario}-{backend}-{secrets.token_hex(3)}"


def write_run(root: Path, result: dict[str, Any], summary_text: str,
              arrays: dict[str, dict[str, np.ndarray]],
              documents: dict[str, Any] | None = None) -> Path:
    """Writes a new run directory atomically and indexes it. Never overwrites a run."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / result["run_id"]
    if final.exists():
        raise FileExistsError(f"run directory {final} already exists")

    def write(tmp: Path) -> None:
        (tmp / "result.json").write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
        (tmp / "summary.txt").write_text(summary_text)
        for name, columns in arrays.items():
            np.savez_compressed(tmp / name, **columns)
        for name, content in (documents or {}).items():
            (tmp / name).write_text(json.dumps(content, indent=1) + "\n")

    create_dir_atomically(final, write)
    index_run(root, final, result)
    return final


def load_result(run_dir: str | Path) -> dict[str, Any]:
    """Reads a run directory's result, migrated to the current schema."""
    path = Path(run_dir)
    doc_path = path / "result.json" if path.is_dir() else path
    if not doc_path.is_file():
        raise UsageError(f"{run_dir} is not a run directory: it has no result.json")
    fix = "give a run directory (OUTPUT/<run-id>) or its result.json"
    try:
        doc = json.loads(doc_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # e.g. a shell glob over the output root that also matched index.sqlite
        what = "a binary file" if isinstance(exc, UnicodeDecodeError) else f"not valid JSON ({exc})"
        raise UsageError(f"{run_dir} is not a run directory: {what}; {fix}") from None
    except OSError as exc:
        raise UsageError(f"{run_dir} cannot be read ({exc.strerror}); {fix}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{run_dir} is not a run directory: its JSON is not a result; {fix}")
    return migrate(doc)


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    version = doc.get("schema_version")
    if not isinstance(version, int):
        raise UsageError("result.json has no schema_version: it was not written by hwbench")
    if version > SCHEMA_VERSION:
        raise UsageError(f"result schema {version} is newer than this hwbench understands "
                         f"({SCHEMA_VERSION}): upgrade hwbench")
    if version < 2:
        doc = _to_2(doc)
    if version < 3:
        doc = _to_3(doc)
    if version < 4:
        doc = _to_4(doc)
    if version < 5:
        doc = dict(doc, schema_version=5)
        doc.setdefault("latency_windows", None)  # not kept before schema 5
    if version < 6:
        doc = dict(doc, schema_version=6)
        doc.setdefault("audit", None)  # no run before schema 6 was audited
    if version < 7:
        doc = dict(doc, schema_version=7)
        if isinstance(doc.get("accuracy"), dict):
            doc["accuracy"] = {"reference_source": None, "target_ratio": None, **doc["accuracy"]}
    if version < 8:
        doc = dict(doc, schema_version=8)
        doc.setdefault("drift", None)  # no soak was judged for drift before schema 8
    if version < 9:
        doc = _to_9(doc)
    if version < 10:  # the model-only path, no section
        doc = dict(doc, schema_version=10)
        doc.setdefault("pipeline", None)
    if version < 11:
        doc = _to_11(doc)
    if version < 12:
        doc = dict(doc, schema_version=12)
        if isinstance(doc.get("metrics"), dict):  # not stamped before schema 12
            doc["metrics"] = {**doc["metrics"], "client_queueing": None}
        if isinstance(doc.get("backend_info"), dict):
            doc["backend_info"] = {**doc["backend_info"], "request_errors": None}
    if version < 13:
        doc = dict(doc, schema_version=13)
        if isinstance(doc.get("audit"), dict):  # every check applied to the runs audited before
            doc["audit"] = {"not_applicable": [], **doc["audit"]}
    if version < 14:
        doc = dict(doc, schema_version=14)
        if isinstance(doc.get("fidelity"), dict):  # one float output was compared before 14
            doc["fidelity"] = {**doc["fidelity"], "outputs": None}
    return doc


# The token metrics schema 9 added (hwbench.results.document.TOKEN_KEYS; kept here as data so
# that the store does not import the document builder).
_ADDED_IN_9 = ("ttft_ms", "tpot_ms", "tokens_per_second", "output_tokens", "inter_token_p99_ms",
               "max_stall_ms", "goodput", "token_bounds")


def _to_9(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 8 -> 9: no run before 9 timed tokens (no workload generated any): null."""
    out = dict(doc, schema_version=9)
    if isinstance(out.get("metrics"), dict):
        out["metrics"] = {**dict.fromkeys(_ADDED_IN_9), **out["metrics"]}
    if isinstance(out.get("backend_info"), dict):
        out["backend_info"] = {"streams": False, **out["backend_info"]}
    if isinstance(out.get("fidelity"), dict):
        out["fidelity"] = {"teacher_forced": None, **out["fidelity"]}
    if isinstance(out.get("workload_info"), dict):
        out["workload_info"] = {"generative": False, **out["workload_info"]}
    if isinstance(out.get("validated"), dict):
        f = out.get("fidelity")
        passed = f.get("passed") if isinstance(f, dict) else None
        out["validated"] = {"fidelity": None if passed is None else bool(passed),
                            **out["validated"]}
    return out


def _to_11(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 10 -> 11: no run before it ran on a fleet node, so its node is null."""
    out = dict(doc, schema_version=11)
    if isinstance(out.get("system"), dict):
        out["system"] = {**out["system"], "node": out["system"].get("node")}
    return out


def _to_2(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: the sections added in 2 were not measured, so they are null."""
    out = dict(doc)
    for key in _ADDED_IN_2:
        out.setdefault(key, None)
    out["schema_version"] = 2
    return out


def _to_3(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 -> 3: Server's completed samples per second follows from the recorded counts
    ((n - 1) / duration, as the load generator computes it); whether early stopping was met and
    the stale completions were not recorded, so they are null. Server never had an early-stopping
    latency estimate (schema 2 wrote 0 for it): null. Fidelity in schema 2 was judged against
    fixed bands, which its envelope now says (the bands as they were then)."""
    out = dict(doc, schema_version=3)
    m = out.get("metrics")
    if isinstance(m, dict):
        m = out["metrics"] = dict(m)
        n, d = m.get("completed_samples") or 0, m.get("duration_s") or 0
        server = out.get("scenario") == "server" and n > 1 and d > 0
        m.setdefault("completed_samples_per_second", (n - 1) / d if server else None)
        m["early_stopping"] = {**(m.get("early_stopping") or {}), "met": None}
        if out.get("scenario") == "server":
            m["early_stopping"]["latency_ms"] = None
        m.setdefault("stale_completions", None)
    f = out.get("fidelity")
    if isinstance(f, dict) and "envelope" not in f:
        out["fidelity"] = dict(f, envelope={
            "method": "fixed bands (schema 2, before envelopes were measured)",
            "measured_error": {}, "bounds": dict(_SCHEMA_2_BANDS)})
    return out


def _to_4(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 3 -> 4: the issue thread's busy-waiting was not counted: null."""
    out = dict(doc, schema_version=4)
    if isinstance(out.get("metrics"), dict):
        out["metrics"] = dict(out["metrics"])
        out["metrics"].setdefault("issue_spin_s", None)
    return out


# Fidelity's fixed bands as schema 2 judged with them (largest error / output scale per level).
_SCHEMA_2_BANDS = (("fp32", 1e-5), ("fp16", 1.5e-3), ("bf16", 2e-2), ("int8", 2e-1))


_COLUMNS = ("run_id", "created_utc", "workload", "scenario", "backend", "mode", "valid",
            "metric_name", "metric_value", "samples_per_second", "p90_ms", "p99_ms",
            "accuracy_passed", "system_fingerprint", "hostname", "path",
            # added for compare and history; an older index gains them by ALTER TABLE (NULL there)
            "config_hash", "setup_hash", "repeat_group", "watts", "energy_per_query_j",
            "accuracy_value",
            # generative workloads (llm): token throughput and p99 token latencies
            "tokens_per_second", "ttft_p99_ms", "tpot_p99_ms", "node")


def _row(run_dir: Path, result: dict[str, Any]) -> tuple:
    m = result.get("metrics") or {}
    lat = m.get("latency_ms") or {}
    acc = result.get("accuracy") or {}
    sm = m.get("scenario_metric") or {}
    return (result["run_id"], result["created_utc"], result["workload"], result["scenario"],
            result["backend"], result["mode"], int(bool(result["valid"])),
            sm.get("name"), sm.get("value"), m.get("samples_per_second"), lat.get("p90"),
            lat.get("p99"), None if not acc else int(bool(acc.get("passed"))),
            result["system"].get("fingerprint"), result["system"].get("hostname"), run_dir.name,
            config_hash(result), setup_hash(result), repeat_group(result),
            power_total(result).get("avg_w"), power_total(result).get("energy_per_query_j"),
            acc.get("value"), m.get("tokens_per_second"), (m.get("ttft_ms") or {}).get("p99"),
            (m.get("tpot_ms") or {}).get("p99"), node_name(result))


def node_name(result: dict[str, Any]) -> str | None:
    """The name of the fleet node a run ran on (None: not a fleet run)."""
    return ((result.get("system") or {}).get("node") or {}).get("name")


def _ensure_columns(db: sqlite3.Connection) -> None:
    db.execute(f"CREATE TABLE IF NOT EXISTS runs ({', '.join(_COLUMNS)}, PRIMARY KEY (run_id))")
    have = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
    for col in _COLUMNS:
        if col not in have:
            db.execute(f"ALTER TABLE runs ADD COLUMN {col}")


def index_run(root: Path, run_dir: Path, result: dict[str, Any]) -> None:
    """Adds one run to ``root/index.sqlite``, first adding any column an older index lacks."""
    with sqlite3.connect(root / INDEX_NAME, timeout=30) as db:
        _ensure_columns(db)
        db.execute(f"INSERT INTO runs ({', '.join(_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(_COLUMNS))})", _row(run_dir, result))
    # the with-block commits; close explicitly so no handle outlives the call
    db.close()


def list_runs(root: Path, **where: Any) -> list[dict[str, Any]]:
    """Rows of the index, newest first, filtered by equality on the given columns."""
    path = root / INDEX_NAME
    if not path.is_file():
        return []
    bad = set(where) - set(_COLUMNS)
    if bad:
        raise UsageError(f"unknown index column(s) {sorted(bad)}")
    clause = " AND ".join(f"{k} = ?" for k in where)
    sql = ("SELECT * FROM runs" + (f" WHERE {clause}" if clause else "")
           + " ORDER BY created_utc DESC, rowid DESC")  # rowid: runs started in the same second
    db = sqlite3.connect(path, timeout=30)
    try:
        with db:  # an index written by an older hwbench gains the newer columns first
            _ensure_columns(db)
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, tuple(where.values()))]
    finally:
        db.close()
