"""Planted sysfs trees and a stepped clock for the telemetry tests."""
from __future__ import annotations

from pathlib import Path

from hwbench.telemetry.base import Source
from hwbench.telemetry.sampler import Sampler, Track

SECOND = 1_000_000_000


class SteppedClock:
    """A clock the test moves by hand, so that every reading's time is known exactly."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def sampled(source: Source, steps, clock: SteppedClock, before_each=None) -> Track:
    """Opens `source` and reads it once at each time in `steps` (ns) through a real Sampler."""
    track = Track(source, source.open(), listed=True)
    sampler = Sampler([track], hz=10.0, clock=clock)
    for i, t in enumerate(steps):
        if before_each is not None:
            before_each(i, t)
        clock.ns = t
        sampler.sample()
    return track


def write(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{value}\n")


def rapl_zone(root: Path, zone: str, name: str, energy_uj: int, range_uj: int,
              max_power_uw: int | None = None) -> Path:
    d = root / zone
    write(d / "name", name)
    write(d / "energy_uj", energy_uj)
    write(d / "max_energy_range_uj", range_uj)
    if max_power_uw is not None:
        write(d / "constraint_0_max_power_uw", max_power_uw)
    return d / "energy_uj"


def jetson_rail(root: Path, k: int, label: str, millivolts: int, milliamps: int) -> None:
    hw = root / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    write(hw / f"in{k}_label", label)
    write(hw / f"in{k}_input", millivolts)
    write(hw / f"curr{k}_input", milliamps)
