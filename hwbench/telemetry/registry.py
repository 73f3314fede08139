"""The telemetry sources a run can open, by name. Built-in sources are listed here and imported
only when a run uses them (their SDKs are optional)."""
from __future__ import annotations

import importlib

from hwbench.errors import UsageError
from hwbench.telemetry.base import Source

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
