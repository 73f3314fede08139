"""What a long run keeps of every output: its top-1 class, by sample sequence number.

A soak (``--soak-minutes``) judges whether answers drift over the run, window by window, so it
needs an answer per issued sample, not per sample index; outputs themselves would be too large
to keep (a 1000-class output per sample for minutes). One int32 per sample is.
"""
from __future__ import annotations

import threading

import numpy as np

from hwbench.artifacts import primary

SEQ_MASK = (1 << 32) - 1  # an id's sequence number within its run (hwbench.harness.loadgen)


class Top1Log:
    """The argmax of each completed sample's output, by sequence number; -1 where none came.
    ``put`` is called from the thread that ran the batch: the issue thread or any worker."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self._top1 = np.full(capacity, -1, dtype=np.int32)
        self._lock = threading.Lock()

    def put(self, ids: np.ndarray, outputs: np.ndarray) -> None:
        seq = (np.asarray(ids, dtype=np.uint64) & np.uint64(SEQ_MASK)).astype(np.int64)
        # A model of several outputs is judged on its first (hwbench.artifacts.primary).
        top1 = primary(np.asarray(outputs)).reshape(len(seq), -1).argmax(axis=1).astype(np.int32)
        with self._lock:
            need = int(seq.max()) + 1
            if need > len(self._top1):
                grown = np.full(max(need, 2 * len(self._top1)), -1, dtype=np.int32)
                grown[:len(self._top1)] = self._top1
                self._top1 = grown
            self._top1[seq] = top1

    def window(self, first_seq: int, n: int) -> np.ndarray:
        """The top-1 of ``n`` samples from sequence number ``first_seq`` (the measured window)."""
        out = np.full(n, -1, dtype=np.int32)
        got = self._top1[first_seq:first_seq + n]
        out[:len(got)] = got
        return out
