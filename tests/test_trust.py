"""Issue 12, items 1, 3, 4, 5, 7 and 8: figures and exit codes a user can trust. One test or more
per item, named after it; each fails on the code before the fix (see the commit messages)."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from analysis_helpers import derive, make_run
from cli_helpers import cli, run_json
from hwbench import errors
from hwbench.harness import loadgen as lgm
from hwbench.config import load_scenario
from hwbench.results.store import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]
NULL = ["--workload", "tiny", "--backend", "null"]


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (ties broken by position; enough to tell 1 from 0)."""
    ra, rb = np.argsort(np.argsort(a, kind="stable")), np.argsort(np.argsort(b, kind="stable"))
    return float(np.corrcoef(ra, rb)[0, 1])


def _one_line(code: int, err: str, expect_code: int = 2) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert code == expect_code and len(lines) == 1 and "Traceback" not in err, (code, err)
    return lines[0]


# --- item 1: Server's sample choice is independent of its arrival gaps ------------------------

def test_item1_server_sample_choice_is_independent_of_arrival_gaps(capsys, out_dir):
    """From samples.npz, as the issue measured it: the gap before each query against the sample
    it names. One shared 64-bit draw made the rank correlation 1.0000."""
    code, doc = run_json(capsys, out_dir, *NULL, "--scenario", "server", "--target-qps", "4000",
                         "--duration", "1", "--warmup", "0", "--min-queries", "2000")
    s = np.load(out_dir / doc["run_id"] / "samples.npz")
    assert len(s["sample_index"]) >= 2000
    gaps = np.diff(s["issue_ns"], prepend=0)
    rho = _rank_correlation(gaps, s["sample_index"])
    assert abs(rho) < 0.1, rho  # independent: |rho| ~ 1/sqrt(n) = 0.02


class _Inline:
    def __init__(self, lg):
        self.lg = lg

    def issue(self, ids, indices):
        self.lg.complete(ids)

    def flush(self):
        pass


class _Library:
    def load(self, indices):
        pass

    def unload(self, indices):
        pass


def _server(sample_seed: int, schedule_seed: int) -> dict:
    s = lgm.Settings()
    s.scenario = lgm.Scenario.Server
    s.min_duration_s, s.min_query_count = 0.0, 3000
    s.total_sample_count = s.performance_sample_count = 1000
    s.server_target_qps, s.latency_bound_s = 50000.0, 1.0
    s.sample_seed, s.schedule_seed = sample_seed, schedule_seed
    lg = lgm.LoadGen()
    out = lg.run(_Inline(lg), _Library(), s)
    rec = out["records"]
    return {"index": rec["index"], "offsets": rec["issue_ns"] - out["start_ns"]}


def test_item1_each_stream_follows_its_own_seed_only():
    """Sample choice changes with the sample seed alone, arrivals with the schedule seed alone,
    and adjacent seeds (what settings.py passes) give unrelated streams."""
    base, other_schedule, other_samples = _server(5, 6), _server(5, 7), _server(8, 6)
    assert np.array_equal(base["index"], other_schedule["index"])
    assert not np.array_equal(base["offsets"], other_schedule["offsets"])
    assert np.array_equal(base["offsets"], other_samples["offsets"])
    assert not np.array_equal(base["index"], other_samples["index"])
    for run in (base, _server(6, 6)):  # adjacent seeds, and equal ones
        assert abs(_rank_correlation(np.diff(run["offsets"], prepend=0), run["index"])) < 0.1


# --- item 3: a completion left over from an earlier run ---------------------------------------

