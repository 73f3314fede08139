"""hwbench: an MLPerf-style hardware benchmark of real inference workloads.

The public API is small: ``run`` a configuration, read a result with ``load_result``.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

from hwbench.config import RunConfig  # noqa: E402
from hwbench.errors import HwbenchError, UsageError  # noqa: E402

# This package sits on the floor of the layers (docs/architecture.md): the compiled load
# generator is ``hwbench._loadgen``, so every layer that reaches it imports this package. Its own
# imports therefore stay on the floor, and the two entry points into upper layers below import
# their modules by name, when called (tests/test_layers.py resolves them and checks their layer).
_RUNNER = "hwbench.passes.runner"
_PROGRESS = "hwbench.harness.progress"
_STORE = "hwbench.results.store"


def run(config: RunConfig, progress: bool = False):
    """Runs one configuration and returns its Outcome (result document and run directory)."""
    reporter = importlib.import_module(_PROGRESS).Reporter(enabled=progress)
    return importlib.import_module(_RUNNER).execute(config, reporter)


def load_result(run_dir: str | Path) -> dict[str, Any]:
    """Reads a run directory's result, migrated to the current schema."""
    return importlib.import_module(_STORE).load_result(run_dir)


__all__ = ["RunConfig", "HwbenchError", "UsageError", "load_result", "run", "__version__"]
