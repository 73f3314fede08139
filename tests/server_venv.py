"""Virtual environments of their own for the real servers the tests run (KServe, an
OpenAI-compatible server), whose dependencies must never enter hwbench's environment.

Each is made once under ``$HWBENCH_TEST_ENVS`` (default ``~/.cache/hwbench/test-envs``), named by
a hash of its requirements and Python version, and reused across test runs. A lock file
serialises creators (parallel test processes, CI jobs on one machine); a venv whose ``.complete``
marker is missing or whose probe import fails is rebuilt. Tests skip, naming the reason, only
when pip cannot make it (no package registry).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Venv:
    """One server's environment: ``name`` (a readable prefix), the pip requirements, and the
    import that proves it works."""

    name: str
    requirements: tuple[str, ...]
    probe: str
    _exe: Path | None = field(default=None, repr=False)

    def dir(self) -> Path:
        root = Path(os.environ.get("HWBENCH_TEST_ENVS")
                    or Path.home() / ".cache" / "hwbench" / "test-envs")
        key = "\n".join((*self.requirements,
                         f"{sys.version_info.major}.{sys.version_info.minor}"))
        return root / f"{self.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    def python(self) -> Path:
        """The venv's Python, made now if need be; skips the test when it cannot be made."""
        if self._exe is not None:
            return self._exe
        d = self.dir()
        d.parent.mkdir(parents=True, exist_ok=True)
        with open(d.parent / f"{d.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another creator finishes first; we reuse its venv
            exe = d / "bin" / "python"
            if not self._works(d, exe):
                self._build(d, exe)
        self._exe = exe
        return exe

    def _works(self, d: Path, exe: Path) -> bool:
        if not (d / ".complete").is_file() or not exe.exists():
            return False
        probe = subprocess.run([str(exe), "-c", self.probe], capture_output=True, timeout=120)
        return probe.returncode == 0

    def _build(self, d: Path, exe: Path) -> None:
        shutil.rmtree(d, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(d)], check=True, timeout=120)
        pip = subprocess.run([str(exe), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", *self.requirements],
                             capture_output=True, text=True, timeout=1200)
        if pip.returncode != 0:
            shutil.rmtree(d, ignore_errors=True)
            last = (pip.stderr.strip().splitlines() or ["(no output)"])[-1]
            pytest.skip(f"cannot create the {self.name} test environment (pip install "
                        f"{' '.join(self.requirements)} failed: {last})")
        (d / ".complete").write_text("\n".join(self.requirements) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Ends a test server: SIGTERM, then SIGKILL if it has not gone within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
