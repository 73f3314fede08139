"""A real KServe v2 server for the tests, from a virtual environment of its own.

kserve 0.21 pins pandas<3 and psutil<6 and pulls in a Kubernetes client, so it never enters
hwbench's environment: the tests make a venv with it and onnxruntime once, under
``$HWBENCH_TEST_ENVS`` (default ``~/.cache/hwbench/test-envs``), named by a hash of its
requirements and Python version, and reuse it across test runs. A lock file serialises creators
(parallel test processes, CI jobs on one machine); a venv whose ``.complete`` marker is missing or
that cannot import kserve is rebuilt. Tests skip, naming the reason, only when pip cannot make it
(no package registry).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIREMENTS = ("kserve==0.21.*", "onnxruntime>=1.17")
SERVER = Path(__file__).with_name("kserve_server.py")
READY_S = 90.0  # kserve imports a great deal; a cold start on a busy 2-core machine is slow
_checked: dict[Path, Path] = {}


def env_dir() -> Path:
    root = Path(os.environ.get("HWBENCH_TEST_ENVS")
                or Path.home() / ".cache" / "hwbench" / "test-envs")
    key = "\n".join((*REQUIREMENTS, f"{sys.version_info.major}.{sys.version_info.minor}"))
    return root / f"kserve-0.21-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def python() -> Path:
    """The venv's Python, made now if need be; skips the test when it cannot be made."""
    d = env_dir()
    if d in _checked:
        return _checked[d]
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(d.parent / f"{d.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another creator finishes first; then we reuse its venv
        exe = d / "bin" / "python"
        if not _works(d, exe):
            _build(d, exe)
    _checked[d] = exe
    return exe


def _works(d: Path, exe: Path) -> bool:
    if not (d / ".complete").is_file() or not exe.exists():
        return False
    probe = subprocess.run([str(exe), "-c", "import kserve, onnxruntime"], capture_output=True,
                           timeout=120)
    return probe.returncode == 0


def _build(d: Path, exe: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True, timeout=120)
    pip = subprocess.run([str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          *REQUIREMENTS], capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        shutil.rmtree(d, ignore_errors=True)
        last = (pip.stderr.strip().splitlines() or ["(no output)"])[-1]
        pytest.skip(f"cannot create the KServe test environment (pip install "
                    f"{' '.join(REQUIREMENTS)} failed: {last})")
    (d / ".complete").write_text("\n".join(REQUIREMENTS) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    http_port: int
    grpc_port: int
    scheme: str
    log: Path

    @property
    def http_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def start(model: Path, log: Path, *extra: str, tls: tuple[Path, Path] | None = None,
          env: dict[str, str] | None = None) -> Server:
    """kserve's ModelServer on free loopback ports, once it answers /v2/health/ready."""
    http_port, grpc_port = free_port(), free_port()
    args = [str(python()), str(SERVER), "--model", str(model), "--http_port", str(http_port),
            "--grpc_port", str(grpc_port), *extra]
    if tls:
        args += ["--ssl_certfile", str(tls[0]), "--ssl_keyfile", str(tls[1])]
    out = open(log, "w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    server = Server(proc, http_port, grpc_port, "https" if tls else "http", log)
    deadline = time.monotonic() + READY_S  # not a measurement: how long to wait for a start
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the KServe test server exited: {log.read_text()[-2000:]}")
        if _ready(server, tls):
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the KServe test server did not start: {log.read_text()[-2000:]}")


def _ready(server: Server, tls: tuple[Path, Path] | None) -> bool:
    import ssl

    ctx = ssl._create_unverified_context() if tls else None  # only probing readiness
    try:
        with urllib.request.urlopen(f"{server.http_url}/v2/health/ready", timeout=1,
                                    context=ctx) as r:
            return r.status == 200
    except OSError:
        return False
