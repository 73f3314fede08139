"""RAPL through a powercap tree made by the test: energy over the window must come out exactly,
across counter wrap-arounds."""
from __future__ import annotations

import os

import pytest

from hwbench.telemetry import power
from hwbench.telemetry.base import SourceUnavailable
from hwbench.telemetry.rapl import RaplSource
from telemetry_planted import SECOND, SteppedClock, rapl_zone, sampled, write

METRICS = {"completed_samples": 300, "completed_queries": 150, "samples_per_second": 100.0}


def _tree(tmp_path, package_start_uj: int, range_uj: int):
    pkg = rapl_zone(tmp_path, "intel-rapl:0", "package-0", package_start_uj, range_uj,
                    max_power_uw=125_000_000)
    dram = rapl_zone(tmp_path, "intel-rapl:0/intel-rapl:0:1", "dram", 0, range_uj)
    rapl_zone(tmp_path, "intel-rapl:0/intel-rapl:0:0", "core", 0, range_uj)  # part of package
    return pkg, dram


def test_energy_across_one_wrap_is_exact(tmp_path):
    # The package draws 10 W (10 J per second) and its counter wraps between t=0 and t=1 s;
    # DRAM draws 2 W. The window is [0.5 s, 3.5 s]: 30 J and 6 J exactly.
    range_uj = 60_000_000
    pkg, dram = _tree(tmp_path, range_uj - 3_000_000, range_uj)

    def plant(i, _t):
        write(pkg, (range_uj - 3_000_000 + i * 10_000_000) % range_uj)
        write(dram, i * 2_000_000)

    track = sampled(RaplSource(str(tmp_path)), [i * SECOND for i in range(5)], SteppedClock(),
                    plant)
    assert [c.name for c in track.layout.channels] == ["rapl:package-0", "rapl:dram-0"]
    package, dram_e = power.channel_results(track, SECOND // 2, 7 * SECOND // 2, METRICS)
    assert package["valid"] and package["energy_j"] == pytest.approx(30.0, abs=1e-12)
    assert package["energy_per_sample_j"] == pytest.approx(0.1, abs=1e-12)
    assert package["energy_per_query_j"] == pytest.approx(0.2, abs=1e-12)
    assert package["avg_w"] == pytest.approx(10.0) and package["peak_w"] == pytest.approx(10.0)
    assert package["samples_per_s_per_w"] == pytest.approx(10.0)
    assert dram_e["energy_j"] == pytest.approx(6.0, abs=1e-12)
    assert "wraps at 60 J, at most every 0.48 s" in package["method"]
    total, note = power.total([package, dram_e], 3.0, METRICS)
    assert total["sources"] == ["rapl:package-0", "rapl:dram-0"]
    assert total["energy_j"] == pytest.approx(36.0, abs=1e-12)


def test_many_wraps_over_a_run_are_all_counted(tmp_path):
    # 25 J range, 10 J per reading: the counter wraps four times in ten readings.
    pkg, _ = _tree(tmp_path, 0, 25_000_000)
    track = sampled(RaplSource(str(tmp_path)), [i * SECOND for i in range(11)], SteppedClock(),
                    lambda i, _t: write(pkg, (i * 10_000_000) % 25_000_000))
    package = power.channel_results(track, 0, 10 * SECOND, METRICS)[0]
    assert package["energy_j"] == pytest.approx(100.0, abs=1e-12)


def test_window_not_bracketed_is_invalid_with_the_reason(tmp_path):
    _tree(tmp_path, 0, 25_000_000)
    track = sampled(RaplSource(str(tmp_path)), [SECOND, 2 * SECOND], SteppedClock())
    package = power.channel_results(track, 0, 2 * SECOND, METRICS)[0]
    assert not package["valid"] and package["energy_j"] is None
    assert "do not cover the measured window" in package["invalid_reason"]


def test_missing_tree_is_unavailable_with_the_reason(tmp_path):
    with pytest.raises(SourceUnavailable, match="no powercap tree"):
        RaplSource(str(tmp_path / "none")).open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceUnavailable, match="no RAPL zones"):
        RaplSource(str(tmp_path / "empty")).open()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: no permission error to see")
def test_root_only_counter_is_unavailable_with_the_reason(tmp_path):
    pkg, _ = _tree(tmp_path, 0, 25_000_000)
    pkg.chmod(0)
    with pytest.raises(SourceUnavailable, match="readable only by root"):
        RaplSource(str(tmp_path)).open()
