"""Live progress on stderr while the load generator runs; stdout stays for results."""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator, TextIO

from hwbench.harness.loadgen import LoadGen


class Reporter:
    """Messages and live progress for a person watching; silent when ``enabled`` is false."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True,
                 interval_s: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interval_s = interval_s
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def info(self, message: str) -> None:
        if self.enabled:
            print(f"hwbench: {message}", file=self.stream, flush=True)

    @contextmanager
    def watch(self, lg: LoadGen, label: str) -> Iterator[None]:
        """Shows phase, elapsed time, completed samples and current throughput until done."""
        if not self.enabled:
            yield
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(lg, label, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _loop(self, lg: LoadGen, label: str, stop: threading.Event) -> None:
        last_done, last_t = 0, 0.0
        every = 1 if self._tty else max(1, round(5.0 / self.interval_s))
        tick = 0
        while not stop.wait(self.interval_s):
            phase, elapsed, issued, done = lg.progress()
            rate = (done - last_done) / (elapsed - last_t) if elapsed > last_t else 0.0
            last_done, last_t = done, elapsed
            tick += 1
            if tick % every == 0:
                self._line(f"{label} [{phase}] {elapsed:7.1f} s  {done:,} / {issued:,} samples  "
                           f"{rate:,.1f} samples/s", final=False)
        phase, elapsed, issued, done = lg.progress()
        self._line(f"{label}: {done:,} / {issued:,} samples completed", final=True)

    def _line(self, text: str, final: bool) -> None:
        if self._tty:
            print(f"\r\033[K{text}", end="\n" if final else "", file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)
