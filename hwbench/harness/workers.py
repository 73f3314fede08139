"""Concurrency in the SUT adapter: N workers computing at once, fed by a dynamic batcher.

Concurrency belongs to the harness, not to a backend. ``--instances N`` runs N worker threads;
they share one backend when it declares ``thread_safe`` (it keeps N requests in flight itself),
otherwise each worker gets a backend instance of its own. ``--batch-timeout-us T`` makes the
batcher wait up to T after a batch's first sample for more, up to ``--batch-size``, as inference
servers do. Nothing here reads a clock for measurement: the batcher only waits with a timeout,
and the load generator timestamps every completion; a worker stamps when it takes a batch with
the load generator's clock (``queueing.StartLog``: client queueing).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from hwbench.backends import Backend
from hwbench.backends.base import ModelArtifact
from hwbench.harness.loadgen import LoadGen
from hwbench.harness.outputs import Top1Log
from hwbench.harness.queueing import StartLog
from hwbench.harness.samples import SampleLibrary

# How long closing the pool waits for the workers' calls in flight, all together. The run has
# already ended (its sample timeout or Ctrl-C aborted it); a call that outlasts this is stuck.
CLOSE_GRACE_S = 0.5


class Instances:
    """The backends one run computes with: one shared by every worker when it is thread-safe,
    else one per worker. Created now, loaded by ``load``, closed by ``close``."""

    def __init__(self, create: Callable[[], Backend], workers: int) -> None:
        self.primary = create()
        self.workers = workers
        self._create = create
        self.all = [self.primary]

    def load(self, model: ModelArtifact) -> None:
        self.primary.load(model)
        if self.primary.info().thread_safe:
            return
        for _ in range(self.workers - 1):
            backend = self._create()
            self.all.append(backend)  # before load, so that close() releases it after a failure
            backend.load(model)

    def runs(self) -> list[Callable[[np.ndarray], np.ndarray]]:
        """One compute function per worker."""
        if len(self.all) == self.workers:
            return [b.run for b in self.all]
        return [self.primary.run] * self.workers

    def device_compute_ms(self) -> list[float] | None:
        """Every instance's device-measured compute times, or None when none measures them."""
        times = [t for b in self.all for t in (b.device_compute_ms() or [])]
        return times or None

    def request_errors(self) -> dict[str, int] | None:
        """Every instance's failed requests by kind, summed, or None when none reports them."""
        got = [e for b in self.all if (e := b.request_errors()) is not None]
        if not got:
            return None
        total: dict[str, int] = {}
        for errors in got:
            for kind, n in errors.items():
                total[kind] = total.get(kind, 0) + n
        return dict(sorted(total.items()))

    def describe(self) -> dict:
        return {"workers": self.workers, "backend_instances": len(self.all)}

    def close(self) -> None:
        for backend in self.all:
            backend.close()


class BatchQueue:
    """Work waiting for workers, in arrival order, taken a batch at a time: ``take`` waits for
    the first item, then at most a batch timeout for the batch to fill, unless ``flush`` said no
    more is coming for now. One batch is formed at a time. An entry is a chunk of ``size``
    items (an Offline query of millions of samples is one entry); ``split(chunk, k)`` cuts a
    chunk into its first ``k`` items and the rest when a batch takes part of it."""

    def __init__(self, split: Callable[[Any, int], tuple[Any, Any]] | None = None) -> None:
        self._cond = threading.Condition()
        self._take_lock = threading.Lock()
        self._chunks: deque[tuple[Any, int]] = deque()
        self._split = split
        self._count = 0
        self._flushing = False
        self._closed = False

    def put(self, chunk: Any, size: int = 1) -> None:
        with self._cond:
            self._chunks.append((chunk, size))
            self._count += size
            self._flushing = False
            self._cond.notify_all()

    def flush(self) -> None:
        """No more work is coming for now: a batch being formed goes without waiting."""
        with self._cond:
            self._flushing = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self, n: int, wait_s: float) -> list[Any] | None:
        """The chunks of up to ``n`` items: waits for the first, then at most ``wait_s`` for the
        batch to fill. None once the queue is closed."""
        with self._take_lock, self._cond:
            self._cond.wait_for(lambda: self._count or self._closed)
            if wait_s > 0 and self._count < n:
                self._cond.wait_for(lambda: self._count >= n or self._flushing or self._closed,
                                    wait_s)
            if self._closed:
                return None
            taken = []
            while n and self._chunks:
                chunk, size = self._chunks.popleft()
                if size > n:  # only a chunk of several items is ever larger than a batch
                    assert self._split is not None
                    chunk, rest = self._split(chunk, n)
                    self._chunks.appendleft((rest, size - n))
                    size = n
                taken.append(chunk)
                self._count -= size
                n -= size
            return taken


