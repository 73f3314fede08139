"""Client queueing: each sample's wait for a free worker, stamped with the load generator's
clock, and the client-bound verdict in the result."""
from __future__ import annotations

import json

import numpy as np

from cli_helpers import run_json
from hwbench.harness.queueing import StartLog, summary
from hwbench.results.store import SCHEMA_VERSION, load_result


def test_start_stamps_join_the_records_by_sequence_number_ignoring_the_run_tag():
    log = StartLog()
    tag = 3 << 32
    log.stamp(np.array([tag | 5, tag | 6], dtype=np.uint64))
    log.stamp(np.array([tag | 1, tag | 99], dtype=np.uint64))  # 1: warm-up; 99: past the window
    col = log.column(first_seq=4, n=4)  # records are sequence numbers 4..7
    assert col[0] == 0 and col[3] == 0  # 4 and 7 never taken
    assert col[1] > 0 and col[1] == col[2]  # one stamp per batch
    assert col.dtype == np.int64


def test_summary_says_client_bound_when_the_wait_is_the_larger_part():
    issue = np.array([0, 10, 20, 30], dtype=np.int64) * 1_000_000
    start = issue + np.array([8, 9, 0, 7]) * 1_000_000  # waited 8, 9, 0, 7 ms
    start[2] = 0  # never taken: left out
    done = start + 2_000_000  # each call took 2 ms
    s = summary({"issue_ns": issue, "complete_ns": done}, start)
    assert s["samples"] == 3 and s["client_bound"] is True
    assert s["p50_ms"] == 8.0 and s["in_call_p50_ms"] == 2.0 and s["mean_ms"] == 8.0
    light = summary({"issue_ns": issue, "complete_ns": issue + 3_000_000}, issue + 1_000_000)
    assert light["client_bound"] is False and light["p50_ms"] == 1.0
    assert summary({"issue_ns": issue, "complete_ns": np.zeros(4, np.int64)}, start) is None


def _server(capsys, out_dir, qps: str):
    return run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                    "--backend-opt", "service_time_us=4000", "--scenario", "server",
                    "--target-qps", qps, "--latency-bound-ms", "1000", "--duration", "0.5",
                    "--warmup", "0", "--min-queries", "20", "--no-power")


def test_an_overloaded_worker_is_client_bound_and_a_light_load_is_not(capsys, out_dir):
    # 4 ms per sample on one worker: 1,000 queries/s arrive four times faster than it serves.
    _, doc = _server(capsys, out_dir, "1000")
    q = doc["metrics"]["client_queueing"]
    assert q["samples"] > 0 and q["client_bound"] is True, q
    assert q["p50_ms"] > q["in_call_p50_ms"]
    _, doc = _server(capsys, out_dir, "20")
    q = doc["metrics"]["client_queueing"]
    assert q["client_bound"] is False, q


def test_a_schema_11_result_migrates_with_client_queueing_and_request_errors_null(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps(
        {"schema_version": 11, "run_id": "r", "metrics": {"samples_per_second": 1.0},
         "backend_info": {"name": "cpu"}}))
    doc = load_result(tmp_path)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["metrics"]["client_queueing"] is None
    assert doc["backend_info"]["request_errors"] is None
