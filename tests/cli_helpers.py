"""Running the hwbench command in-process (fast) or as a real subprocess (signals, stdout)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from hwbench.cli import main

FAST = ["--duration", "0.3", "--warmup", "0.1", "--min-queries", "20"]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, out_dir: Path, *args: str) -> tuple[int, dict]:
    code, out, err = cli(capsys, "run", "--json", "--quiet", "--output", str(out_dir), *args)
    return code, json.loads(out)


def hwbench_process(*args: str, **kw) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("hwbench")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


class Watched:
    """A subprocess whose stdout and stderr are read as they come (no pipe fills up), so that a
    test can wait for a line that says the process reached a point (``wait_for``) before it
    signals it: a fixed sleep is too short when imports are slow on a busy machine."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(f, lines), daemon=True)
                         for f, lines in ((proc.stdout, self.out), (proc.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        """Returns once a line of stderr holds ``text``; fails the test if the process ends or
        ``timeout`` passes first."""
        end = time.monotonic() + timeout
        while not any(text in line for line in list(self.err)):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.proc.kill()
                self.finish(10)
                raise AssertionError(f"no stderr line with {text!r} (exit {self.proc.returncode});"
                                     f" stderr:\n{''.join(self.err)[-2000:]}")
            time.sleep(0.05)

    def finish(self, timeout: float) -> tuple[str, str]:
        """Waits ``timeout`` seconds for the process to end (killing it past that, which fails
        the test); returns its stdout and stderr."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            for t in self._readers:
                t.join(10)
            raise AssertionError(f"the command was still running after {timeout} s; stderr:\n"
                                 f"{''.join(self.err)[-2000:]}") from None
        for t in self._readers:
            t.join(10)
        return "".join(self.out), "".join(self.err)


def register_backend(monkeypatch, cls) -> None:
    """Makes backend class `cls` (defined in a test) selectable as ``--backend cls.name``."""
    from hwbench import backends

    real = backends.backend_class
    monkeypatch.setattr(backends, "backend_class",
                        lambda name: cls if name == cls.name else real(name))


# What a busy, shared machine alone can make a short run fail: its window, its query count, its
# latency. An accuracy miss, a fault, a fidelity finding or an interruption is never one of them.
LOAD_REASONS = ("too short:", "too few queries", "too few samples", "exceeds the bound",
                "latency bound")


def load_only(reasons: list[str]) -> list[str]:
    """The reasons in `reasons` that a busy machine cannot explain (empty: all can)."""
    return [r for r in reasons if not any(k in r for k in LOAD_REASONS)]


def assert_valid_or_load_bound(code: int, doc: dict) -> None:
    """Exit 0 with a valid result, or exit 3 for no reason but the machine's load."""
    if code == 0:
        assert doc["valid"] and not doc["invalid_reasons"], doc["invalid_reasons"]
        return
    assert code == 3 and not doc["valid"], (code, doc["invalid_reasons"])
    assert doc["invalid_reasons"] and not load_only(doc["invalid_reasons"]), doc["invalid_reasons"]
    assert not doc["interrupted"]