def test_item3_a_stale_completion_is_counted_and_ignored():
    """The CLI's SUTs join their workers at the end of every pass, so a completion can only
    outlive its run with a SUT that keeps working after the run gave up on it: this one holds a
    sample past the first run's sample timeout and completes it during the second run."""
    lg = lgm.LoadGen()
    held = []

    class Holding(_Inline):
        def issue(self, ids, indices):
            if len(held) == 0 and self.calls == 3:
                held.append(ids.copy())  # never completed while its run is open
            else:
                self.lg.complete(ids)
            self.calls += 1
        calls = 0

    class LateWorker(_Inline):
        calls = 0

        def issue(self, ids, indices):
            if self.calls == 3:  # the first run's 4th sample, finished only now, lands while
                self.lg.complete(held.pop())  # this run's 4th is outstanding (same number)
            self.lg.complete(ids)
            self.calls += 1

    s = lgm.Settings()
    s.scenario = lgm.Scenario.SingleStream
    s.min_duration_s, s.min_query_count, s.sample_timeout_s = 0.0, 10, 0.2
    s.early_stopping = False
    s.total_sample_count = s.performance_sample_count = 20
    first = lg.run(Holding(lg), _Library(), s)
    assert not first["summary"].valid and held
    second = lg.run(LateWorker(lg), _Library(), s)
    m = second["summary"]
    assert not held
    # It used to complete this run's 4th sample, whose own completion then counted as a duplicate.
    assert m.valid, m.invalid_reasons
    assert second["stale_completions"] == 1
    assert m.completed_samples == m.issued_samples == 10


def test_item3_results_count_stale_completions(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, *NULL, "--scenario", "single-stream",
                         "--duration", "0.2", "--warmup", "0", "--min-queries", "70")
    assert doc["metrics"]["stale_completions"] == 0


# --- item 4: early stopping met, and Server's MLPerf v5 headline ------------------------------

@pytest.fixture(scope="module")
def failed_server(tmp_path_factory):
    """A Server run whose every query is over a 1 us bound: early stopping is applicable (enough
    queries) but not met."""
    from hwbench.cli import main

    root = tmp_path_factory.mktemp("trust") / "runs"
    code = main(["run", "--output", str(root), "--quiet", *NULL, "--scenario", "server",
                 "--target-qps", "2000", "--latency-bound-ms", "0.001", "--duration", "0.5",
                 "--warmup", "0", "--min-queries", "600"])
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    return code, run_dir


def test_item4_summary_says_early_stopping_not_met(failed_server):
    code, run_dir = failed_server
    text = (run_dir / "summary.txt").read_text()
    doc = json.loads((run_dir / "result.json").read_text())
    assert code == 3 and doc["valid"] is False
    assert doc["metrics"]["early_stopping"]["supported"] is True  # enough queries to judge
    assert "Early stopping satisfied: No" in text  # it printed "Yes": supported, not met
    assert doc["metrics"]["early_stopping"]["met"] is False
    # Server's early stopping judges a count, it has no latency estimate to print as 0
    assert doc["metrics"]["early_stopping"]["latency_ms"] is None
    assert "percentile estimate" not in text


def test_item4_server_reports_mlperf_v5_headline_beside_scheduled_qps(failed_server):
    _, run_dir = failed_server
    text = (run_dir / "summary.txt").read_text()
    doc = json.loads((run_dir / "result.json").read_text())
    m = doc["metrics"]
    assert doc["schema_version"] == SCHEMA_VERSION
    assert m["completed_samples_per_second"] == pytest.approx(
        (m["completed_samples"] - 1) / m["duration_s"], rel=1e-9)
    assert m["scenario_metric"]["name"] == "scheduled_qps"
    assert re.search(r"^Completed samples per second : [\d.]+ \(MLPerf v5", text, re.M)
    assert "Headline used : scheduled samples per second" in text


def test_item4_schema_2_results_are_migrated(capsys, failed_server, tmp_path):
    """An older result gains the Server headline from its own counts; what it did not record
    (early stopping met, stale completions) is null, not guessed."""
    _, run_dir = failed_server
    doc = json.loads((run_dir / "result.json").read_text())
    doc["schema_version"] = 2
    del doc["metrics"]["completed_samples_per_second"], doc["metrics"]["stale_completions"]
    del doc["metrics"]["early_stopping"]["met"]
    doc["metrics"]["early_stopping"]["latency_ms"] = 0.0  # what schema 2 wrote for Server
    (tmp_path / "result.json").write_text(json.dumps(doc))
    code, out, _ = cli(capsys, "show", str(tmp_path), "--json")
    m = json.loads(out)["metrics"]
    assert code == 0 and json.loads(out)["schema_version"] == SCHEMA_VERSION
    assert m["completed_samples_per_second"] == pytest.approx(
        (m["completed_samples"] - 1) / m["duration_s"])
    assert m["early_stopping"]["met"] is None and m["stale_completions"] is None
    assert m["early_stopping"]["latency_ms"] is None


