"""Client queueing: how long each sample waited for a free worker after its arrival.

A sample's latency, from its scheduled arrival (Server) or issue to its completion, has two parts
on the client's side: waiting until a worker (one connection, one instance) picks it up, and the
backend call itself. The SUT adapters stamp the moment a worker takes a batch with the load
generator's own clock (``now_ns``, the clock of the arrival and completion stamps); nothing here
times a backend. When the wait is the larger part, more requests in flight (``--instances``)
would lower the latency, if the server can take them: the result says the run is client-bound.
"""
from __future__ import annotations

import threading
from array import array
from typing import Any

import numpy as np

from hwbench.harness.loadgen import now_ns

_SEQ_MASK = (1 << 32) - 1  # a sample id is (run tag << 32) | sequence number (ext/loadgen.h)


class StartLog:
    """When workers took samples: each taken id and its batch's ``now_ns``, 16 bytes a sample
    (a soak of millions of samples stays small). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = array("Q")
        self._at = array("q")

    def stamp(self, ids: np.ndarray) -> None:
        t = now_ns()
        with self._lock:
            self._ids.extend(ids.tolist())
            self._at.extend((t,) * len(ids))

    def column(self, first_seq: int, n: int) -> np.ndarray:
        """The start stamp of each of the ``n`` records from ``first_seq`` (0: never taken)."""
        with self._lock:
            ids = np.frombuffer(self._ids, dtype=np.uint64).copy()
            at = np.frombuffer(self._at, dtype=np.int64).copy()
        rows = (ids & np.uint64(_SEQ_MASK)).astype(np.int64) - first_seq
        keep = (rows >= 0) & (rows < n)
        start = np.zeros(n, dtype=np.int64)
        start[rows[keep]] = at[keep]
        return start


def summary(records: dict[str, np.ndarray], start_ns: np.ndarray) -> dict[str, Any] | None:
    """Client queueing over the measured window's completed samples, in milliseconds, and
    whether it dominates (``client_bound``); None when no sample was both taken and completed."""
    issue, done = records["issue_ns"], records["complete_ns"]
    ok = (start_ns > 0) & (done > 0)
    if not ok.any():
        return None
    wait = np.maximum(start_ns[ok] - issue[ok], 0) / 1e6
    call = np.maximum(done[ok] - start_ns[ok], 0) / 1e6
    p50_wait, p50_call = float(np.median(wait)), float(np.median(call))
    return {"samples": int(ok.sum()), "mean_ms": float(wait.mean()), "p50_ms": p50_wait,
            "p99_ms": float(np.percentile(wait, 99)), "in_call_p50_ms": p50_call,
            "client_bound": bool(p50_wait > p50_call)}
