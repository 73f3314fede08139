"""NVIDIA GPUs through NVML (``nvidia-ml-py``, imported only when this source opens): energy or
power per GPU, and utilisation, memory, SM clock, temperature and clock-event (throttle) reasons.

Energy prefers the total-energy counter (Volta and newer, millijoules, refreshed about every
100 ms); without it, the power reading is integrated. On Ampere and newer that reading is a
one-second average, and published measurements show A100/H100 sample power over only part of
each period, so short bursts are smeared or missed: the method and its error are written beside
each figure.
"""
from __future__ import annotations

from typing import Any

from hwbench.errors import SourceUnavailable
from hwbench.telemetry.base import Channel, Layout, Source

# nvmlClocksEventReason* bits that mean the GPU was slowed against its will (idle, application
# clock settings, sync boost and display clocks are not throttling).
THROTTLE_BITS = {0x4: "power cap", 0x8: "hardware slowdown", 0x20: "thermal (software)",
                 0x40: "thermal (hardware)", 0x80: "power brake"}
STATS = ("util_pct", "mem_used_bytes", "sm_clock_mhz", "temp_c", "throttle_bits")
ENERGY_PERIOD_S = 0.1

_COUNTER = ("nvmlDeviceGetTotalEnergyConsumption (mJ), interpolated at the window's edges",
            "counter refreshed about every 100 ms: up to one refresh of energy at each edge")
_POWER = ("nvmlDeviceGetPowerUsage integrated trapezoidally (no energy counter on this GPU)",
          "on Ampere and newer the reading is a 1 s average sampled over part of the time: "
          "bursts shorter than a second are smeared or missed")


def _event_reasons(nv: Any):
    """The clock-event reasons call: the newer name, else the older 'throttle' one."""
    return getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nv.nvmlDeviceGetCurrentClocksThrottleReasons


class NvmlSource(Source):
    name = "nvml"
    kind = "gpu"
    telemetry = True

    def __init__(self) -> None:
        self.nv: Any = None
        self.gpus: list[tuple[Any, bool]] = []  # (handle, has energy counter)

    def open(self) -> Layout:
        try:
            import pynvml
        except ImportError:
            raise SourceUnavailable("nvidia-ml-py is not installed: pip install "
                                    "'hwbench[gpu]'") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise SourceUnavailable(f"NVML: {exc}") from None
        self.nv = pynvml
        try:
            return self._layout()
        except pynvml.NVMLError as exc:
            # A GPU NVML cannot enumerate (lost, in a bad state) makes this source unavailable,
            # not the run: the other sources and the measurement go on without it.
            self.close()
            raise SourceUnavailable(f"NVML: {exc}") from None

    def _layout(self) -> Layout:
        pynvml, self.gpus = self.nv, []
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            self.close()
            raise SourceUnavailable("NVML sees no GPU")
        channels, stats = [], []
        for i in range(count):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            has_counter = self._has_counter(h)
            method, error = _COUNTER if has_counter else _POWER
            channels.append(Channel(f"nvml:{i}", "gpu", "component", counter=has_counter,
                                    method=method, expected_error=error,
                                    update_period_s=ENERGY_PERIOD_S if has_counter else 1.0))
            stats += [f"gpu{i}.{s}" for s in STATS]
            self.gpus.append((h, has_counter))
        return Layout(channels, stats, gpus=count)

    def _has_counter(self, handle: Any) -> bool:
        try:
            self.nv.nvmlDeviceGetTotalEnergyConsumption(handle)
            return True
        except self.nv.NVMLError:
            return False

    def read(self) -> list[float]:
        nv, power, stats = self.nv, [], []
        reasons = _event_reasons(nv)
        for h, has_counter in self.gpus:
            power.append(nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1e3 if has_counter
                         else nv.nvmlDeviceGetPowerUsage(h) / 1e3)
            stats += [nv.nvmlDeviceGetUtilizationRates(h).gpu,
                      nv.nvmlDeviceGetMemoryInfo(h).used,
                      nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
                      nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU),
                      reasons(h)]
        return [float(v) for v in power + stats]

    def close(self) -> None:
        if self.nv is not None:
            self.nv.nvmlShutdown()
            self.nv = None
