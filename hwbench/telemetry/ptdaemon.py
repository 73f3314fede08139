"""Wall power from an external analyzer through SPEC PTDaemon's TCP protocol, as MLPerf Power
measures it.

The protocol is line-based text, each line ending in CR LF, one reply per command. The commands
used here are those MLCommons' power-dev server sends (ptd_client_server/lib/server.py):
``Hello`` (the reply starts "Hello, PTDaemon here!"), ``Identify``, ``Go,<interval ms>,<samples,
0 = unlimited>,<mark>`` to start a measurement, ``Watts`` for the latest reading and ``Stop``.
"""
from __future__ import annotations

import socket

from hwbench.errors import PtdError, SourceUnavailable
from hwbench.telemetry.base import Channel, Layout, Source

HELLO = "Hello, PTDaemon here!"
TIMEOUT_S = 5.0
ANALYZER_INTERVAL_MS = 100


class PtdClient:
    """A blocking PTDaemon client. Not thread-safe: one thread talks to it at a time."""

    def __init__(self, host: str, port: int, timeout_s: float = TIMEOUT_S) -> None:
        self.address = (host, port)
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buf = b""

    def connect(self) -> str:
        """Connects and checks the greeting; returns the analyzer's identification."""
        self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
        hello = self.command("Hello")
        if not hello.startswith(HELLO):
            raise PtdError(f"{self.where} is not PTDaemon: it answered {hello!r} to Hello")
        return self.command("Identify")

    @property
    def where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def command(self, text: str) -> str:
        if self._sock is None:
            raise PtdError("not connected")
        self._sock.sendall(text.encode() + b"\r\n")
        while b"\r\n" not in self._buf:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise PtdError(f"the analyzer at {self.where} closed the connection")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\r\n")
        reply = line.decode(errors="replace")
        if reply.startswith("Error"):
            raise PtdError(f"the analyzer at {self.where} answered {text!r} with {reply!r}")
        return reply

    def go(self, interval_ms: int, mark: str) -> None:
        self.command(f"Go,{interval_ms},0,{mark}")

    def watts(self) -> float:
        """The latest reading; PTDaemon answers "Watts,<value>"."""
        reply = self.command("Watts")
        try:
            return float(reply.rsplit(",", 1)[-1])
        except ValueError:
            raise PtdError(f"unreadable Watts reply {reply!r}") from None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self.command("Stop")
            except (OSError, PtdError):
                pass  # already gone: the reading's fault was recorded where it happened
            self._sock.close()
            self._sock = None


class PtdSource(Source):
    name = "ptdaemon"
    kind = "wall"

    def __init__(self, host: str | None, port: int | None) -> None:
        self.host, self.port = host, port
        self.client: PtdClient | None = None

    @classmethod
    def from_config(cls, cfg) -> "PtdSource":
        return cls(cfg.ptd_host, cfg.ptd_port)

    def open(self) -> Layout:
        if self.host is None or self.port is None:
            raise SourceUnavailable("no power analyzer given: pass --ptd HOST:PORT of a "
                                    "running PTDaemon")
        self.client = PtdClient(self.host, self.port)
        try:
            ident = self.client.connect()
            self.client.go(ANALYZER_INTERVAL_MS, "hwbench")
        except (OSError, PtdError) as exc:
            # The socket may already be open (a wrong greeting, a refused Go): close it rather
            # than leave the analyzer holding a connection for the rest of the run.
            self.client.close()
            self.client = None
            raise SourceUnavailable(f"PTDaemon at {self.host}:{self.port}: {exc}") from None
        return Layout([Channel(
            "ptdaemon", "wall", "whole", counter=False,
            method=f"PTDaemon Watts polled at every tick ({ident}), trapezoidal integral",
            expected_error="the analyzer's own accuracy (see its SPEC PTDaemon acceptance), plus "
                           "power changes faster than the polling period")])

    def read(self) -> list[float]:
        assert self.client is not None
        return [self.client.watts()]

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
