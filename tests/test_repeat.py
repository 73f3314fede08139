"""Run-to-run statistics (checked against values worked by hand) and ``hwbench run --repeat N``
through the CLI on real runs; compare uses a series' spread for its ratio CI."""
from __future__ import annotations

import json
import math

import pytest

from analysis_helpers import FAST
from cli_helpers import cli
from hwbench import backends
from hwbench.results import spread as stats
from hwbench.backends.cpu import CpuBackend


def test_spread_t_interval():
    s = stats.spread([10.0, 12.0, 14.0])
    # mean 12, sd 2, t(2) = 4.303: half-width 4.303 * 2 / sqrt(3) = 4.9687
    assert s.median == 12.0 and s.min == 10.0 and s.max == 14.0
    assert s.ci95 == pytest.approx((12 - 4.9687, 12 + 4.9687), abs=1e-3)
    assert s.cv == pytest.approx(2 / 12)


def test_no_ci_below_three_runs():
    assert stats.spread([5.0, 6.0]).ci95 is None
    assert stats.spread([5.0]).cv is None and stats.spread([5.0]).ci95 is None
    assert stats.ratio(stats.spread([2.0, 2.0]), stats.spread([1.0, 1.0, 1.0]))[1] is None


def test_ratio_ci_and_noise():
    fast, slow = stats.spread([20.0, 21.0, 19.0]), stats.spread([10.0, 10.5, 9.5])
    r, ci = stats.ratio(fast, slow)
    assert r == pytest.approx(2.0) and ci[0] < 2.0 < ci[1] and ci[0] > 1.5
    assert not stats.within_noise(r, ci, None)
    r2, ci2 = stats.ratio(stats.spread([10.0, 13.0, 8.0]), stats.spread([10.0, 9.0, 12.0]))
    assert stats.within_noise(r2, ci2, None)
    assert stats.within_noise(1.03, None, 0.05) and not stats.within_noise(1.2, None, 0.05)


def test_t_quantiles_are_conservative_between_table_rows():
    assert stats.t95(11) == stats.t95(10) and stats.t95(100) == 1.96
    assert math.isclose(stats.t95(2), 4.303)


def test_run_repeat_series(capsys, out_dir):
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--scenario", "single-stream",
                         "--backend", "null", "--output", str(out_dir), *FAST, "--repeat", "3")
    assert code == 0, err
    assert "repeat: 3 runs of p90_latency_ms" in out and "95% CI of the mean" in out
    assert "run-to-run noise: CV" in out
    docs = sorted((json.loads((d / "result.json").read_text()) for d in out_dir.iterdir()
                   if d.is_dir()), key=lambda d: d["settings"]["repeat_index"])
    assert len(docs) == 3
    assert len({d["settings"]["repeat_group"] for d in docs}) == 1
    last = docs[-1]["repeat"]
    assert last["n"] == 3 and last["run_ids"] == [d["run_id"] for d in docs]
    assert last["left_out"] == 0 and "left out" not in out
    assert last["values"] == [d["metrics"]["scenario_metric"]["value"] for d in docs]
    assert last["min"] <= last["median"] <= last["max"] and len(last["ci95"]) == 2
    assert docs[0]["repeat"]["n"] == 1 and docs[0]["repeat"]["ci95"] is None


class SecondLoadFails(CpuBackend):
    """The real onnxruntime backend; the series' second run faults on its 40th batch."""

    name = "second-load-fails"
    loads = 0

    def load(self, model):
        super().load(model)
        type(self).loads += 1
        self.batches = 0

    def run(self, batch):
        self.batches += 1
        if type(self).loads == 2 and self.batches == 40:
            raise RuntimeError("simulated device fault")
        return super().run(batch)


def test_faulted_run_is_left_out_of_the_spread(capsys, out_dir, monkeypatch):
    real = backends.backend_class
    monkeypatch.setattr(backends, "backend_class", lambda name: SecondLoadFails
                        if name == SecondLoadFails.name else real(name))
    code, out, _ = cli(capsys, "run", "--workload", "tiny", "--scenario", "single-stream",
                       "--backend", SecondLoadFails.name, "--output", str(out_dir), *FAST,
                       "--warmup", "0", "--repeat", "3")
    docs = sorted((json.loads((d / "result.json").read_text()) for d in out_dir.iterdir()
                   if d.is_dir()), key=lambda d: d["settings"]["repeat_index"])
    assert code == 3 and len(docs) == 3 and docs[1]["validated"]["performance"] is not True
    last = docs[-1]["repeat"]
    assert last["n"] == 2 and last["left_out"] == 1
    assert last["run_ids"] == [docs[0]["run_id"], docs[2]["run_id"]]
    assert last["values"] == [d["metrics"]["scenario_metric"]["value"] for d in (docs[0], docs[2])]
    assert "repeat: 2 runs" in out and "left out: 1 run(s)" in out


def test_compare_uses_repeats(capsys, out_dir):
    base = ["run", "--workload", "digits", "--scenario", "single-stream", "--mode", "both",
            "--backend", "cpu", "--output", str(out_dir), *FAST, "--repeat", "3"]
    assert cli(capsys, *base)[0] == 0
    assert cli(capsys, *base, "--backend-opt", "threads=1")[0] == 0
    code, out, err = cli(capsys, "compare", "--root", str(out_dir))
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("cpu")]
    assert len(rows) == 2 and all("   3  " in row for row in rows)
    assert "no CI" not in rows[1] and "[" in rows[1]


def test_repeat_zero_is_bad_input(capsys, out_dir):
    code, _, err = cli(capsys, "run", "--workload", "tiny", "--output", str(out_dir), "--repeat", "0")
    assert code == 2 and "--repeat" in err
