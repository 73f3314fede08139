"""NVML energy, power and GPU state through a stand-in ``pynvml`` module.

There is no GPU or NVIDIA driver here, so the module is simulated: GPU 0 has the total-energy
counter, refreshed every 100 ms as real GPUs refresh it; GPU 1 has none, so its power reading is
integrated. The source's real code paths run on both."""
from __future__ import annotations

import sys
import types

import pytest

from hwbench.telemetry import power, stats
from hwbench.telemetry.base import SourceUnavailable
from hwbench.telemetry.nvml import NvmlSource
from telemetry_planted import SteppedClock, sampled

MS = 1_000_000
GPU0_W, GPU1_W = 250.0, 70.0
METRICS = {"completed_samples": 100, "completed_queries": 100, "samples_per_second": 50.0}


def fake_pynvml(clock: SteppedClock) -> types.ModuleType:
    nv = types.ModuleType("pynvml")
    nv.NVMLError = type("NVMLError", (Exception,), {})
    nv.NVML_CLOCK_SM, nv.NVML_TEMPERATURE_GPU = 1, 0
    nv.shutdowns = 0

    def energy_mj(h):
        if h == 1:
            raise nv.NVMLError("Not Supported")
        refreshed_ms = clock.ns // (100 * MS) * 100  # the counter moves every 100 ms
        return int(GPU0_W * refreshed_ms)

    def reasons(h):  # GPU 0 hits its power cap for 200 ms mid-window; idle bits mean nothing
        return 0x4 | 0x1 if h == 0 and 1000 * MS <= clock.ns < 1200 * MS else 0x1

    def shutdown():
        nv.shutdowns += 1

    nv.nvmlInit, nv.nvmlShutdown = lambda: None, shutdown
    nv.nvmlDeviceGetCount = lambda: 2
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetTotalEnergyConsumption = energy_mj
    nv.nvmlDeviceGetPowerUsage = lambda h: int(GPU1_W * 1000)
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=90 - 40 * h)
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=(h + 1) * 2**30)
    nv.nvmlDeviceGetClockInfo = lambda h, kind: 1980 - 500 * h
    nv.nvmlDeviceGetTemperature = lambda h, kind: 60 + h
    nv.nvmlDeviceGetCurrentClocksEventReasons = reasons
    return nv


@pytest.fixture
def gpus(monkeypatch):
    clock = SteppedClock()
    nv = fake_pynvml(clock)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    source = NvmlSource()
    track = sampled(source, [i * 50 * MS for i in range(61)], clock)  # 3 s at 20 Hz
    yield track, nv
    source.close()


def test_energy_counter_and_power_fallback(gpus):
    track, _ = gpus
    counter, fallback = power.channel_results(track, 500 * MS, 2500 * MS, METRICS)
    assert counter["name"] == "nvml:0" and "TotalEnergyConsumption" in counter["method"]
    assert counter["energy_j"] == pytest.approx(2 * GPU0_W, abs=1e-9)
    assert "10.0% of this window" in counter["expected_error"]  # 2 x 100 ms over 2 s
    assert fallback["name"] == "nvml:1" and "PowerUsage" in fallback["method"]
    assert fallback["energy_j"] == pytest.approx(2 * GPU1_W, abs=1e-9)
    assert "1 s average" in fallback["expected_error"]
    total, _ = power.total([counter, fallback], 2.0, METRICS)
    assert total["energy_j"] == pytest.approx(2 * (GPU0_W + GPU1_W), abs=1e-9)


def test_short_window_is_too_coarse_for_the_counter(gpus):
    track, _ = gpus
    counter, fallback = power.channel_results(track, 500 * MS, 900 * MS, METRICS)
    assert not counter["valid"] and "shorter than 10 refreshes" in counter["invalid_reason"]
    assert fallback["valid"]


def test_gpu_state_and_throttling_in_the_window(gpus):
    track, nv = gpus
    rows, reasons = stats.gpu_stats(track, 500 * MS, 2500 * MS)
    assert rows[0] == {"index": 0, "util_pct_mean": 90.0, "mem_used_bytes_max": 2**30,
                       "sm_clock_mhz_mean": 1980.0, "temp_c_max": 60.0}
    assert rows[1]["util_pct_mean"] == 50.0 and reasons == {"power cap"}
    assert stats.gpu_stats(track, 1500 * MS, 2500 * MS)[1] == set()  # after the cap: none


def test_missing_driver_is_unavailable_with_the_reason(monkeypatch):
    nv = fake_pynvml(SteppedClock())

    def no_driver():
        raise nv.NVMLError("Driver Not Loaded")

    nv.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    with pytest.raises(SourceUnavailable, match="NVML: Driver Not Loaded"):
        NvmlSource().open()


@pytest.mark.parametrize("call", ["nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex"])
def test_gpu_enumeration_error_is_unavailable_with_the_reason(monkeypatch, call):
    nv = fake_pynvml(SteppedClock())

    def lost(*_):
        raise nv.NVMLError("GPU is lost")

    setattr(nv, call, lost)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    with pytest.raises(SourceUnavailable, match="NVML: GPU is lost"):
        NvmlSource().open()
    assert nv.shutdowns == 1  # NVML was initialised, so it is shut down again


def test_missing_package_is_unavailable_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    with pytest.raises(SourceUnavailable, match=r"pip install 'hwbench\[gpu\]'"):
        NvmlSource().open()
