"""Runs written by an earlier hwbench still load: tests/fixtures/main_runs holds three tiny
single-stream cpu runs and their index.sqlite, written by main before the house was rearranged.
show, compare, report and history read them (from a copy: reading an index may add columns)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import cli

FIXTURE = Path(__file__).parent / "fixtures" / "main_runs"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "runs"))


def _runs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def test_show_reads_an_old_run(capsys, root):
    for run in _runs(root):
        code, out, _ = cli(capsys, "show", str(run))
        assert code == 0 and "PERFORMANCE VALID" in out and "tiny / single-stream" in out


def test_compare_reads_an_old_index(capsys, root):
    code, out, err = cli(capsys, "compare", "--root", str(root), "--force")
    assert code == 0, err
    assert "cpu@" in out


def test_history_reads_an_old_index(capsys, root):
    code, out, err = cli(capsys, "history", "--root", str(root))
    assert code == 0, err
    assert all(run.name in out for run in _runs(root))


def test_report_reads_an_old_run(capsys, root, tmp_path):
    page = tmp_path / "report.html"
    code, out, err = cli(capsys, "report", str(_runs(root)[0]), "--out", str(page))
    assert code == 0, err
    html = page.read_text()
    assert _runs(root)[0].name in html and "Latency" in html
