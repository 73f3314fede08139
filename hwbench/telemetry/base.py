"""What every telemetry source is: columns read together at one instant, some of them power.

A source is opened once before the measured window, read on the sampler's thread at every tick,
and closed after. Readings are plain floats; the sampler stamps them with the load generator's
clock, so a source never reads a clock of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from hwbench.errors import SourceUnavailable  # noqa: F401 (sources raise it from here)

KINDS = ("gpu", "cpu-package", "dram", "wall", "board")
# How a channel adds up with others: "whole" is everything (a wall analyzer, a board's input
# rail), "component" is a non-overlapping part (a CPU package, DRAM, one GPU), "part" lies
# inside another reading and is never summed.
ROLES = ("whole", "component", "part")


@dataclass(frozen=True)
class Channel:
    """One power figure of a source.

    `counter` channels read cumulative joules (energy = difference across the window); the
    others read watts (energy = trapezoidal integral). `update_period_s` is how often the
    hardware refreshes the value (0 when unknown); it bounds the error at each window edge.
    """

    name: str
    kind: str
    role: str
    counter: bool
    method: str
    expected_error: str
    update_period_s: float = 0.0


@dataclass
class Layout:
    """What an opened source will return from every read(): one float per column, in order.

    The first columns are the power channels' (joules or watts); `stats` name the others
    (GPU utilisation, CPU load, ...), read by the telemetry summary.
    """

    channels: list[Channel]
    stats: list[str] = field(default_factory=list)
    gpus: int = 0  # GPUs whose state (gpuN.util_pct, ...) is among the stats

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.channels] + list(self.stats)


class Source:
    """A telemetry source. Subclasses set `name` and implement open(), read() and close()."""

    name: ClassVar[str] = ""
    # True for sources that measure power (listed under `power` even when unavailable).
    power: ClassVar[bool] = True
    # What an unavailable source would have measured.
    kind: ClassVar[str] = ""
    # True when the source also reads machine state worth keeping without power (GPU load).
    telemetry: ClassVar[bool] = False

    @classmethod
    def from_config(cls, cfg) -> "Source":
        """The source as a run's configuration (hwbench.config.RunConfig) sets it up."""
        return cls()

    def open(self) -> Layout:
        """Prepares to read; raises SourceUnavailable with the reason when it cannot."""
        raise NotImplementedError

    def read(self) -> list[float]:
        """One value per column of the layout. Called on the sampler's thread only."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases what open() took. Safe to call after a failed read."""
