"""``hwbench history`` through the CLI on real runs in a real SQLite index; a regression is made
by copying a real run and worsening its figures (analysis_helpers.derive), since a machine cannot
be made slower on demand. Also: an index written before the analysis columns is migrated."""
from __future__ import annotations

import shutil
import sqlite3

import pytest

from analysis_helpers import derive, make_run, module_env
from cli_helpers import cli
from hwbench.analysis import history
from hwbench.results.store import INDEX_NAME, list_runs, load_result

TINY = ["--workload", "tiny", "--scenario", "offline", "--backend", "null",
        "--backend-opt", "service_time_us=200"]


@pytest.fixture(scope="module")
def four_runs(tmp_path_factory):
    mp = module_env(tmp_path_factory)
    root = tmp_path_factory.mktemp("history") / "runs"
    dirs = [make_run(root, *TINY) for _ in range(4)]
    mp.undo()
    return root, dirs


def test_history_of_real_runs(capsys, four_runs, tmp_path):
    root, dirs = four_runs
    code, out, err = cli(capsys, "history", "--root", str(root), "--workload", "tiny",
                         "--html", str(tmp_path / "h.html"))
    page = (tmp_path / "h.html").read_text()
    assert "<svg" in page and "headline metric over runs" in page and dirs[0].name in page
    assert all(d.name in out for d in dirs) and "rule:" in out
    assert out.count("needs 3 earlier valid runs") == 3
    # A shared machine may really slow the fourth run down, so its verdict is not asserted; a
    # fifth run at a hundredth of the slowest real figure regresses against that real history,
    # and the command says so and exits 5 (a regression).
    slowest = min(load_result(d)["metrics"]["scenario_metric"]["value"] for d in dirs)

    def collapsed(doc):
        doc["metrics"]["scenario_metric"]["value"] = slowest / 100
        doc["created_utc"] = "2999-01-01T00:00:00Z"
    copy_root = tmp_path / "runs"
    shutil.copytree(root, copy_root)  # the real runs and their index, left as they were
    derive(dirs[-1], copy_root, collapsed, "collapsed")
    code, out, err = cli(capsys, "history", "--root", str(copy_root), "--workload", "tiny")
    last = [line for line in out.splitlines() if "-collapsed" in line]
    assert len(last) == 1 and "PERFORMANCE REGRESSION" in last[0]
    assert code == 5 and "the latest run regressed" in out, err


def test_stable_history_is_not_flagged(capsys, four_runs, tmp_path):
    _, dirs = four_runs
    for i, value in enumerate((1000.0, 1040.0, 970.0, 1010.0, 965.0)):
        def at(doc, value=value, i=i):
            doc["metrics"]["scenario_metric"]["value"] = value
            doc["created_utc"] = f"2999-01-01T00:00:0{i}Z"
        derive(dirs[0], tmp_path / "runs", at, f"v{i}")
    code, out, _ = cli(capsys, "history", "--root", str(tmp_path / "runs"))
    assert code == 0 and "REGRESSION" not in out and out.count("-v") == 5


def _steady_series(source, root) -> None:
    """Three copies of `source` with headline values 1000, 1010 and 990, one second apart."""
    for i, value in enumerate((1000.0, 1010.0, 990.0)):
        def at(doc, value=value, i=i):
            doc["metrics"]["scenario_metric"]["value"] = value
            doc["created_utc"] = f"2999-01-01T00:00:0{i}Z"
        derive(source, root, at, f"v{i}")


def test_slow_latest_run_is_flagged(capsys, four_runs, tmp_path):
    root, dirs = four_runs
    copy_root = tmp_path / "runs"
    _steady_series(dirs[0], copy_root)

    def slower(doc):
        doc["metrics"]["scenario_metric"]["value"] = 700.0
        doc["created_utc"] = "2999-01-01T00:00:09Z"
    derive(dirs[0], copy_root, slower, "slow")
    code, out, _ = cli(capsys, "history", "--root", str(copy_root))
    assert code == 5
    last = out.strip().splitlines()[-3]
    assert "-slow" in last and "PERFORMANCE REGRESSION" in last
    assert "the latest run regressed" in out


