"""The SUT adapter: turns the load generator's issued samples into backend batches.

It never reads a clock: it gathers samples, calls the backend, and completes the ids. Scenarios
are invisible to it; it serves whatever the load generator issues. Several workers and dynamic
batching live in hwbench.harness.workers; ``make_sut`` picks between the two.
"""
from __future__ import annotations

import numpy as np

from hwbench.backends import Backend
from hwbench.harness.loadgen import LoadGen
from hwbench.harness.outputs import Top1Log
from hwbench.harness.queueing import StartLog
from hwbench.harness.samples import RequestLibrary, SampleLibrary
from hwbench.harness.stream import StreamingSut
from hwbench.harness.workers import Instances, WorkerSut


class BatchingSut:
    """Runs issued samples inline, in batches of up to ``batch_size``, in arrival order.

    ``issue`` runs on the load generator's issue thread and blocks while it computes; queries
    that fall due meanwhile are issued together on the next call. With ``keep_outputs`` each
    sample's output is kept by sample index, for scoring; with ``keep_top1`` each issued
    sample's top-1 class, by sequence number (a soak's drift check).
    """

    def __init__(self, backend: Backend, library: SampleLibrary, loadgen: LoadGen,
                 batch_size: int, keep_outputs: bool = False, keep_top1: bool = False) -> None:
        self._run = backend.run
        self._gather = library.gather
        self._complete = loadgen.complete
        self._aborted = loadgen.is_aborted
        self._batch = batch_size
        self.library = library  # what the load generator loads samples through
        self.outputs: dict[int, np.ndarray] | None = {} if keep_outputs else None
        self.top1: Top1Log | None = Top1Log() if keep_top1 else None
        self.started = StartLog()  # when each batch's call began
        self.error: BaseException | None = None
        # Never filled: a stuck inline call is the load generator's issue thread, which the
        # load generator itself abandons (its output's ``abandoned``).
        self.abandoned: list[str] = []

    def issue(self, ids: np.ndarray, indices: np.ndarray) -> None:
        bs = self._batch
        try:
            if len(ids) <= bs:
                self._one(ids, indices)
                return
            for s in range(0, len(ids), bs):
                if self._aborted():
                    return
                self._one(ids[s:s + bs], indices[s:s + bs])
        except BaseException as exc:
            self.error = exc
            raise

    def _one(self, ids: np.ndarray, indices: np.ndarray) -> None:
        self.started.stamp(ids)
        out = self._run(self._gather(indices))
        if self.outputs is not None:
            out = np.array(out, copy=True)  # a backend may reuse its output buffer
            for i, row in zip(indices.tolist(), out):
                self.outputs[i] = row
        if self.top1 is not None:
            self.top1.put(ids, out)
        self._complete(ids)

    def flush(self) -> None:
        """Nothing is held back: every batch runs as soon as it is issued."""

    def close(self) -> None:
        """No threads to stop."""


Sut = BatchingSut | WorkerSut | StreamingSut


def make_sut(instances: Instances, library: SampleLibrary | RequestLibrary, loadgen: LoadGen,
             batch_size: int, batch_timeout_us: float = 0.0, keep_outputs: bool = False,
             keep_top1: bool = False) -> Sut:
    """Inline batches for one worker without batching delay (the fastest path); worker threads
    for several instances or a batch timeout, which must not block the issue thread; a
    streaming backend serving requests (a generative workload's library) on its own loop."""
    if isinstance(library, RequestLibrary):
        return StreamingSut(instances.primary, library, loadgen, keep_outputs)
    if instances.workers == 1 and not batch_timeout_us:
        return BatchingSut(instances.primary, library, loadgen, batch_size, keep_outputs,
                           keep_top1)
    return WorkerSut(instances.runs(), library, loadgen, batch_size, batch_timeout_us,
                     keep_outputs, keep_top1)
