"""The sample library: the performance sample set, preprocessed and held in memory."""
from __future__ import annotations

import numpy as np

from hwbench.workloads import Workload


class SampleLibrary:
    """Loads samples from a workload into one contiguous array; gathers batches from it.

    ``load``/``unload`` are called on the load generator's issue thread outside timed phases;
    ``gather`` on the thread that calls the backend: the issue thread, or the harness's worker
    threads (``--instances N``, ``--batch-timeout-us``), concurrently: it only reads, which is
    safe while no ``load`` or ``unload`` runs (see hwbench.harness.loadgen's contract).
    """

    def __init__(self, workload: Workload) -> None:
        self._workload = workload
        self._rows = np.full(workload.sample_count(), -1, dtype=np.int64)
        self._data: np.ndarray | None = None

    def load(self, indices: np.ndarray) -> None:
        self._data = self._workload.load_samples(indices)
        self._rows[:] = -1
        self._rows[indices] = np.arange(len(indices))

    def unload(self, indices: np.ndarray) -> None:
        self._rows[indices] = -1
        self._data = None

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """The samples at these indices as one batch (a view when it is a single sample)."""
        if len(indices) == 1:
            r = self._rows[indices[0]]
            return self._data[r:r + 1]
        return self._data[self._rows[indices]]


class RequestLibrary:
    """The sample library of a generative workload: requests (prompts of varying length and
    output lengths), held as a list, not one array. Same threading as ``SampleLibrary``."""

    def __init__(self, workload: Workload) -> None:
        self._workload = workload
        self._loaded: dict[int, object] = {}

    def load(self, indices: np.ndarray) -> None:
        self._loaded = dict(zip(indices.tolist(), self._workload.load_requests(indices)))

    def unload(self, indices: np.ndarray) -> None:
        self._loaded = {}

    def requests(self, indices: np.ndarray) -> list:
        """The requests at these indices (``LlmRequest``), in order."""
        loaded = self._loaded
        return [loaded[i] for i in indices.tolist()]


def make_library(workload: Workload) -> SampleLibrary | RequestLibrary:
    """Requests for a generative workload, preprocessed arrays for every other."""
    return RequestLibrary(workload) if workload.generative else SampleLibrary(workload)