def test_invalid_latest_run_is_not_judged(capsys, four_runs, tmp_path):
    _, dirs = four_runs
    copy_root = tmp_path / "runs"
    _steady_series(dirs[0], copy_root)

    def interrupted(doc):  # stopped early: far slower, and not valid
        doc["metrics"]["scenario_metric"]["value"] = 100.0
        doc["interrupted"], doc["valid"] = True, False
        doc["created_utc"] = "2999-01-01T00:00:09Z"
    derive(dirs[0], copy_root, interrupted, "cut")
    code, out, _ = cli(capsys, "history", "--root", str(copy_root))
    last = [line for line in out.splitlines() if "-cut" in line][0]
    assert code == 0 and "(invalid: not judged)" in last and "REGRESSION" not in out


def test_other_precision_is_another_configuration(capsys, four_runs, tmp_path):
    _, dirs = four_runs
    copy_root = tmp_path / "runs"
    for i, value in enumerate((1000.0, 1010.0, 990.0)):
        def at(doc, value=value, i=i):
            doc["metrics"]["scenario_metric"]["value"] = value
            doc["created_utc"] = f"2999-01-01T00:00:0{i}Z"
            del doc["settings"]["config"]["precision"]  # as a result written before precision
        derive(dirs[0], copy_root, at, f"v{i}")

    def fp16(doc):  # slower, as a lower precision can be on a CPU; not a regression of fp32
        doc["metrics"]["scenario_metric"]["value"] = 500.0
        doc["settings"]["config"]["precision"] = "fp16"
        doc["created_utc"] = "2999-01-01T00:00:09Z"
    derive(dirs[0], copy_root, fp16, "fp16")
    code, out, _ = cli(capsys, "history", "--root", str(copy_root))
    assert code == 0 and "REGRESSION" not in out and "1 other configuration(s)" in out
    assert "-fp16" in out and "-v0" not in out


def _row(value, acc=None, passed=None, valid=1):
    return {"valid": valid, "metric_name": "samples_per_second", "metric_value": value,
            "accuracy_value": acc, "accuracy_passed": passed}


def test_rule_ignores_noise_and_flags_accuracy():
    noisy = [_row(v) for v in (100, 104, 97, 101, 96.5)]  # below min but within 3 robust SD
    assert history.flags(noisy)[-1] == ""
    assert "PERFORMANCE" in history.flags([*noisy[:4], _row(80)])[-1]
    accs = [_row(100, 0.98, 1)] * 3 + [_row(100, 0.90, 0)]
    assert history.flags(accs)[-1] == "ACCURACY REGRESSION"
    assert history.flags([_row(100)] * 2 + [_row(1)])[-1].startswith("(needs 3")
    assert history.flags([_row(100)] * 3 + [_row(1, 0.5, 0, valid=0)])[-1] == history.INVALID


def test_latency_headline_regresses_upwards():
    rows = [dict(_row(v), metric_name="p90_latency_ms") for v in (1.0, 1.02, 0.99, 5.0)]
    assert "PERFORMANCE" in history.flags(rows)[-1]


def test_empty_index_is_bad_input(capsys, tmp_path):
    code, _, err = cli(capsys, "history", "--root", str(tmp_path))
    assert code == 2 and "no runs" in err


def test_old_index_gains_columns(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    old = ("run_id", "created_utc", "workload", "scenario", "backend", "mode", "valid",
           "metric_name", "metric_value", "samples_per_second", "p90_ms", "p99_ms",
           "accuracy_passed", "system_fingerprint", "hostname", "path")
    with sqlite3.connect(root / INDEX_NAME) as db:
        db.execute(f"CREATE TABLE runs ({', '.join(old)}, PRIMARY KEY (run_id))")
        db.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(old))})",
                   ("old-1", "2020-01-01T00:00:00Z", "tiny", "offline", "null", "performance", 1,
                    "samples_per_second", 5.0, 5.0, 1.0, 2.0, None, "fp", "host", "old-1"))
    db.close()
    assert list_runs(root)[0]["config_hash"] is None  # reading migrates, the old row reads NULL
    make_run(root, *TINY)
    rows = list_runs(root)
    assert [r["run_id"] for r in rows][1] == "old-1"
    assert rows[0]["config_hash"] and rows[0]["setup_hash"] and rows[0]["watts"] is None
