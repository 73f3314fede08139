"""NVIDIA Jetson boards' on-board power monitors (INA3221, through hwmon).

JetPack 5 and 6 expose each monitored rail as
``/sys/bus/i2c/drivers/ina3221/<bus-addr>/hwmon/hwmonN/inK_label`` with ``inK_input`` (mV) and
``currK_input`` (mA). ``VDD_IN`` is the board's input rail, everything the module draws; the
other rails (CPU/GPU/CV, SoC) are parts of it.
"""
from __future__ import annotations

from pathlib import Path

from hwbench.config import default
from hwbench.errors import SourceUnavailable
from hwbench.telemetry.base import Channel, Layout, Source

DEFAULT_ROOT = default("jetson_root")
INPUT_RAIL = "VDD_IN"


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


class JetsonSource(Source):
    name = "jetson"
    kind = "board"

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self.rails: list[tuple[Path, Path]] = []  # (millivolts file, milliamps file)

    @classmethod
    def from_config(cls, cfg) -> "JetsonSource":
        return cls(cfg.jetson_root)

    def _labels(self) -> list[Path]:
        return sorted(self.root.glob("ina3221*/*/hwmon/hwmon*/in*_label"))

    def open(self) -> Layout:
        labels = self._labels()
        if not labels:
            raise SourceUnavailable(f"no INA3221 power monitor under {self.root} (not a Jetson "
                                    "board)")
        channels = []
        for label_file in labels:
            k = label_file.name[2:-len("_label")]
            label = label_file.read_text().strip()
            volts, amps = label_file.with_name(f"in{k}_input"), label_file.with_name(f"curr{k}_input")
            if label == "NC" or not volts.exists() or not amps.exists():
                continue  # an unconnected channel
            self.rails.append((volts, amps))
            whole = label == INPUT_RAIL
            channels.append(Channel(
                f"jetson:{label}", "board", "whole" if whole else "part", counter=False,
                method="INA3221 rail voltage x current at every tick, trapezoidal integral",
                expected_error="the monitor's shunt and gain tolerance (board-specific, a few "
                               "percent), plus power changes faster than the sampling period"))
        if not channels:
            raise SourceUnavailable(f"INA3221 under {self.root} has no readable rail")
        try:
            self.read()
        except OSError as exc:
            raise SourceUnavailable(f"cannot read the INA3221 rails: {exc}") from None
        return Layout(channels)

    def read(self) -> list[float]:
        return [_read_int(v) * _read_int(a) / 1e6 for v, a in self.rails]