class SampleQueue:
    """Issued samples waiting for a worker, held as ``(ids, indices)`` chunks of a BatchQueue and
    sliced as workers take them."""

    def __init__(self) -> None:
        self._q = BatchQueue(lambda c, k: ((c[0][:k], c[1][:k]), (c[0][k:], c[1][k:])))
        self.flush, self.close = self._q.flush, self._q.close

    def put(self, ids: np.ndarray, indices: np.ndarray) -> None:
        self._q.put((ids, indices), len(ids))

    def take(self, n: int, wait_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to ``n`` samples (see BatchQueue.take). None once the queue is closed."""
        chunks = self._q.take(n, wait_s)
        if chunks is None:
            return None
        if len(chunks) == 1:
            return chunks[0]
        return (np.concatenate([c[0] for c in chunks]),
                np.concatenate([c[1] for c in chunks]))


class WorkerSut:
    """Hands issued samples to worker threads, each running batches of up to ``batch_size``.

    ``issue`` and ``flush`` only queue and return. A worker whose backend raises aborts the
    run with the reason; the samples still queued are dropped (the load generator counts them
    as not completed). ``close`` stops the workers; call it once the load generator returns.
    as not completed). ``close`` stops the workers; call it once the load generator returns.
    A worker still inside a backend call CLOSE_GRACE_S after ``close`` began is left behind (a
    daemon thread) and named in ``abandoned``: its backend must never be used again.

    After an abort the load generator returns without waiting for calls still computing; a
    worker that completes after that is ignored by the load generator (it accepts completions
    only while a run is open).
    """

    def __init__(self, runs: list[Callable[[np.ndarray], np.ndarray]], library: SampleLibrary,
                 loadgen: LoadGen, batch_size: int, batch_timeout_us: float = 0.0,
                 keep_outputs: bool = False, keep_top1: bool = False) -> None:
        self._gather = library.gather
        self._lg = loadgen
        self.library = library  # what the load generator loads samples through
        self._batch = batch_size
        self._wait_s = batch_timeout_us / 1e6
        self._queue = SampleQueue()
        self.outputs: dict[int, np.ndarray] | None = {} if keep_outputs else None
        self.top1: Top1Log | None = Top1Log() if keep_top1 else None
        self.started = StartLog()  # when a worker took each sample
        self.error: BaseException | None = None
        self.abandoned: list[str] = []  # workers left inside a call by close()
        self._threads = [threading.Thread(target=self._work, args=(run,), daemon=True,
                                          name=f"hwbench-worker-{k}")
                         for k, run in enumerate(runs)]
        for t in self._threads:
            t.start()

    def issue(self, ids: np.ndarray, indices: np.ndarray) -> None:
        self._queue.put(ids, indices)

    def flush(self) -> None:
        self._queue.flush()

    def close(self) -> None:
        self._queue.close()
        # Not a measurement: a bound on how long a stuck backend call can hold the command.
        deadline = time.monotonic() + CLOSE_GRACE_S
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.abandoned = [t.name for t in self._threads if t.is_alive()]

    def _work(self, run: Callable[[np.ndarray], np.ndarray]) -> None:
        while (got := self._queue.take(self._batch, self._wait_s)) is not None:
            ids, indices = got
            if self._lg.is_aborted():
                continue  # the run is ending: drain without computing
            self.started.stamp(ids)
            try:
                out = run(self._gather(indices))
                if self.outputs is not None:
                    for i, row in zip(indices.tolist(), np.array(out, copy=True)):
                        self.outputs[i] = row
                if self.top1 is not None:
                    self.top1.put(ids, out)
            except Exception as exc:
                self.error = self.error or exc
                self._lg.abort(f"system under test failed in a worker: "
                               f"{type(exc).__name__}: {exc}")
                return
            self._lg.complete(ids)
