"""``hwbench compare`` through the CLI, on real runs made here (digits with validated accuracy,
tiny without). Power figures cannot be measured on this machine: the tests that need them copy a
real run and set a contract-shaped ``power`` section (see analysis_helpers.derive)."""
from __future__ import annotations

import csv
import io
import json

import pytest

from analysis_helpers import POWER, derive, make_run, module_env
from cli_helpers import cli

DIGITS = ["--workload", "digits", "--scenario", "single-stream", "--mode", "both"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    mp = module_env(tmp_path_factory)
    root = tmp_path_factory.mktemp("compare") / "runs"
    made = {"cpu": make_run(root, *DIGITS, "--backend", "cpu"),
            "cpu1": make_run(root, *DIGITS, "--backend", "cpu", "--backend-opt", "threads=1"),
            "tiny": make_run(root, "--workload", "tiny", "--scenario", "single-stream",
                             "--backend", "null"),
            "tiny_b4": make_run(root, "--workload", "tiny", "--scenario", "single-stream",
                                "--backend", "null", "--batch-size", "4")}
    mp.undo()
    return root, made


def test_two_backends_table_csv_html_markdown(capsys, runs, tmp_path):
    root, r = runs
    code, out, err = cli(capsys, "compare", str(r["cpu"]), str(r["cpu1"]),
                         "--csv", str(tmp_path / "c.csv"), "--html", str(tmp_path / "c.html"),
                         "--markdown", str(tmp_path / "c.md"))
    assert code == 0, err
    assert "digits / single-stream" in out
    assert "cpu@" in out and "cpu[threads=1]@" in out and "PASS 0.9833" in out
    assert "baseline" in out and "no power measurement" in out and "--repeat 3" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "c.csv").read_text())))
    assert [row["system / backend"].split("@")[0] for row in rows] == ["cpu", "cpu[threads=1]"]
    assert float(rows[0]["vs baseline"]) == 1.0 and float(rows[1]["samples/s"]) > 0
    page = (tmp_path / "c.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "cpu[threads=1]" in page
    assert "src=" not in page and "<link" not in page  # self-contained
    assert "| cpu[threads=1]@" in (tmp_path / "c.md").read_text()


def test_query_on_index_and_baseline(capsys, runs):
    root, r = runs
    code, out, _ = cli(capsys, "compare", "--root", str(root), "--workload", "digits",
                       "--baseline", "threads=1")
    assert code == 0
    assert "relative to cpu[threads=1]@" in out


def test_refuses_unvalidated_accuracy_unless_forced(capsys, runs):
    root, r = runs
    code, out, err = cli(capsys, "compare", str(r["tiny"]), str(r["tiny"]))
    assert code == 2 and "accuracy not validated" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = cli(capsys, "compare", "--force", str(r["tiny"]), str(r["tiny_b4"]))
    assert code == 0 and "* forced" in out and "accuracy not validated" in out


def test_refuses_different_settings(capsys, runs):
    _, r = runs
    code, _, err = cli(capsys, "compare", str(r["tiny"]), str(r["tiny_b4"]))
    assert code == 2 and "batch_size 4 vs 1" in err
    code, _, err = cli(capsys, "compare", str(r["tiny"]), str(r["cpu"]))
    assert code == 2 and "different workloads or scenarios" in err
    code, out, _ = cli(capsys, "compare", "--force", str(r["tiny"]), str(r["cpu"]))
    assert code == 0 and "tiny / single-stream" in out and "digits / single-stream" in out


def test_power_and_price_columns(capsys, runs, tmp_path):
    root, r = runs

    def with_power(doc):
        doc["power"] = POWER
    powered = derive(r["cpu1"], tmp_path, with_power, "power")
    host = json.loads((r["cpu"] / "result.json").read_text())["system"]["hostname"]
    code, out, err = cli(capsys, "compare", str(r["cpu"]), str(powered), "--price",
                         f"{host}=2000")
    assert code == 0, err
    assert "samples/s per k$" in out and "J/query" in out and "500.0" in out
    systems = tmp_path / "systems.toml"
    systems.write_text('[systems.other-host]\nprice_usd = 100\n')
    code, out, _ = cli(capsys, "compare", str(r["cpu"]), str(r["cpu1"]), "--systems", str(systems))
    assert code == 0 and "not shown, no price for" in out


def test_precision_is_compared_and_labelled(capsys, runs, tmp_path):
    _, r = runs

    def at(precision, instances=1):
        def change(doc):
            doc["settings"]["config"].update(precision=precision, instances=instances)
        return change
    fp32 = derive(r["cpu"], tmp_path, at("fp32"), "fp32")
    int8 = derive(r["cpu"], tmp_path, at("int8", 2), "int8")
    code, _, err = cli(capsys, "compare", str(fp32), str(int8))
    assert code == 2 and "precision int8 vs fp32" in err and "--force" in err
    code, out, err = cli(capsys, "compare", "--force", str(fp32), str(int8))
    assert code == 0, err
    assert "cpu[instances=2,precision=int8]@" in out
    assert "cpu@" in out and "precision=fp32" not in out  # defaults stay out of the label


def test_results_without_the_later_settings_hash_as_their_defaults():
    from hwbench.results.identity import comparability_key, config_hash, setup_hash
    old = {"workload": "digits", "backend": "cpu", "settings": {"config": {"batch_size": 1}}}
    new = {**old, "settings": {"config": {"batch_size": 1, "precision": "fp32", "instances": 1,
                                          "batch_timeout_us": 0.0, "spin_us": 20.0}}}
    assert comparability_key(old)["precision"] == "fp32"
    assert (config_hash(old), setup_hash(old)) == (config_hash(new), setup_hash(new))
    for change in ({"precision": "int8"}, {"instances": 2}, {"batch_timeout_us": 500.0},
                   {"spin_us": 0.0}):
        other = {**new, "settings": {"config": {**new["settings"]["config"], **change}}}
        assert setup_hash(other) != setup_hash(new), change
    int8 = {**new, "settings": {"config": {**new["settings"]["config"], "precision": "int8"}}}
    two = {**new, "settings": {"config": {**new["settings"]["config"], "instances": 2}}}
    assert config_hash(int8) != config_hash(new) and config_hash(two) == config_hash(new)


@pytest.mark.parametrize("args, fragment", [
    (["--price", "box"], "SYSTEM=USD"),
    (["--price", "box=-3"], "positive number"),
    (["--baseline", "nothing-like-this"], "matches none"),
])
def test_bad_input_one_line(capsys, runs, args, fragment):
    _, r = runs
    code, _, err = cli(capsys, "compare", str(r["cpu"]), str(r["cpu1"]), *args)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_empty_query_and_single_run(capsys, runs, tmp_path):
    root, r = runs
    code, _, err = cli(capsys, "compare", "--root", str(tmp_path), "--workload", "digits")
    assert code == 2 and "no runs" in err
    code, _, err = cli(capsys, "compare", str(r["cpu"]))
    assert code == 2 and "at least two runs" in err


def test_export_never_overwrites(capsys, runs, tmp_path):
    _, r = runs
    target = tmp_path / "c.csv"
    target.write_text("keep")
    code, _, err = cli(capsys, "compare", str(r["cpu"]), str(r["cpu1"]), "--csv", str(target))
    assert code == 2 and "already exists" in err and target.read_text() == "keep"


def test_readme_deciding_block(capsys, tmp_path, monkeypatch):
    """The README's 'Deciding with results' commands, in order, against a private output root.
    The qualify line runs a 10-minute soak: its profile is parsed in test_qualify instead."""
    from test_packaging import ROOT
    text = (ROOT / "README.md").read_text().split("## Deciding with results")[1].split("\n\n")[1]
    cmds = [line.split("#")[0].split()[1:] for line in text.splitlines()]
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    for args in cmds:
        if args[0] == "run":
            args = [*args, "--quiet", "--output", str(root)]
        elif args[0] in ("compare", "history"):
            args = [*args, "--root", str(root)]
        elif args[0] == "report":
            args = ["report", str(next(p for p in root.iterdir() if p.is_dir()))]
        else:
            assert args[:2] == ["qualify", "--profile"] and (ROOT / args[2]).is_file()
            continue
        code, out, err = cli(capsys, *args)
        assert code == 0, (args, err)
    assert (tmp_path / "compare.html").is_file() and (tmp_path / "compare.csv").is_file()
