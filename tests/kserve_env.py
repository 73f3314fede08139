"""A real KServe v2 server for the tests, from a virtual environment of its own.

kserve 0.21 pins pandas<3 and psutil<6 and pulls in a Kubernetes client, so it never enters
hwbench's environment: the tests make a venv with it and onnxruntime once and reuse it
(tests/server_venv.py: where, the lock, the ``.complete`` marker, when a test skips).
"""
from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import server_venv

REQUIREMENTS = ("kserve==0.21.*", "onnxruntime>=1.17")
SERVER = Path(__file__).with_name("kserve_server.py")
READY_S = 90.0  # kserve imports a great deal; a cold start on a busy 2-core machine is slow
VENV = server_venv.Venv("kserve-0.21", REQUIREMENTS, "import kserve, onnxruntime")
env_dir, python, free_port = VENV.dir, VENV.python, server_venv.free_port


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
        server_venv.stop(self.proc)


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
