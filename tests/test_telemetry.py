"""The telemetry sampler's alignment to the measured window, what a run reports on a machine
without power sensors, Jetson rails from a planted tree, and bad telemetry options."""
from __future__ import annotations

import numpy as np
import pytest

from cli_helpers import FAST, cli, run_json
from hwbench import telemetry
from hwbench.results.summary import summary_table
from hwbench.telemetry import power
from hwbench.telemetry.base import Channel, Layout, Source
from hwbench.telemetry.jetson import JetsonSource
from telemetry_planted import SECOND, SteppedClock, jetson_rail, rapl_zone, sampled

METRICS = {"completed_samples": 40, "completed_queries": 40, "samples_per_second": 10.0}


class PlantedWatts(Source):
    """A power reading that follows a list the test planted: the input the window cut works on
    (a real sensor's value cannot be chosen)."""

    name = "planted"
    kind = "wall"

    def __init__(self, watts: list[float]) -> None:
        self.watts, self.i = watts, 0

    def open(self) -> Layout:
        return Layout([Channel("planted", "wall", "whole", False, "planted", "none")])

    def read(self) -> list[float]:
        self.i += 1
        return [self.watts[self.i - 1]]


def test_only_the_measured_window_counts():
    # 100 W during warm-up and analysis, 10 W while measuring: the window sees 10 W only.
    watts = [100.0] * 3 + [10.0] * 5 + [100.0] * 3
    track = sampled(PlantedWatts(watts), [i * SECOND for i in range(11)], SteppedClock())
    (e,) = power.channel_results(track, 3 * SECOND, 7 * SECOND, METRICS)
    assert e["valid"] and e["energy_j"] == 40.0 and e["avg_w"] == 10.0 and e["peak_w"] == 10.0
    assert e["energy_per_sample_j"] == 1.0 and e["samples_per_s_per_w"] == 1.0


def test_too_few_readings_in_the_window_is_invalid_with_the_reason():
    track = sampled(PlantedWatts([5.0, 5.0]), [0, 10 * SECOND], SteppedClock())
    (e,) = power.channel_results(track, SECOND, 2 * SECOND, METRICS)
    assert not e["valid"] and "raise --telemetry-hz" in e["invalid_reason"]


def test_run_without_sensors_reports_each_source_missing_and_measures_cpu(capsys, out_dir,
                                                                          tmp_path):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "single-stream", *FAST, "--telemetry-hz", "50",
                         "--rapl-root", str(tmp_path / "no-rapl"),
                         "--jetson-root", str(tmp_path / "no-jetson"))
    assert code == 0
    p, t = doc["power"], doc["telemetry"]
    assert {e["name"].split(":")[0] for e in p["sources"]} == set(telemetry.names())
    for e in p["sources"]:
        if not e["name"].startswith("nvml"):  # a GPU machine has NVML
            assert not e["available"] and e["reason"] and e["energy_j"] is None
    if not any(e["available"] for e in p["sources"]):
        assert p["total"] is None and "no power source" in p["total_note"]
    assert 0 < t["cpu_util_pct"]["mean"] <= 100 and t["peak_rss_bytes"] > 10 * 2**20
    # The sampler's own cost is measured (one thread: within one core); how small it is, is a
    # benchmark's claim (bench/telemetry_overhead.py), not a unit test's on a shared machine.
    assert t["process_cpu_pct_of_core"]["mean"] > 0 and 0 <= t["overhead_pct_of_core"] <= 100
    # Readings bracket the window: one before its start, one after its end.
    tl = np.load(out_dir / doc["run_id"] / "telemetry.npz")
    times, end = tl["system.t_ns"], tl["window_ns"][1]
    assert times[0] < 0 and times[-1] > end and np.all(np.diff(times) > 0)
    assert end == round(doc["metrics"]["duration_s"] * 1e9)
    table = summary_table(doc)
    assert "power rapl" in table and "unavailable: no powercap tree" in table
    assert "CPU utilisation" in table


def test_planted_rapl_tree_through_the_cli(capsys, out_dir, tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 123, 1_000_000)
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "single-stream", *FAST, "--power-source", "rapl",
                         "--rapl-root", str(tmp_path))
    (e,) = doc["power"]["sources"]  # only the source asked for
    assert code == 0 and e["name"] == "rapl:package-0" and e["valid"] and e["requested"]
    assert e["energy_j"] == 0.0  # the planted counter did not move
    assert doc["power"]["total"]["sources"] == ["rapl:package-0"]


