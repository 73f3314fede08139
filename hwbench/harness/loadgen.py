"""The load generator's Python face: settings, the two interfaces it drives, and the run call.

The load generator itself is compiled (``hwbench._loadgen``) and owns the clock: it schedules and
issues queries, takes a timestamp the moment each sample is completed, and analyses the measured
window. Only sample ids and sample indices cross into Python.

Threading contract
------------------
* ``LoadGen.run(sut, library, settings)`` blocks the calling thread, with the GIL released,
  until the run ends. It checks for Ctrl-C every 20 ms and ends the run, interrupted, if one came.
* ``SystemUnderTest.issue(ids, indices)`` is called on the load generator's issue thread. It may
  block; while it does, no query is issued, and in Server the delay counts as latency. It must
  call ``LoadGen.complete(ids)`` for every id, from any thread, exactly once. Ids are opaque:
  they carry their run's tag, so a late completion of an earlier run's id is counted as stale
  and ignored (``stale_completions`` in the run's output), never taken for a current sample.
* ``SystemUnderTest.flush()`` is called on the issue thread after the last query of a phase.
* ``QuerySampleLibrary.load(indices)`` / ``unload(indices)`` are called on the issue thread, outside
  any timed phase.
* ``LoadGen.complete``, ``LoadGen.abort`` and ``LoadGen.progress`` are thread-safe.
An exception raised by ``issue``, ``flush``, ``load`` or ``unload`` aborts the run: it is marked
invalid with the exception as its reason, and what was measured is kept.

Stuck calls
-----------
Samples outstanding with no completion for ``sample_timeout_s`` abort the run even while the issue
thread is blocked inside ``issue`` (a watchdog on the calling thread). After any abort (timeout,
Ctrl-C, a fault) the issue thread gets half a second to come back; if it does not, ``run``
returns anyway with ``abandoned`` true and the stuck call named in ``errors``. The thread is left
running: the ``LoadGen`` is retired (``retired``; a later ``run`` raises) and it, the SUT and
the sample library are kept alive for the rest of the process, on purpose. The caller must never
use that SUT's backend again, and should end the process with ``os._exit`` rather than let the
interpreter finalise with the thread inside it (the ``hwbench`` command does).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

try:
    from hwbench import _loadgen
except ImportError as exc:  # pragma: no cover - only in a source checkout without a build
    raise ImportError(
        "hwbench's compiled load generator is missing: install the package with "
        "'pip install .' and run from outside the source tree"
    ) from exc

LoadGen = _loadgen.LoadGen
Settings = _loadgen.Settings
Scenario = _loadgen.Scenario
Mode = _loadgen.Mode
Summary = _loadgen.Summary
analyze = _loadgen.analyze
validate = _loadgen.validate
server_schedule = _loadgen.server_schedule
arrival_schedule = _loadgen.arrival_schedule
Arrivals = _loadgen.Arrivals
early_stopping_min_queries = _loadgen.early_stopping_min_queries
early_stopping_max_overlatency = _loadgen.early_stopping_max_overlatency
spin_for_ns = _loadgen.spin_for_ns
TokenPacer = _loadgen.TokenPacer
now_ns = LoadGen.now_ns

_abandoned: list[str] = []  # every call abandoned in this process, by its reason


def note_abandoned(reason: str) -> None:
    """Records that a call was abandoned: a thread is left inside it for the rest of the
    process."""
    _abandoned.append(reason)


def abandoned_calls() -> tuple[str, ...]:
    """The calls abandoned so far in this process (empty: no thread was left behind)."""
    return tuple(_abandoned)


class SystemUnderTest(Protocol):
    """What the load generator drives (see the module's threading contract)."""

    def issue(self, ids: np.ndarray, indices: np.ndarray) -> None:
        """New samples: ``ids`` (uint64, to complete) and ``indices`` (into the sample set)."""

    def flush(self) -> None:
        """No more queries in this phase: run anything held back for batching."""


class QuerySampleLibrary(Protocol):
    """Loads the samples that queries name into memory before the timed phases (MLPerf LoadGen's
    name; hwbench.harness.samples.SampleLibrary is the one hwbench passes)."""

    def load(self, indices: np.ndarray) -> None:
        """Make these sample indices ready to be issued."""

    def unload(self, indices: np.ndarray) -> None:
        """Release these sample indices."""
