"""hwbench audit: compliance checks catch a system under test that cheats, and pass honest ones.
The cheats are the null backend's `cheat` option: real code paths, not mocks of a backend."""
from __future__ import annotations

import json

import numpy as np

from cli_helpers import cli
from hwbench.errors import EXIT_AUDIT_FAIL, EXIT_COMPARE_REFUSED
from hwbench.results.store import SCHEMA_VERSION, load_result

DIGITS_NULL = ["--workload", "digits", "--backend", "null", "--no-power", "--quiet",
               "--duration", "1"]


def _audit(capsys, out, *args):
    code, stdout, err = cli(capsys, "audit", "--json", "--output", str(out), *args)
    doc = json.loads(stdout)
    return code, doc, {c["name"].split(" ")[0]: c for c in doc["audit"]["checks"]}


def test_a_backend_that_caches_is_caught_by_the_caching_audit(capsys, tmp_path):
    code, doc, checks = _audit(capsys, tmp_path, *DIGITS_NULL, "--backend-opt", "cheat=cache")
    assert code == EXIT_AUDIT_FAIL and not doc["audit"]["passed"]
    e = checks["caching"]["evidence"]
    assert not checks["caching"]["passed"] and e["median_ratio"] > 3, e
    assert checks["sampled"]["passed"]  # a cache answers correctly: only the caching check sees it


def test_a_backend_that_returns_zeros_under_load_is_caught_by_sampled_accuracy(capsys, tmp_path):
    code, doc, checks = _audit(capsys, tmp_path, *DIGITS_NULL,
                               "--backend-opt", "cheat=zeros_under_load")
    assert code == EXIT_AUDIT_FAIL
    e = checks["sampled"]["evidence"]
    assert not checks["sampled"]["passed"] and e["mismatched"] > 0 and e["max_error"] > 0.5, e


def test_an_honest_backend_passes_both_checks_and_exits_0(capsys, tmp_path):
    """The null backend doing a fixed 300 us of work per sample, whatever the sample: honest.
    (A real backend's passes are as short here and as exposed to whatever else the machine
    runs: docs/audit.md gives figures measured on onnxruntime.)"""
    code, doc, checks = _audit(capsys, tmp_path, *DIGITS_NULL,
                               "--backend-opt", "service_time_us=300")
    assert code == 0, (doc["invalid_reasons"], doc["audit"])
    assert checks["caching"]["passed"] and checks["sampled"]["passed"]
    seeds = checks["alternate"]
    assert seeds["passed"] and len(seeds["evidence"]["alternate"]) == 3, seeds
    low, high = seeds["evidence"]["interval"]
    assert low <= seeds["evidence"]["alternate_median"] <= high
    assert checks["sampled"]["evidence"]["samples_compared"] >= 50
    # The audit is a run like any other: written, indexed, and readable later.
    assert load_result(tmp_path / doc["run_id"])["audit"]["passed"] is True


def test_compare_require_audit_refuses_unaudited_runs(capsys, tmp_path):
    code, doc, _ = _audit(capsys, tmp_path, *DIGITS_NULL, "--backend-opt", "service_time_us=300")
    assert code == 0, doc["audit"]
    code, _, err = cli(capsys, "run", "--output", str(tmp_path), *DIGITS_NULL, "--scenario",
                       "offline", "--mode", "both")
    assert code == 0, err
    code, out, err = cli(capsys, "compare", "--root", str(tmp_path), "--require-audit", "--force")
    assert code == EXIT_COMPARE_REFUSED and "did not pass an audit" in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    code, out, err = cli(capsys, "compare", "--root", str(tmp_path), "--force")
    assert code == 0, err  # without the flag the same runs compare


def test_schema_5_results_are_unaudited(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"schema_version": 5, "run_id": "r"}))
    doc = load_result(tmp_path)
    assert doc["schema_version"] == SCHEMA_VERSION and doc["audit"] is None


def test_alternate_seed_verdict_has_its_stated_false_alarm_rate_and_catches_a_tuned_seed():
    """TEST05's verdict on planted figures: passes of one process (CV 2%, as a run's throughput
    varies here) land inside the interval at least 95% of the time (measured: 98.5%); a system
    30% faster on the configured seeds than on any other is caught (three pairs catch a 20%
    advantage 93% of the time, 15% only 80%: docs/audit.md)."""
    from hwbench.audit import judge_seeds
    rng = np.random.default_rng(5)
    honest = [judge_seeds(list(rng.normal(1000, 20, 3)), list(rng.normal(1000, 20, 3)))[0]
              for _ in range(2000)]
    assert np.mean(honest) >= 0.95
    tuned = [judge_seeds(list(rng.normal(1300, 26, 3)), list(rng.normal(1000, 20, 3)))[0]
             for _ in range(2000)]
    assert np.mean(tuned) <= 0.05
    passed, evidence = judge_seeds([100.0, 101.0, 99.0], [80.0, 81.0, 79.0])
    assert not passed and evidence["alternate_median"] == 80.0
    assert evidence["interval"][0] <= 97.0  # never narrower than 3% each side
