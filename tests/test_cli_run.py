"""End-to-end `hwbench run` through the CLI, every scenario, with `cpu` and `null`."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from cli_helpers import FAST, cli, run_json
from hwbench import backends

SCENARIO_ARGS = {
    "single-stream": [],
    "multi-stream": ["--min-queries", "700"],
    "server": ["--target-qps", "300", "--latency-bound-ms", "50", "--min-queries", "700"],
    "offline": [],  # expected QPS calibrated
}


@pytest.mark.parametrize("backend", ["cpu", "null"])
@pytest.mark.parametrize("scenario", list(SCENARIO_ARGS))
def test_every_scenario_end_to_end(capsys, out_dir, scenario, backend):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--scenario", scenario,
                         "--backend", backend, *FAST, *SCENARIO_ARGS[scenario])
    assert code == 0, doc["invalid_reasons"]
    # fidelity is checked when the backend computes (null computes nothing)
    assert doc["valid"] and doc["validated"] == {"performance": True, "accuracy": None,
                                              "fidelity": None if backend == "null" else True}
    m = doc["metrics"]
    assert m["completed_samples"] == m["issued_samples"] > 0
    assert m["latency_ms"]["p50"] <= m["latency_ms"]["p99"] <= m["latency_ms"]["max"]
    assert doc["accuracy"] is None and "not validated" in doc["accuracy_note"]
    run_dir = out_dir / doc["run_id"]
    assert {p.name for p in run_dir.iterdir()} == {"result.json", "summary.txt", "samples.npz",
                                                  "telemetry.npz"}
    assert json.loads((run_dir / "result.json").read_text())["run_id"] == doc["run_id"]
    cols = np.load(run_dir / "samples.npz")
    assert len(cols["issue_ns"]) == m["issued_samples"]
    assert np.all(cols["complete_ns"] >= cols["issue_ns"])
    summary = (run_dir / "summary.txt").read_text()
    assert "Result is : VALID (performance only: accuracy not validated)" in summary
    assert "Status : PERFORMANCE VALID" in summary and "90.00 percentile latency (ns)" in summary
    with sqlite3.connect(out_dir / "index.sqlite") as db:
        rows = db.execute("SELECT scenario, backend, valid FROM runs WHERE run_id = ?",
                          (doc["run_id"],)).fetchall()
    assert rows == [(scenario, backend, 1)]


def test_result_document_fields(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "cpu", *FAST,
                         "--scenario", "single-stream", "--backend-opt", "threads=1")
    for key in ("schema_version", "run_id", "workload", "scenario", "backend", "mode", "valid",
                "invalid_reasons", "metrics", "accuracy", "settings", "system"):
        assert key in doc
    assert set(doc["metrics"]["latency_ms"]) == {"min", "mean", "p50", "p90", "p95", "p97",
                                                  "p99", "p99.9", "max"}
    sys_ = doc["system"]
    assert sys_["cpu_logical_cores"] >= 1 and sys_["memory_bytes"] > 0 and sys_["python"]
    assert "onnxruntime" in sys_["packages"]
    assert doc["backend_info"]["options"]["threads"] == 1
    assert doc["settings"]["meets_mlperf_minimums"] is False
    assert doc["settings"]["mlperf_shortfalls"]


def test_runs_are_never_overwritten(capsys, out_dir):
    ids = {run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null", *FAST,
                    "--scenario", "single-stream")[1]["run_id"] for _ in range(3)}
    assert len(ids) == 3
    assert len([p for p in out_dir.iterdir() if p.is_dir()]) == 3


def test_summary_table_and_progress(capsys, out_dir):
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--backend", "null", *FAST,
                         "--scenario", "single-stream", "--output", str(out_dir),
                         "--duration", "1.2")
    assert code == 0
    assert "VALID" in out and "latency p50 / p90 / p99" in out and "written to" in out
    assert "samples completed" in err  # progress goes to stderr


def test_json_prints_only_the_document(capsys, out_dir):
    code, out, err = cli(capsys, "run", "--json", "--workload", "tiny", "--backend", "null",
                         *FAST, "--scenario", "offline", "--output", str(out_dir))
    assert json.loads(out)["scenario"] == "offline"


def test_accuracy_mode_runs_every_sample(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "cpu",
                         "--scenario", "offline", "--mode", "both", *FAST,
                         "--expected-qps", "2000")
    assert "not validated" in doc["accuracy_note"]
    acc = np.load(out_dir / doc["run_id"] / "samples_accuracy.npz")
    assert sorted(acc["sample_index"].tolist()) == list(range(1024))


def test_find_peak_reports_each_step(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "server", "--mode", "find-peak", "--duration", "0.2", "--warmup", "0",
                         "--min-queries", "700", "--latency-bound-ms", "25",
                         "--backend-opt", "service_time_us=2000", "--target-qps", "100")
    fp = doc["find_peak"]
    assert len(fp["steps"]) >= 3
    # one FIFO worker at 2 ms per sample saturates at 500 QPS; the 25 ms bound leaves room for a
    # shared machine's scheduling jitter at the low rates
    assert fp["peak_qps"] is not None and 100 <= fp["peak_qps"] < 500
    assert any(not s["valid"] for s in fp["steps"]) and any(s["valid"] for s in fp["steps"])


def test_show_prints_a_finished_run(capsys, out_dir):
    _, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null", *FAST,
                      "--scenario", "single-stream")
    code, out, _ = cli(capsys, "show", str(out_dir / doc["run_id"]))
    assert code == 0 and doc["run_id"] in out and "p50 / p90 / p99" in out


def test_list_shows_backends_and_usability(capsys):
    code, out, _ = cli(capsys, "list")
    assert code == 0
    for word in ("resnet50", "tiny", "single-stream", "multi-stream", "server", "offline"):
        assert word in out
    # One row a backend in the Backends table: its name, then whether it is usable here.
    rows = {line.split()[0]: line.split()[1] for line in
            out.split("\nBackends\n")[1].split("\n\n")[0].splitlines()[2:]}
    assert rows["cpu"] == "usable" and rows["null"] == "usable"  # both always run here
    # The GPU backends have no NVIDIA GPU in CI; their row must say so, with the reason below.
    for name in ("cuda", "tensorrt"):
        usable = backends.backend_class(name).availability().usable
        assert rows[name] == ("usable" if usable else "unusable")
        if not usable:
            assert f"{name}:\n  not usable here: " in out


def test_null_service_time_sets_latency(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "single-stream", *FAST,
                         "--backend-opt", "service_time_us=2000")
    assert 2.0 <= doc["metrics"]["latency_ms"]["min"] < 2.5


def test_find_peak_stops_at_its_floor_when_nothing_is_valid(capsys, out_dir):
    # 2 ms a sample against a 1 ms bound: no rate is valid; the search halves from 400 QPS down
    # to its floor (1/8) and stops there instead of running ever slower steps.
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "server", "--mode", "find-peak", "--duration", "0.2",
                         "--warmup", "0", "--min-queries", "30", "--latency-bound-ms", "1",
                         "--backend-opt", "service_time_us=2000", "--target-qps", "400")
    fp = doc["find_peak"]
    assert code == 3 and fp["peak_qps"] is None
    assert [s["target_qps"] for s in fp["steps"]] == [400, 200, 100, 50]
    assert any("down to 50.0 stayed valid" in r for r in doc["invalid_reasons"])