# --- item 5: MLPerf's current minimum query counts --------------------------------------------

@pytest.mark.parametrize("scenario,extra", [
    ("single-stream", []),
    ("server", ["--target-qps", "2000", "--max-duration", "1"]),
])
def test_item5_mlperf_profile_uses_current_minimum_query_counts(capsys, out_dir, scenario, extra):
    """mlperf.conf sets no minimum for SingleStream and Server, so LoadGen's default of 100
    (test_settings.h) applies; early stopping judges the rest. 1,024 and 270,336 were v1's."""
    code, doc = run_json(capsys, out_dir, *NULL, "--scenario", scenario, "--profile", "mlperf",
                         "--duration", "0.2", "--warmup", "0", *extra)
    assert doc["settings"]["loadgen"]["min_query_count"] == 100
    assert not any("query count" in s for s in doc["settings"]["mlperf_shortfalls"])


def test_item5_multi_stream_and_offline_keep_their_current_minimums():
    assert load_scenario("multi-stream", "mlperf").min_query_count == 662
    assert load_scenario("offline", "mlperf").min_query_count == 24576


def test_item5_stream_min_duration_is_judged_at_the_last_issue():
    """MLPerf's MinDurationMet: SingleStream and MultiStream by the final query's issue time. A
    window whose last query was issued at 0.9 s and completed at 1.05 s is short of 1 s."""
    s = lgm.Settings()
    s.scenario = lgm.Scenario.SingleStream
    s.min_duration_s, s.min_query_count, s.early_stopping = 1.0, 1, False
    issue = np.array([0, 500_000_000, 900_000_000], dtype=np.int64)
    done = np.array([100_000_000, 600_000_000, 1_050_000_000], dtype=np.int64)
    m = lgm.analyze(s, np.zeros(3, np.uint64), np.arange(3, dtype=np.uint64), issue, done, 0)
    assert not m.meets_min_duration
    assert any("0.900 s measured to the last issue" in r for r in m.invalid_reasons)
    issue[-1] = 1_000_000_000
    m = lgm.analyze(s, np.zeros(3, np.uint64), np.arange(3, dtype=np.uint64), issue, done, 0)
    assert m.meets_min_duration


# --- item 7: one exit code per decision ---------------------------------------------------------

def _qualify_profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text('name = "never"\nworkload = "tiny"\nbackend = "null"\n'
                    '[runs.a]\nscenario = "single-stream"\nduration_s = 0.2\nwarmup_s = 0.0\n'
                    'min_query_count = 70\n'
                    '[[requirements]]\nkind = "latency"\nrun = "a"\npercentile = 90\n'
                    'max_ms = 0.000001\n')
    return path


def test_item7_qualify_fail_has_its_own_exit_code(capsys, tmp_path):
    code, out, err = cli(capsys, "qualify", "--profile", str(_qualify_profile(tmp_path)),
                         "--quiet", "--output", str(tmp_path / "runs"),
                         "--junit", str(tmp_path / "j.xml"))
    assert "Overall: FAIL" in out, out + err
    assert code == 4  # was 1, the code of an internal error
    assert code == errors.EXIT_QUALIFY_FAIL


def test_item7_history_regression_has_its_own_exit_code(capsys, tmp_path):
    src = make_run(tmp_path / "src", *NULL, "--scenario", "offline",
                   "--backend-opt", "service_time_us=200")
    root = tmp_path / "runs"
    for i, value in enumerate((1000.0, 1010.0, 990.0, 700.0)):
        def at(doc, value=value, i=i):
            doc["metrics"]["scenario_metric"]["value"] = value
            doc["created_utc"] = f"2999-01-01T00:00:0{i}Z"
        derive(src, root, at, f"v{i}")
    code, out, _ = cli(capsys, "history", "--root", str(root))
    assert "PERFORMANCE REGRESSION" in out.strip().splitlines()[-3]
    assert code == 5  # was 1, the code of an internal error
    assert code == errors.EXIT_REGRESSION


