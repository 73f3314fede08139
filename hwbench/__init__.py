"""hwbench: an MLPerf-style hardware benchmark of real inference workloads.

The public API is small: ``run`` a configuration, read a result with ``load_result``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from hwbench.config import RunConfig  # noqa: E402
from hwbench.errors import HwbenchError, UsageError  # noqa: E402
from hwbench.results import load_result  # noqa: E402


def run(config: RunConfig, progress: bool = False):
    """Runs one configuration and returns its Outcome (result document and run directory)."""
    from hwbench.progress import Reporter
    from hwbench.runner import execute

    return execute(config, Reporter(enabled=progress))


__all__ = ["RunConfig", "HwbenchError", "UsageError", "load_result", "run", "__version__"]
