"""Server's arrival processes (--arrivals): the schedules drawn in ext/ (no timing), the verdict per
window for non-stationary arrivals, and the one-line refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import cli, run_json
from hwbench.config import RunConfig, load_scenario
from hwbench.harness import arrivals
from hwbench.harness import loadgen as lgm
from hwbench.harness import settings
from hwbench.results.identity import config_hash
from hwbench.results.store import SCHEMA_VERSION, load_result
from hwbench.workloads import create

NULL = ["--workload", "tiny", "--backend", "null", "--scenario", "server", "--warmup", "0"]


def _server(**kw) -> lgm.Settings:
    s = lgm.Settings()
    s.scenario = lgm.Scenario.Server
    s.latency_bound_s = 1.0
    s.server_target_qps = 1000.0
    s.min_query_count = 200_000
    s.min_duration_s = 0.0
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_poisson_is_the_schedule_it_always_was():
    s = _server()
    np.testing.assert_array_equal(lgm.arrival_schedule(s),
                                  lgm.server_schedule(1000.0, 200_000, 0.0, s.schedule_seed))


@pytest.mark.parametrize("cv", [0.5, 2.0, 4.0])
def test_gamma_gaps_have_the_requested_mean_rate_and_cv(cv):
    gaps = np.diff(lgm.arrival_schedule(_server(arrivals=lgm.Arrivals.Gamma, gamma_cv=cv)))
    gaps = gaps / 1e9
    assert 1 / gaps.mean() == pytest.approx(1000.0, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)


def test_gamma_is_seeded_and_independent_of_the_other_streams():
    a = lgm.arrival_schedule(_server(arrivals=lgm.Arrivals.Gamma, gamma_cv=2.0))
    b = lgm.arrival_schedule(_server(arrivals=lgm.Arrivals.Gamma, gamma_cv=2.0))
    c = lgm.arrival_schedule(_server(arrivals=lgm.Arrivals.Gamma, gamma_cv=2.0,
                                     schedule_seed=99))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:1000], c[:1000])
    # The sample seed does not move the schedule.
    d = lgm.arrival_schedule(_server(arrivals=lgm.Arrivals.Gamma, gamma_cv=2.0, sample_seed=7))
    np.testing.assert_array_equal(a, d)


def test_onoff_keeps_the_mean_rate_and_is_burstier_than_poisson():
    s = _server(arrivals=lgm.Arrivals.OnOff, onoff_on_s=0.02, onoff_off_s=0.08, onoff_ratio=20.0)
    t = lgm.arrival_schedule(s) / 1e9
    assert len(t) / t[-1] == pytest.approx(1000.0, rel=0.05)
    counts = np.histogram(t, bins=np.arange(0, t[-1], 0.01))[0]
    assert counts.var() / counts.mean() > 3  # Poisson counts have variance = mean


def test_ramp_rate_follows_the_line_then_holds():
    s = _server(arrivals=lgm.Arrivals.Ramp, ramp_from_qps=1000.0, ramp_to_qps=5000.0,
                ramp_over_s=10.0, min_query_count=0, min_duration_s=14.0)
    t = lgm.arrival_schedule(s) / 1e9
    per_s = np.histogram(t, bins=np.arange(0, 15))[0]
    expect = [1000 + 4000 * (k + 0.5) / 10 for k in range(10)] + [5000] * 4
    np.testing.assert_allclose(per_s[:14], expect, rtol=0.08)


def test_a_replayed_trace_is_scheduled_exactly_as_recorded(tmp_path, capsys):
    times = [0.0, 0.0015, 0.002, 0.25, 0.2500004, 0.6, 0.9, 1.25]
    path = tmp_path / "trace.csv"
    path.write_text("t,sample\n" + "".join(f"{t!r},{i}\n" for i, t in enumerate(times)))
    expect = np.rint(np.array(times) * 1e9).astype(np.int64)
    cfg = RunConfig(workload="tiny", scenario="server", backend="null", arrivals=str(path))
    s = settings.build(cfg, load_scenario("server", "quick"), create("tiny"))
    np.testing.assert_array_equal(lgm.arrival_schedule(s), expect)
    # ... and the run records exactly those scheduled issue times.
    code, doc = run_json(capsys, tmp_path / "out", *NULL, "--arrivals", str(path))
    assert code == 0, doc["invalid_reasons"]
    z = np.load(tmp_path / "out" / doc["run_id"] / "samples.npz")
    issue = np.sort(z["issue_ns"])
    np.testing.assert_array_equal(issue - issue[0], expect)
    assert doc["latency_windows"]["arrivals"]["trace_arrivals"] == len(times)


def test_gaps_and_scaling_to_a_target_rate(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("gap\n0\n0.5\n0.25\n0.25\n")  # arrivals at 0, 0.5, 0.75, 1.0: 3 per second
    spec = arrivals.parse(str(path))
    assert spec.trace.offsets_ns == (0, 500_000_000, 750_000_000, 1_000_000_000)
    assert arrivals.trace_offsets(spec.trace, None) == list(spec.trace.offsets_ns)
    assert arrivals.trace_offsets(spec.trace, 6.0) == [0, 250_000_000, 375_000_000, 500_000_000]


def test_non_stationary_arrivals_are_judged_per_window(tmp_path, capsys):
    """A ramp into overload: the late windows' p99 exceeds the bound and each such window is
    named. (The null backend's fixed 400 us service time serves 2,500 samples/s at most.)"""
    code, doc = run_json(capsys, tmp_path, *NULL, "--arrivals", "ramp:from=500,to=4000,over_s=1",
                         "--duration", "1.5", "--window-s", "0.25", "--latency-bound-ms", "5",
                         "--backend-opt", "service_time_us=400")
    lw = doc["latency_windows"]
    assert lw["judged"] and lw["arrivals"]["kind"] == "ramp"
    over = [w for w in lw["windows"] if w["over_bound"]]
    assert code == 3 and over
    assert lw["windows"][0]["over_bound"] is False  # 500/s is well within the capacity
    assert any(r.startswith(f"window {over[0]['start_s']:g}-") for r in doc["invalid_reasons"])
    assert doc["metrics"]["early_stopping"]["supported"] is False  # off: not a steady rate


def test_poisson_windows_are_reported_not_judged_and_hashes_keep(tmp_path, capsys):
    code, doc = run_json(capsys, tmp_path, *NULL, "--target-qps", "2000", "--duration", "0.6",
                         "--window-s", "0.2", "--min-queries", "1000", "--latency-bound-ms", "50")
    assert code == 0, doc["invalid_reasons"]
    lw = doc["latency_windows"]
    assert not lw["judged"] and len(lw["windows"]) >= 3
    assert sum(w["queries"] for w in lw["windows"]) == doc["metrics"]["completed_queries"]
    assert all(w["over_bound"] is None for w in lw["windows"])
    gamma = json.loads(json.dumps(doc))
    gamma["latency_windows"]["arrivals"] = {"kind": "gamma", "cv": 2.0, "stationary": True}
    no_windows = dict(doc, latency_windows=None)  # a result from before schema 5
    assert config_hash(doc) == config_hash(no_windows) != config_hash(gamma)


@pytest.mark.parametrize("args, expect", [
    (["--arrivals", "gamma"], "--arrivals gamma needs cv"),
    (["--arrivals", "gamma:cv=0"], "cv must be in"),
    (["--arrivals", "onoff:on_s=1,off_s=1,ratio=0.5"], "ratio"),
    (["--arrivals", "ramp:from=0,to=0,over_s=1"], "not both 0"),
    (["--arrivals", "burst"], "unknown --arrivals 'burst'"),
    (["--arrivals", "missing.csv"], "no such trace file"),
    (["--arrivals", "onoff:on_s=1,off_s=1,ratio=2", "--mode", "find-peak"],
     "needs a steady arrival rate"),
    (["--arrivals", "gamma:cv=2", "--scenario", "offline"], "use --scenario server"),
    (["--window-s", "0"], "--window-s must be > 0"),
])
def test_bad_arrivals_are_one_line_errors(capsys, tmp_path, args, expect):
    code, out, err = cli(capsys, "run", *NULL, "--output", str(tmp_path / "out"), *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("body, expect", [
    ("time\n0\n1\n", "no 't' or 'gap' column"),
    ("t\n0\n2\n1\n", "must not go backwards"),
    ("t\n0\nsoon\n", "not a number"),
])
def test_bad_traces_are_one_line_errors(capsys, tmp_path, body, expect):
    path = tmp_path / "trace.csv"
    path.write_text(body)
    code, _, err = cli(capsys, "run", *NULL, "--output", str(tmp_path / "out"),
                       "--arrivals", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err


def test_schema_4_results_gain_no_windows(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"schema_version": 4, "run_id": "r"}))
    doc = load_result(tmp_path)
    assert doc["schema_version"] == SCHEMA_VERSION and doc["latency_windows"] is None
