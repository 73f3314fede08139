"""A third-party backend for the stuck-call tests (tests/test_stuck.py): the null backend whose
call after ``stall_after`` never returns.

It reaches a real ``hwbench`` subprocess the way any plugin does, through the ``hwbench.backends``
entry point declared in the dist-info beside this file (put this folder on PYTHONPATH). A stuck
call can only be tested in a subprocess: the thread it leaves behind must end with its process.
A fake only in that it never computes: the stall is what the tests exercise.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwbench._loadgen import spin_for_ns
from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, option

FOREVER_NS = 10**18  # about 32 years of spinning


class StuckBackend(Backend):
    name: ClassVar[str] = "stuck"
    description: ClassVar[str] = "test plugin: the null backend whose call never returns"

    @dataclass(frozen=True)
    class Options:
        stall: str = option("sleep", "how the stuck call waits: sleep (GIL released), python "
                            "(a busy loop in Python), native (a busy loop, GIL released)",
                            choices=("sleep", "python", "native"))
        stall_after: int = option(5, "calls of run() that return before one never does",
                                  minimum=0)
        where: str = option("run", "which call gets stuck: run, or load (on the main thread)",
                            choices=("run", "load"))

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True, devices=("none",), precisions=("none",))

    def load(self, model: ModelArtifact) -> None:
        self._zeros = np.zeros((1, *model.output_shape), dtype=np.float32)
        self._shape = model.output_shape
        self._calls = 0
        if self.opts.where == "load":
            self._stall()

    def run(self, batch: np.ndarray) -> np.ndarray:
        self._calls += 1
        if self.opts.where == "run" and self._calls > self.opts.stall_after:
            self._stall()
        n = len(batch)
        if n > len(self._zeros):
            self._zeros = np.zeros((n, *self._shape), dtype=np.float32)
        return self._zeros[:n]

    def _stall(self) -> None:
        # The line a test waits for before it sends Ctrl-C (tests/cli_helpers.py, Watched).
        print(f"stuck: stalling in {self.opts.where}", file=sys.stderr, flush=True)
        if self.opts.stall == "sleep":
            threading.Event().wait()
        elif self.opts.stall == "native":
            spin_for_ns(FOREVER_NS)
        else:
            x = 0
            while True:
                x += 1

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, device="none", precision="none", computes=False,
                           options=self.option_values())