def test_no_power_measures_telemetry_only(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "single-stream", *FAST, "--no-power")
    assert code == 0 and doc["power"] is None and doc["telemetry"]["peak_rss_bytes"] > 0


def test_jetson_rails_and_the_board_total(tmp_path):
    jetson_rail(tmp_path, 1, "VDD_IN", 5000, 2000)
    jetson_rail(tmp_path, 2, "VDD_CPU_GPU_CV", 5000, 800)
    jetson_rail(tmp_path, 3, "NC", 0, 0)
    track = sampled(JetsonSource(str(tmp_path)), [i * SECOND for i in range(5)], SteppedClock())
    entries = power.channel_results(track, SECOND, 3 * SECOND, METRICS)
    assert [(e["name"], e["energy_j"]) for e in entries] == [("jetson:VDD_IN", 20.0),
                                                           ("jetson:VDD_CPU_GPU_CV", 8.0)]
    total, _ = power.total(entries, 2.0, METRICS)
    assert total["sources"] == ["jetson:VDD_IN"] and total["energy_j"] == 20.0  # rails not added


@pytest.mark.parametrize("args,expect", [
    (["--telemetry-hz", "-1"], "--telemetry-hz must be >= 0"),
    (["--telemetry-hz", "0", "--ptd", "127.0.0.1:9"], "turns sampling off"),
    (["--telemetry-hz", "5000"], "--telemetry-hz must be <= 1000"),
    (["--no-power", "--ptd", "127.0.0.1:9"], "--no-power contradicts"),
    (["--power-source", "ptdaemon"], "add --ptd HOST:PORT"),
    (["--ptd", "analyzer"], "write it as HOST:PORT"),
    (["--power-source", "watts"], "invalid choice"),
    (["--power-source", "rapl", "--rapl-root", "/nonexistent"], "power source rapl is unavailable"),
])
def test_bad_telemetry_options_are_one_line_errors(capsys, out_dir, args, expect):
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--backend", "null",
                         "--output", str(out_dir), *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err
    assert not out_dir.exists()


def test_timeline_gives_watts_for_counters_and_power_readings():
    from hwbench.telemetry.sampler import Track
    from hwbench.telemetry.stats import timeline

    class Planted(Source):
        name = "planted"

    layout = Layout([Channel("joules", "cpu-package", "part", counter=True, method="", expected_error=""),
                     Channel("watts", "gpu", "part", counter=False, method="", expected_error="")],
                    stats=["load"])
    track = Track(Planted(), layout, times=[1_000, 1_000 + SECOND // 2, 1_000 + SECOND],
                  rows=[[10.0, 40.0, 0.1], [15.0, 42.0, 0.2], [25.0, 44.0, 0.3]])
    cols = timeline([track], start_ns=1_000, window_ns=SECOND)
    np.testing.assert_array_equal(cols["planted.t_ns"], [0, SECOND // 2, SECOND])
    w = cols["planted.joules.watts"]
    assert np.isnan(w[0]) and w[1:].tolist() == [10.0, 20.0]  # 5 J and 10 J per half second
    assert cols["planted.watts.watts"].tolist() == [40.0, 42.0, 44.0]
    assert "planted.load.watts" not in cols


def test_power_total_without_completed_samples_still_prints():
    """Ctrl-C right after the window opened: watts and energy are known but no sample completed,
    so the per-sample energy is None; the summary table prints after result.json was written."""
    from hwbench.telemetry.rows import power_rows
    total = {"sources": ["rapl:package-0"], "avg_w": 20.0, "energy_j": 0.5,
             "energy_per_sample_j": None, "energy_per_query_j": None, "samples_per_s_per_w": None}
    rows = dict(power_rows({"sources": [], "total": total}))
    assert rows["power total"] == "20.00 W avg, 0.500 J (rapl:package-0)"
    total["energy_per_sample_j"] = 0.0125
    assert "0.0125 J/sample" in dict(power_rows({"sources": [], "total": total}))["power total"]
