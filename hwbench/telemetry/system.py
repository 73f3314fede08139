"""CPU load and memory of this machine and process, through psutil.

Every column is a plain reading or a cumulative counter (CPU seconds); rates are worked out from
the sampler's timestamps, so this source reads no clock.
"""
from __future__ import annotations

import psutil

from hwbench.telemetry.base import Layout, Source

COLUMNS = ("cpu_busy_s", "process_cpu_s", "rss_bytes")
# Listing child processes scans all of /proc (1.5-2.5 ms): done every this many reads only (10 s
# at 10 Hz; backends start their workers at load time),
# while the known children's memory is read every time.
CHILD_SCAN_EVERY = 100


class SystemSource(Source):
    name = "system"
    power = False

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.children: list[psutil.Process] = []
        self.reads = 0

    def open(self) -> Layout:
        return Layout([], list(COLUMNS))

    def read(self) -> list[float]:
        t = psutil.cpu_times()
        # Busy time summed over all CPUs: everything but idle and waiting for I/O.
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
        own = self.proc.cpu_times()
        rss = self.proc.memory_info().rss
        if self.reads % CHILD_SCAN_EVERY == 0:
            self.children = self.proc.children(recursive=True)
        self.reads += 1
        for child in self.children:
            try:
                rss += child.memory_info().rss
            except psutil.Error:
                continue  # it ended between listing and reading
        return [busy, own.user + own.system + own.children_user + own.children_system,
                float(rss)]
