"""Power, energy and system telemetry beside the load generator, cut to the measured window.

Built-in sources are listed here and imported only when a run uses them; each opens or says why
it cannot. A run's `Session` opens them, samples around each performance pass, and turns the
readings into the `power` and `telemetry` sections of result.json and a timeline file.
"""
from __future__ import annotations

import importlib
from typing import Any

from hwbench.errors import UsageError
from hwbench.telemetry.base import Source, SourceUnavailable

__all__ = ["names", "source_class", "system_source_class", "Session", "Source",
           "SourceUnavailable"]

_BUILTIN = {
    "rapl": "hwbench.telemetry.rapl:RaplSource",
    "nvml": "hwbench.telemetry.nvml:NvmlSource",
    "jetson": "hwbench.telemetry.jetson:JetsonSource",
    "ptdaemon": "hwbench.telemetry.ptdaemon:PtdSource",
}
_SYSTEM = "hwbench.telemetry.system:SystemSource"


def names() -> list[str]:
    """Every power source name."""
    return list(_BUILTIN)


def _load(target: str) -> type[Source]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def system_source_class() -> type[Source]:
    """CPU load and memory: sampled in every run, whatever power sources are chosen."""
    return _load(_SYSTEM)


def source_class(name: str) -> type[Source]:
    if name not in _BUILTIN:
        raise UsageError(f"unknown power source {name!r}: use one of {', '.join(names())}")
    return _load(_BUILTIN[name])


# The session needs the compiled load generator (its clock): imported on first use, so that
# reading a result (the summary rows) does not.
def __getattr__(name: str) -> Any:
    if name == "Session":
        from hwbench.telemetry.session import Session
        return Session
    raise AttributeError(name)
