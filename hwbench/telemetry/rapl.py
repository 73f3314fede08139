"""CPU package and DRAM energy from Linux RAPL (``/sys/class/powercap/intel-rapl:*``).

``energy_uj`` is a cumulative counter in microjoules that wraps to zero at
``max_energy_range_uj``. Each read adds the difference from the previous read, adding one range
when the counter went backwards, so any number of wraps over a run is handled as long as two
reads are closer than one wrap period (range / the zone's maximum power: minutes on today's
CPUs, against a 100 ms sampling period).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwbench.config import default
from hwbench.errors import SourceUnavailable
from hwbench.telemetry.base import Channel, Layout, Source

DEFAULT_ROOT = default("rapl_root")
# Zone names and what they measure; core/uncore lie inside the package and are not read.
_ZONES = {"package": ("cpu-package", "component"), "dram": ("dram", "component"),
          "psys": ("board", "whole")}


@dataclass
class _Zone:
    path: Path
    label: str
    range_uj: int
    last_uj: int = 0
    total_uj: int = 0


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _wrap_text(zone: Path, range_uj: int) -> str:
    limit = zone / "constraint_0_max_power_uw"
    try:
        max_uw = _read_int(limit)
    except (OSError, ValueError):
        max_uw = 0
    if max_uw <= 0:
        return f"wraps at {range_uj / 1e6:,.0f} J (wrap period unknown: no max power)"
    return (f"wraps at {range_uj / 1e6:,.0f} J, at most every {range_uj / max_uw:.3g} s "
            f"(at {max_uw / 1e6:,.0f} W)")


class RaplSource(Source):
    name = "rapl"
    kind = "cpu-package"

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self.zones: list[_Zone] = []

    @classmethod
    def from_config(cls, cfg) -> "RaplSource":
        return cls(cfg.rapl_root)

    def _candidates(self) -> list[tuple[Path, str]]:
        """Top-level zones (intel-rapl:N) and their dram subzones, with labels."""
        found = []
        for top in sorted(self.root.glob("intel-rapl:*")):
            if top.name.count(":") != 1:
                continue
            for zone in [top, *sorted(top.glob(f"{top.name}:*"))]:
                try:
                    name = (zone / "name").read_text().strip()
                except OSError:
                    continue
                if name.split("-")[0] in _ZONES and (zone is top or name == "dram"):
                    label = name if zone is top else f"dram-{top.name.split(':')[1]}"
                    found.append((zone, label))
        return found

    def open(self) -> Layout:
        if not self.root.is_dir():
            raise SourceUnavailable(f"no powercap tree at {self.root} (not Linux, or no RAPL "
                                    "driver: modprobe intel_rapl_common)")
        candidates = self._candidates()
        if not candidates:
            raise SourceUnavailable(f"no RAPL zones under {self.root} (this CPU or kernel "
                                    "exposes none)")
        channels = []
        for zone, label in candidates:
            try:
                first, range_uj = _read_int(zone / "energy_uj"), _read_int(zone / "max_energy_range_uj")
            except PermissionError:
                raise SourceUnavailable(f"{zone / 'energy_uj'} is readable only by root (Linux "
                                        ">= 5.10, CVE-2020-8694): run as root or grant read "
                                        "access to energy_uj") from None
            except (OSError, ValueError) as exc:
                raise SourceUnavailable(f"cannot read {zone}: {exc}") from None
            self.zones.append(_Zone(zone, label, range_uj, last_uj=first))
            kind, role = _ZONES[label.split("-")[0]]
            channels.append(Channel(
                f"rapl:{label}", kind, role, counter=True,
                method=f"RAPL energy counter, interpolated at the window's edges; "
                       f"{_wrap_text(zone, range_uj)}",
                expected_error="RAPL is a model on pre-Haswell CPUs and a measurement after; "
                               "package figures exclude the platform (board, fans, PSU)",
                update_period_s=0.001))
        return Layout(channels)

    def read(self) -> list[float]:
        out = []
        for z in self.zones:
            raw = _read_int(z.path / "energy_uj")
            delta = raw - z.last_uj
            if delta < 0:  # the counter wrapped (once: reads are closer than a wrap period)
                delta += z.range_uj
            z.last_uj, z.total_uj = raw, z.total_uj + delta
            out.append(z.total_uj / 1e6)
        return out
