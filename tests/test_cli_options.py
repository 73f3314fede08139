"""Run options that shape the measured window and its inputs, each observed in what the run
wrote (result.json, samples.npz), through the CLI: --max-duration, --performance-samples,
--seed and --profile."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import cli, run_json

ROOT = Path(__file__).resolve().parents[1]
NULL = ["--workload", "tiny", "--backend", "null", "--warmup", "0"]


def _samples(out_dir: Path, doc: dict) -> np.lib.npyio.NpzFile:
    return np.load(out_dir / doc["run_id"] / "samples.npz")


@pytest.mark.parametrize("scenario", ["single-stream", "server"])
def test_max_duration_cuts_the_window_short(capsys, out_dir, scenario):
    """A 20 s minimum window capped at 0.4 s ends at the cap, and is invalid for it."""
    code, doc = run_json(capsys, out_dir, *NULL, "--scenario", scenario, "--duration", "20",
                         "--max-duration", "0.4", "--target-qps", "500",
                         "--backend-opt", "service_time_us=200")
    assert doc["settings"]["loadgen"]["max_duration_s"] == 0.4
    assert 0.35 <= doc["metrics"]["duration_s"] < 2.0
    assert code == 3 and any(r.startswith("too short:") and "minimum is 20.000 s" in r
                             for r in doc["invalid_reasons"])


def test_performance_samples_bound_the_samples_issued(capsys, out_dir):
    """With 16 performance samples, the measured queries use exactly those 16 (of tiny's 256)."""
    code, doc = run_json(capsys, out_dir, *NULL, "--scenario", "single-stream", "--duration",
                         "0.3", "--min-queries", "200", "--performance-samples", "16")
    assert code == 0, doc["invalid_reasons"]
    assert doc["settings"]["loadgen"]["performance_sample_count"] == 16
    used = np.unique(_samples(out_dir, doc)["sample_index"])
    assert len(used) == 16 and used.max() < doc["settings"]["loadgen"]["total_sample_count"]


def test_seed_fixes_the_samples_and_the_arrivals(capsys, out_dir):
    """The same seed gives the same Server schedule and samples; another seed, others."""
    def server(seed: str) -> tuple[np.ndarray, np.ndarray]:
        code, doc = run_json(capsys, out_dir, *NULL, "--scenario", "server", "--target-qps",
                             "2000", "--duration", "0.3", "--min-queries", "300",
                             "--latency-bound-ms", "50", "--seed", seed)
        z = _samples(out_dir, doc)
        order = np.argsort(z["query"])
        return (z["issue_ns"][order] - z["issue_ns"].min())[:300], z["sample_index"][order][:300]

    (t1, s1), (t2, s2), (t3, s3) = server("11"), server("11"), server("12")
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(t1, t3) and not np.array_equal(s1, s3)


@pytest.mark.parametrize("scenario", ["single-stream", "multi-stream", "server", "offline"])
def test_mlperf_profile_applies_the_scenarios_minimums(capsys, out_dir, scenario):
    """--profile mlperf judges the window against the scenario file's MLPerf minimums; quick
    uses its own, and says the MLPerf ones were not met by the settings."""
    spec = tomllib.loads((ROOT / "scenarios" / f"{scenario}.toml").read_text())
    args = [*NULL, "--scenario", scenario, "--max-duration", "0.3", "--expected-qps", "1000",
            "--target-qps", "1000", "--latency-bound-ms", "50"]
    code, doc = run_json(capsys, out_dir, *args, "--profile", "mlperf")
    lg = doc["settings"]["loadgen"]
    assert lg["min_duration_s"] == spec["min_duration_s"] == 600.0
    assert lg["min_query_count"] == spec["min_query_count"]
    assert doc["settings"]["meets_mlperf_minimums"] and not doc["settings"]["mlperf_shortfalls"]
    assert code == 3 and any("minimum is 600.000 s" in r for r in doc["invalid_reasons"])
    code, doc = run_json(capsys, out_dir, *args, "--profile", "quick")
    lg = doc["settings"]["loadgen"]
    assert lg["min_duration_s"] == spec["profiles"]["quick"]["min_duration_s"] < 600.0
    assert not doc["settings"]["meets_mlperf_minimums"] and doc["settings"]["mlperf_shortfalls"]


def test_spin_reaches_the_load_generator_and_the_setup_hash(capsys, out_dir):
    """--spin-us is recorded where the run's settings are, and a run with another spin is
    another setup of the same configuration (its history is its own)."""
    from hwbench.results.identity import config_hash, setup_hash
    docs = {}
    for us in ("0", "20"):
        code, docs[us] = run_json(capsys, out_dir, *NULL, "--scenario", "server", "--target-qps",
                                  "2000", "--duration", "0.3", "--min-queries", "300",
                                  "--latency-bound-ms", "50", "--spin-us", us)
        assert code == 0, docs[us]["invalid_reasons"]
        assert docs[us]["settings"]["loadgen"]["spin_us"] == float(us)
        assert docs[us]["settings"]["config"]["spin_us"] == float(us)
    assert config_hash(docs["0"]) == config_hash(docs["20"])
    assert setup_hash(docs["0"]) != setup_hash(docs["20"])


@pytest.mark.parametrize("value, expect", [("-1", "--spin-us must be >= 0"),
                                           ("20000", "--spin-us must be <= 10000")])
def test_spin_out_of_range_is_a_one_line_error(capsys, out_dir, value, expect):
    code, out, err = cli(capsys, "run", *NULL, "--output", str(out_dir), "--spin-us", value)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err
