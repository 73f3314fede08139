"""The streaming SUT: serves a generative workload's requests through a streaming backend, whose
serving loop reports token events to the load generator (hwbench.backends.base, "Streaming").

Nothing here reads a clock: the load generator stamps every ``tokens`` and ``complete`` call of
the ``LoadGenSink``. Scenarios stay invisible: issued requests are submitted as they come, and
the end of a phase (``flush``) drains the backend.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends import Backend
from hwbench.harness.loadgen import LoadGen
from hwbench.harness.queueing import StartLog
from hwbench.harness.samples import RequestLibrary


class LoadGenSink:
    """The ``TokenSink`` a streaming backend reports to: the compiled load generator's own
    thread-safe ``tokens``, ``complete`` and ``abort``, bound once (no Python layer per call),
    and ``started``, stamped on the load generator's clock (client queueing)."""

    def __init__(self, loadgen: LoadGen, started: StartLog) -> None:
        self._lg = loadgen
        self.tokens = loadgen.tokens
        self.complete = loadgen.complete
        self.abort = loadgen.abort
        self.started = started.stamp

    @property
    def native(self) -> Any:
        return self._lg


class StreamingSut:
    """Submits issued requests to a streaming backend and drains it at the end of each phase.

    Built per load-generator pass: it starts the backend's serving loop (``serve``) and
    ``close`` stops it. With ``keep_outputs`` each request's generated tokens are kept by sample
    index, for scoring.
    """

    def __init__(self, backend: Backend, library: RequestLibrary, loadgen: LoadGen,
                 keep_outputs: bool = False) -> None:
        self._backend = backend
        self._requests = library.requests
        self.library = library  # what the load generator loads requests through
        self._index_of: dict[int, int] | None = {} if keep_outputs else None
        self.outputs: dict[int, np.ndarray] | None = {} if keep_outputs else None
        self.error: BaseException | None = None
        self.abandoned: list[str] = []  # a stuck call is the issue thread's (see BatchingSut)
        # When a backend with a bounded number of requests in flight (a network backend's
        # connections) began each request; empty for one that never waits (client queueing:
        # none then).
        self.started = StartLog()
        backend.serve(LoadGenSink(loadgen, self.started), keep_outputs)

    def issue(self, ids: np.ndarray, indices: np.ndarray) -> None:
        try:
            if self._index_of is not None:
                self._index_of.update(zip(ids.tolist(), indices.tolist()))
            self._backend.submit(ids, self._requests(indices))
        except BaseException as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        """The end of a phase: block until the backend completed everything submitted."""
        try:
            self._backend.drain()
        except BaseException as exc:
            self.error = exc
            raise

    def close(self) -> None:
        """Stops the serving loop; collects the outputs by sample index when kept."""
        self._backend.stop()
        if self._index_of is not None and self.outputs is not None:
            for id_, tokens in self._backend.outputs().items():
                index = self._index_of.get(int(id_))
                if index is not None:
                    self.outputs[index] = tokens
