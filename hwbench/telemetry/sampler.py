"""The telemetry sampler: a thread beside the load generator that reads every open source at a
fixed rate and stamps each reading with the load generator's clock.

Threading contract: start() and stop() are called by the runner's thread, around one load
generator pass; between them only the sampler's thread reads the sources. stop() takes one more
reading after the pass has returned, so the measured window's end is bracketed by readings, as
its start is by the reading start() takes.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hwbench.harness.loadgen import now_ns
from hwbench.telemetry.base import Layout, Source


@dataclass
class Track:
    """One open source and what it read during a pass."""

    source: Source
    layout: Layout
    requested: bool = False  # named by the user: its failure invalidates the run
    listed: bool = False  # its channels go into the power section
    times: list[int] = field(default_factory=list)
    rows: list[list[float]] = field(default_factory=list)
    fault: str | None = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Reading times (ns) and a (readings x columns) array of values."""
        width = len(self.layout.columns)
        return (np.asarray(self.times, dtype=np.int64),
                np.asarray(self.rows, dtype=np.float64).reshape(len(self.rows), width))


class Sampler:
    """Reads `tracks` every 1/hz seconds on its own thread; `clock` is injectable for tests."""

    def __init__(self, tracks: list[Track], hz: float,
                 clock: Callable[[], int] = now_ns) -> None:
        self.tracks = tracks
        self.period_s = 1.0 / hz
        self.clock = clock
        self.cpu_s = 0.0  # CPU time the sampler's thread spent, for its overhead
        self.wall_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        """One reading of every source that has not faulted."""
        for track in self.tracks:
            if track.fault is not None:
                continue
            t0 = self.clock()
            try:
                values = track.source.read()
            except Exception as exc:  # a faulting source never stops the run
                track.fault = f"reading failed: {type(exc).__name__}: {exc}"
                continue
            # Stamped at the middle of the read: a slow source (a TCP round trip) is placed
            # where its value was most likely taken.
            track.times.append((t0 + self.clock()) // 2)
            track.rows.append(values)

    def start(self) -> None:
        for track in self.tracks:
            track.times, track.rows, track.fault = [], [], None
        self.cpu_s = self.wall_s = 0.0
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="hwbench-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sample()

    def _loop(self) -> None:
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        # Ticks are due at fixed times, so a slow read does not stretch the period.
        next_due = wall0 + self.period_s
        while not self._stop.wait(max(0.0, next_due - time.perf_counter())):
            self.sample()
            next_due += self.period_s
            behind = time.perf_counter() - next_due
            if behind > 0:  # reads outran the period: skip the missed ticks, no burst
                next_due += self.period_s * (1 + behind // self.period_s)
        self.cpu_s = time.thread_time() - cpu0
        self.wall_s = time.perf_counter() - wall0