def test_item7_one_documented_table_for_every_command(capsys):
    codes = {name: v for name, v in vars(errors).items() if name.startswith("EXIT_")}
    assert len(set(codes.values())) == len(codes)  # no two decisions share a code
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Exit status"):]
    table = table[:table.index("\n## ", 3)]
    documented = {int(c) for c in re.findall(r"^\| `(\d+)` \|", table, re.M)}
    assert documented == set(codes.values())
    code, out, _ = cli(capsys, "--help")
    for value in codes.values():
        assert re.search(rf"^\s+{value}\b", out, re.M) or (
            6 <= value <= 8 and re.search(r"^\s+6-8\b", out, re.M)), value


# --- item 8: bad paths and small lies -----------------------------------------------------------

@pytest.fixture(scope="module")
def output_root(tmp_path_factory):
    from hwbench.cli import main

    root = tmp_path_factory.mktemp("glob") / "runs"
    for _ in range(2):
        assert main(["run", "--output", str(root), "--quiet", *NULL, "--scenario",
                     "single-stream", "--duration", "0.1", "--warmup", "0",
                     "--min-queries", "70"]) == 0
    return root


def test_item8_compare_over_a_glob_of_the_output_root(capsys, output_root):
    """``hwbench compare results/runs/*``: the glob also matches index.sqlite."""
    paths = sorted(str(p) for p in output_root.iterdir())
    assert any(p.endswith("index.sqlite") for p in paths)
    code, out, err = cli(capsys, "compare", *paths)
    line = _one_line(code, err)
    assert "index.sqlite is not a run directory" in line and "give a run directory" in line


@pytest.mark.parametrize("command", ["show", "report", "compare"])
@pytest.mark.parametrize("kind", ["index", "json-list", "missing", "empty-dir"])
def test_item8_every_command_refuses_a_path_that_is_not_a_run(capsys, output_root, tmp_path,
                                                              command, kind):
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    (tmp_path / "empty").mkdir()
    path = {"index": output_root / "index.sqlite", "json-list": listing,
            "missing": tmp_path / "nowhere", "empty-dir": tmp_path / "empty"}[kind]
    code, out, err = cli(capsys, command, str(path))
    assert "is not a run directory" in _one_line(code, err)


def test_item8_an_output_root_that_is_a_file_is_refused_before_measuring(capsys, tmp_path):
    path = tmp_path / "runs"
    path.write_text("not a directory")
    code, out, err = cli(capsys, "run", *NULL, "--scenario", "single-stream", "--duration",
                         "0.1", "--warmup", "0", "--quiet", "--output", str(path))
    assert "is a file: give a folder" in _one_line(code, err)  # was exit 1 after measuring
    assert path.read_text() == "not a directory"


def test_item8_summary_names_the_profile_that_ran(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, *NULL, "--scenario", "single-stream", "--profile",
                         "mlperf", "--duration", "0.2", "--warmup", "0")
    assert doc["settings"]["mlperf_shortfalls"]
    code, out, _ = cli(capsys, "show", str(out_dir / doc["run_id"]))
    line = [ln for ln in out.splitlines() if "MLPerf minimums" in ln][0]
    assert "not met (mlperf profile)" in line and "quick" not in line
    assert "min duration 0.2 s < MLPerf's 600 s" in line


def test_item8_python_requirement_covers_tomllib():
    """hwbench imports tomllib (3.11+) unconditionally, so it must not claim to run on 3.10."""
    from packaging.specifiers import SpecifierSet

    uses = [p for p in (ROOT / "hwbench").rglob("*.py") if "import tomllib" in p.read_text()]
    spec = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())
                        ["project"]["requires-python"])
    assert uses and "3.10" not in spec and "3.11" in spec
