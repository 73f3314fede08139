"""A soak's drift: the trend test's false-alarm rate and power on planted series, its windows on
records made here, and whole soaks with the null backend slowing down on purpose (its
``slowdown_pct``, a real code path) and onnxruntime holding steady."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import cli
from hwbench.analysis import history
from hwbench.results import drift
from hwbench.results.store import SCHEMA_VERSION, load_result


def test_mann_kendall_matches_the_formula():
    mk = drift.mann_kendall([1.0, 2.0, 3.0, 4.0, 5.0])
    # S = 10 pairs all rising; Var = n(n-1)(2n+5)/18 = 5*4*15/18; z = (S - 1) / sqrt(Var)
    assert mk["s"] == 10 and mk["z"] == pytest.approx(9 / np.sqrt(5 * 4 * 15 / 18))
    assert mk["sen_slope"] == 1.0 and mk["p_rising"] < 0.05 < mk["p_falling"]
    tied = drift.mann_kendall([1.0, 1.0, 1.0, 1.0])
    assert tied["s"] == 0 and tied["z"] == 0 and tied["p_rising"] == 0.5


def _steady_or_drifting(rng, slope, windows=30):
    """Three series of one soak as a run gives them: throughput (CV 2%), p50 and p99."""
    t = np.arange(windows)
    qps = 1000 * (1 - slope * t / (windows - 1)) * rng.normal(1, 0.02, windows)
    p50 = 2.0 * rng.normal(1, 0.03, windows)
    p99 = 5.0 * rng.lognormal(0, 0.08, windows)
    alpha = drift.FALSE_ALARM / 3
    return any(drift.judge_series(name, v, worse, alpha)["flagged"]
               for name, v, worse in (("samples_per_second", qps, "falling"),
                                      ("p50_ms", p50, "rising"), ("p99_ms", p99, "rising")))


def test_steady_soaks_are_flagged_at_most_at_the_stated_rate_and_drift_is_caught():
    rng = np.random.default_rng(11)
    steady = np.mean([_steady_or_drifting(rng, 0.0) for _ in range(1000)])
    assert steady <= drift.FALSE_ALARM
    planted = np.mean([_steady_or_drifting(rng, 0.10) for _ in range(300)])
    assert planted >= 0.99  # throughput 10% lower by the end of the run
    # Significant but too small to matter: a 2% decline over many windows is not a finding.
    slow = drift.judge_series("samples_per_second", 1000 * (1 - 0.02 * np.linspace(0, 1, 200)),
                              "falling", 0.01)
    assert slow["p"] < 1e-6 and not slow["flagged"]


def test_windows_are_cut_by_completion_time():
    ns = 1_000_000_000
    done = np.array([0.1, 0.2, 0.5, 1.1, 1.2, 1.3, 1.4, 2.05, 0.3]) * ns
    cols = {"issue_ns": (done - 0.05 * ns).astype(np.int64),
            "complete_ns": np.append(done[:-1], -1).astype(np.int64),  # the last never came
            "agrees": np.array([1, 1, 0, 1, 1, 1, -1, 1, 0])}
    ws = drift.windows(cols, 1.0, offline=False)
    assert [w["completed"] for w in ws] == [3, 4]  # the partial last window is dropped
    assert ws[0]["p50_ms"] == pytest.approx(50.0) and ws[0]["agreement"] == pytest.approx(2 / 3)
    assert ws[1]["agreement"] == 1.0  # the unknown answer is left out
    assert drift.windows(cols, 1.0, offline=True)[0]["p99_ms"] is None


def test_history_flags_a_slow_decline_no_single_run_shows():
    rows = [{"valid": 1, "metric_name": "samples_per_second", "metric_value": v,
             "accuracy_value": None, "accuracy_passed": None}
            for v in (100, 99.5, 99, 98, 97.5, 96.5, 96, 95, 94.2)]
    marks = history.flags(rows)
    assert "DRIFT" in marks[-1] and "REGRESSION" not in marks[-1]
    flat = [dict(r, metric_value=v) for r, v in zip(rows, (100, 98, 101, 99, 100, 97, 102, 99,
                                                           98.5))]
    assert "DRIFT" not in history.flags(flat)[-1]


SOAK = ["--no-power", "--quiet", "--scenario", "single-stream", "--soak-minutes", "0.2",
        "--window-s", "1", "--warmup", "0.2"]


def test_a_soak_that_slows_down_is_flagged(capsys, tmp_path):
    code, out, err = cli(capsys, "run", "--json", "--output", str(tmp_path), *SOAK,
                         "--workload", "digits", "--backend", "null",
                         "--backend-opt", "service_time_us=300",
                         "--backend-opt", "slowdown_pct=10")
    doc = json.loads(out)
    d = doc["drift"]
    assert d["flagged"], d["tests"]
    # The median is what a shared machine disturbs least; throughput per window swings with
    # whatever else runs (measured here while other work ran: 1,064 to 2,536 samples/s).
    p50 = next(t for t in d["tests"] if t["series"] == "p50_ms")
    assert p50["flagged"] and p50["relative_change"] >= drift.MIN_CHANGE
    assert "computes nothing" in d["note"]  # the null backend's answers are not compared
    assert load_result(tmp_path / doc["run_id"])["drift"]["flagged"] is True


def test_a_steady_soak_is_not_flagged_and_its_answers_agree(capsys, tmp_path):
    code, out, err = cli(capsys, "run", "--json", "--output", str(tmp_path), *SOAK,
                         "--workload", "digits", "--backend", "cpu", "--mode", "both")
    doc = json.loads(out)
    d = doc["drift"]
    assert len(d["windows"]) >= drift.MIN_WINDOWS and d["flagged"] is False, d["tests"]
    assert {t["series"] for t in d["tests"]} == {"samples_per_second", "p50_ms", "p99_ms",
                                                  "agreement"}
    assert all(w["agreement"] == 1.0 for w in d["windows"])
    assert doc["settings"]["loadgen"]["min_duration_s"] == pytest.approx(12.0)


@pytest.mark.parametrize("args, words", [
    (("--soak-minutes", "1", "--duration", "5"), "not both"),
    (("--soak-minutes", "-1"), "--soak-minutes must be > 0"),
    (("--soak-minutes", "1", "--pipeline", "both"), "soak the path you deploy"),
])
def test_bad_soak_settings_are_one_line_errors(capsys, tmp_path, args, words):
    code, _, err = cli(capsys, "run", "--output", str(tmp_path), "--workload", "digits",
                       "--backend", "null", *args)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_results_before_schema_8_have_no_drift(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"schema_version": 7, "run_id": "r"}))
    doc = load_result(tmp_path)
    assert doc["schema_version"] == SCHEMA_VERSION and doc["drift"] is None


def test_the_report_plots_a_soak(capsys, tmp_path):
    code, out, _ = cli(capsys, "run", "--json", "--output", str(tmp_path), *SOAK,
                       "--workload", "digits", "--backend", "null",
                       "--backend-opt", "service_time_us=300", "--soak-minutes", "0.15")
    doc = json.loads(out)
    page = tmp_path / "report.html"
    code, _, err = cli(capsys, "report", str(tmp_path / doc["run_id"]), "--out", str(page))
    assert code == 0, err
    text = page.read_text()
    assert "Drift over the soak" in text and "throughput per 1 s window" in text


def test_qualify_judges_a_soak_for_drift():
    from hwbench.analysis import qualify
    from hwbench.analysis.profile import Requirement
    req = Requirement("no_drift", "soak")
    base = {"run_id": "r", "drift": None}
    assert not qualify.judge(req, base).passed  # not a soak: not measured, never a pass
    steady = drift.analyse({"issue_ns": np.arange(0, 10**10, 10**7),
                            "complete_ns": np.arange(0, 10**10, 10**7) + 10**6}, 1.0, False)
    verdict = qualify.judge(req, dict(base, drift=steady))
    assert steady["flagged"] is False and verdict.passed and "drift: none" in verdict.evidence
    slowing = dict(steady, flagged=True, tests=[dict(steady["tests"][0], flagged=True)])
    assert not qualify.judge(req, dict(base, drift=slowing)).passed
