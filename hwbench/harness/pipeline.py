"""The whole pipeline as the system under test (``--pipeline full``): each issued sample starts
from its encoded file held in memory and is decoded, preprocessed, batched, computed and
post-processed before it is completed.

Two pools of harness threads: ``preprocess_workers`` threads decode and preprocess one sample at
a time (the workload's ``decode_sample`` and ``preprocess_sample``); the compute workers (one per
``--instances``) take what is ready, up to ``--batch-size`` (waiting up to
``--batch-timeout-us`` for more), call the backend, post-process the batch (the workload's
``postprocess``: top-k for a classifier) and complete the ids.

The stages never read a clock. The harness stamps each sample between stages with the load
generator's own steady clock (``hwbench.harness.loadgen.now_ns``, the clock of every issue and
completion stamp), keyed by the id's sequence number; ``stage_columns`` turns the stamps into
per-sample durations aligned with the load generator's records (``first_seq``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hwbench.harness.loadgen import RUN_TAG_SHIFT, LoadGen, now_ns
from hwbench.harness.outputs import Top1Log
from hwbench.harness.workers import CLOSE_GRACE_S, BatchQueue, SampleQueue
from hwbench.workloads import Workload

# Per-sample stage columns of samples.npz, in the order a sample passes them (ns; -1: the sample
# never reached the stage's end).
STAGES = ("queue", "decode", "preprocess", "batch_wait", "compute", "postprocess")
_SEQ_MASK = (1 << RUN_TAG_SHIFT) - 1


class EncodedLibrary:
    """The performance sample set as encoded files held in memory (the bytes on disk).

    ``load``/``unload`` run on the load generator's issue thread outside timed phases; ``get``
    on the preprocessing workers, concurrently (it only reads)."""

    def __init__(self, workload: Workload) -> None:
        self._workload = workload
        self._files: dict[int, bytes] = {}

    def load(self, indices: np.ndarray) -> None:
        self._files = dict(zip(indices.tolist(), self._workload.encoded_samples(indices)))

    def unload(self, indices: np.ndarray) -> None:
        self._files = {}

    def get(self, index: int) -> bytes:
        return self._files[index]


@dataclass
class _Ready:
    """A preprocessed sample waiting for a batch."""

    id: int
    index: int
    x: np.ndarray


class PipelineSut:
    """Serves issued samples through the whole pipeline (see the module's docstring).

    ``issue`` and ``flush`` only queue and return. A stage or backend that raises aborts the run
    with the reason. ``close`` stops every worker; one still inside a call CLOSE_GRACE_S after
    ``close`` began is left behind and named in ``abandoned``. With ``keep_outputs`` each
    sample's output row (what scoring reads) and its post-processed answer are kept by index;
    with ``keep_top1`` each issued sample's top-1 by sequence number (a soak's drift check).
    """

    def __init__(self, workload: Workload, runs: list[Callable[[np.ndarray], np.ndarray]],
                 library: EncodedLibrary, loadgen: LoadGen, batch_size: int,
                 preprocess_workers: int, batch_timeout_us: float = 0.0,
                 keep_outputs: bool = False, keep_top1: bool = False) -> None:
        self._decode = workload.decode_sample
        self._preprocess = workload.preprocess_sample
        self._postprocess = workload.postprocess
        self._lg = loadgen
        self.library = library  # what the load generator loads samples through
        self._batch = batch_size
        self._wait_s = batch_timeout_us / 1e6
        self._incoming = SampleQueue()
        self._ready = BatchQueue()  # of _Ready, one sample each
        self.outputs: dict[int, np.ndarray] | None = {} if keep_outputs else None
        self.answers: dict[int, np.ndarray] | None = {} if keep_outputs else None
        self.top1: Top1Log | None = Top1Log() if keep_top1 else None  # a soak's answers
        self.error: BaseException | None = None
        self.abandoned: list[str] = []
        # Stamps, appended by each worker to lists of its own (list.append is atomic):
        # per sample (seq, decode start, decoded, preprocessed); per batch (seqs, batch start,
        # computed, post-processed).
        self._sample_stamps: list[tuple[int, int, int, int]] = []
        self._batch_stamps: list[tuple[list[int], int, int, int]] = []
        self._pre = [threading.Thread(target=self._prepare, daemon=True,
                                      name=f"hwbench-preprocess-{k}")
                     for k in range(preprocess_workers)]
        self._compute = [threading.Thread(target=self._work, args=(run,), daemon=True,
                                          name=f"hwbench-worker-{k}")
                         for k, run in enumerate(runs)]
        for t in (*self._pre, *self._compute):
            t.start()

    def issue(self, ids: np.ndarray, indices: np.ndarray) -> None:
        self._incoming.put(ids, indices)

    def flush(self) -> None:
        self._incoming.flush()
        self._ready.flush()

    def close(self) -> None:
        # Not a measurement: a bound on how long a stuck call can hold the command.
        deadline = time.monotonic() + CLOSE_GRACE_S
        self._incoming.close()
        for t in self._pre:
            t.join(max(0.0, deadline - time.monotonic()))
        self._ready.close()
        for t in self._compute:
            t.join(max(0.0, deadline - time.monotonic()))
        self.abandoned = [t.name for t in (*self._pre, *self._compute) if t.is_alive()]

    def _fail(self, where: str, exc: Exception) -> None:
        self.error = self.error or exc
        self._lg.abort(f"system under test failed in {where}: {type(exc).__name__}: {exc}")

    def _prepare(self) -> None:
        files, decode, preprocess = self.library, self._decode, self._preprocess
        log, ready = self._sample_stamps, self._ready
        while (got := self._incoming.take(1, 0.0)) is not None:
            if self._lg.is_aborted():
                continue  # the run is ending: drain without working
            sid, index = int(got[0][0]), int(got[1][0])
            try:
                t0 = now_ns()
                image = decode(files.get(index))
                t1 = now_ns()
                x = preprocess(image)
                t2 = now_ns()
            except Exception as exc:
                self._fail("preprocessing", exc)
                return
            log.append((sid & _SEQ_MASK, t0, t1, t2))
            ready.put(_Ready(sid, index, x))

    def _work(self, run: Callable[[np.ndarray], np.ndarray]) -> None:
        log = self._batch_stamps
        while (items := self._ready.take(self._batch, self._wait_s)) is not None:
            if self._lg.is_aborted():
                continue
            ids = np.fromiter((it.id for it in items), dtype=np.uint64, count=len(items))
            try:
                x = np.stack([it.x for it in items])  # batching: counted as waiting for a batch
                t3 = now_ns()
                out = run(x)
                t4 = now_ns()
                answers = self._postprocess(out)
                t5 = now_ns()
                if self.top1 is not None:
                    self.top1.put(ids, out)
                if self.outputs is not None:
                    for it, row, ans in zip(items, np.array(out, copy=True), answers):
                        self.outputs[it.index] = row
                        self.answers[it.index] = ans
            except Exception as exc:
                self._fail("a worker", exc)
                return
            self._lg.complete(ids)
            log.append(([int(i) & _SEQ_MASK for i in ids.tolist()], t3, t4, t5))

    def stage_columns(self, records: dict[str, np.ndarray], first_seq: int
                      ) -> dict[str, np.ndarray]:
        """Each record's time in every stage (``<stage>_ns``, -1 where it never got through the
        stage) and ``batch``, the backend call that computed it (-1: none), aligned with the load
        generator's records (record i is sequence number ``first_seq + i``). Call after
        ``close``."""
        n = len(records["index"])
        t = np.full((6, n), -1, dtype=np.int64)  # decode start, decoded, preprocessed, batch
        batch = np.full(n, -1, dtype=np.int64)   # start, computed, post-processed
        for seq, t0, t1, t2 in list(self._sample_stamps):
            r = seq - first_seq
            if 0 <= r < n:
                t[0:3, r] = (t0, t1, t2)
        for b, (seqs, t3, t4, t5) in enumerate(list(self._batch_stamps)):
            rows = np.asarray(seqs, dtype=np.int64) - first_seq
            rows = rows[(rows >= 0) & (rows < n)]
            t[3:6, rows] = np.array([[t3], [t4], [t5]])
            batch[rows] = b
        issue = records["issue_ns"].astype(np.int64)
        starts = (issue, t[0], t[1], t[2], t[3], t[4])
        cols = {}
        for name, start, end in zip(STAGES, starts, t):
            ok = (start > 0) & (end > 0)
            cols[f"{name}_ns"] = np.where(ok, end - start, -1)
        cols["batch"] = batch
        return cols
