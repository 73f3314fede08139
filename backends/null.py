"""The ``null`` backend: completes samples without computing, to measure the harness itself.

With ``service_time_us`` set, each sample costs exactly that long of busy-waiting in the
compiled extension (GIL released), one sample after another in arrival order: a single FIFO
worker with a fixed service time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

# The busy-wait is the compiled load generator's (GIL released): this backend never reads a clock.
from hwbench._loadgen import spin_for_ns
from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, option


class NullBackend(Backend):
    name: ClassVar[str] = "null"
    description: ClassVar[str] = "no computation: measures the harness (optional fixed service time)"

    @dataclass(frozen=True)
    class Options:
        service_time_us: float = option(0.0, "busy-wait per sample, in microseconds", minimum=0)

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True, devices=("none",), precisions=("none",))

    def load(self, model: ModelArtifact) -> None:
        self._shape = model.output_shape
        self._zeros = np.zeros((1, *self._shape), dtype=np.float32)
        self._spin_ns = int(self.opts.service_time_us * 1000)

    def run(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if self._spin_ns:
            spin_for_ns(self._spin_ns * n)
        if n > len(self._zeros):
            self._zeros = np.zeros((n, *self._shape), dtype=np.float32)
        return self._zeros[:n]

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, device="none", precision="none", computes=False,
                           options=self.option_values())
