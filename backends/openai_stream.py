"""The ``openai`` backend's wire and serving loop: OpenAI-compatible completions or chat
completions, streamed as server-sent events over plain ``http.client``, from a fixed number of
connections.

``Connection`` holds one keep-alive HTTP connection and makes one request at a time on it.
``Streams`` is the serving loop: ``connections`` threads, each with its own ``Connection``, take
submitted requests in arrival order, so at most that many are in flight; a request that waits
for a free connection is reported to the sink's ``started`` when a thread takes it (the harness
stamps it: client queueing). Each thread reports its request's text chunks as token events
(``sink.tokens``) and its end (``sink.complete``); the load generator timestamps them. Nothing
here reads a clock: socket timeouts bound every wait.

Threading contract: ``serve``, ``drain``, ``stop`` on the harness's thread; ``submit`` on the
load generator's issue thread, never blocking; the sink is called from the connection threads,
each request's events from the one thread that serves it. A failed request is counted by kind;
past ``max_errors`` the loop calls ``sink.abort`` naming the first failure and releases
``drain``: a fault never hangs a run.
"""
from __future__ import annotations

import collections
import http.client
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from hwbench.backends.remote import RemoteError, classified, connect, split


class Connection:
    """One keep-alive connection, one request at a time; reconnects after a failure."""

    def __init__(self, url: str, *, timeout_s: float, connect_timeout_s: float,
                 tls: ssl.SSLContext | None, headers: dict[str, str]) -> None:
        self._url, self._tls = url, tls
        self.base = split(url, tls is not None)[3]
        self._timeout, self._connect_timeout = timeout_s, connect_timeout_s
        self._headers = headers  # never logged: it may hold the API key
        self._conn: http.client.HTTPConnection | None = None
        self._interrupted = False

    def _open(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = connect(self._url, timeout_s=self._timeout,
                                 connect_timeout_s=self._connect_timeout, tls=self._tls)
        if self._interrupted:  # stop came while connecting: never wait timeout_s for nothing
            raise RemoteError("disconnected", "stopped")
        return self._conn

    def get_json(self, path: str) -> tuple[int, dict[str, str], Any]:
        """GET ``path``: (status, headers, the JSON body or None)."""
        try:
            conn = self._open()
            conn.request("GET", self.base + path, headers=self._headers)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException as exc:
            self.close()
            raise classified(exc, self._timeout) from None
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body

    def events(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST ``body`` to ``path`` and yield each server-sent event's JSON until ``[DONE]`` or
        the end of the stream. Raises RemoteError: ``http_<status>`` for an answer that is not
        a stream, ``server_error`` for an error event, else the socket's kind."""
        try:
            conn = self._open()
            conn.request("POST", self.base + path, body=json.dumps(body).encode(),
                         headers={**self._headers, "Content-Type": "application/json",
                                  "Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RemoteError(f"http_{resp.status}", detail(resp.read()))
            for line in iter(resp.readline, b""):
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments, event names
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                event = json.loads(data)
                if isinstance(event, dict) and event.get("error"):
                    raise RemoteError("server_error", str(event["error"])[:300])
                yield event
            resp.read()  # the rest of a chunked body, so the connection can be reused
        except ValueError as exc:
            self.close()
            raise RemoteError("bad_response", f"an event that is not JSON ({exc})") from None
        except BaseException as exc:
            self.close()
            raise classified(exc, self._timeout) from None

    def interrupt(self) -> None:
        """Ends a read in progress on another thread (stop): shuts the socket down; a
        connection opened after this refuses to be used."""
        self._interrupted = True
        conn = self._conn
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def detail(data: bytes) -> str:
    """The message of an error body (OpenAI's ``{"error": {"message": ...}}``, FastAPI's
    ``{"detail": ...}``), short."""
    try:
        body = json.loads(data)
        err = body.get("error") or body.get("detail") or body.get("message") or body
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:300]
    except (ValueError, AttributeError):
        return data[:300].decode(errors="replace")


@dataclass
class Result:
    """One finished request: its token count (the server's usage where given), its text."""

    count: int
    text: str
    usage: bool


class Streams:
    """The serving loop over ``connections`` connections (see the module's docstring).

    ``request(conn, request, report)`` sends one request and returns its ``Result``, calling
    ``report(count, first)`` at every chunk that carries text (``first``: the first token's
    value, or None where unknown).
    """

    def __init__(self, make: Callable[[], Connection], connections: int,
                 request: Callable[[Connection, Any, Callable[[int, int | None], None]], Result],
                 max_errors: int, encode: Callable[[str], list[int]] | None) -> None:
        self._make, self._n, self._request = make, connections, request
        self._max_errors, self._encode = max_errors, encode
        self._cv = threading.Condition()
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()  # under _cv
        self._submitted = self._finished = 0  # under _cv
        self._stopping = False                # under _cv
        self._failed: str | None = None       # under _cv
        self._errors: dict[str, int] = {}     # under _cv, kept across passes
        self._threads: list[threading.Thread] = []
        self._conns: list[Connection] = []
        self._outputs: dict[int, np.ndarray] = {}
        self._sink: Any = None
        self._keep = False

    def serve(self, sink: Any, keep_outputs: bool) -> None:
        self.stop()
        with self._cv:
            self._queue.clear()
            self._submitted = self._finished = 0
            self._stopping, self._failed = False, None
        self._sink, self._keep, self._outputs = sink, keep_outputs, {}
        self._conns = [self._make() for _ in range(self._n)]
        self._threads = [threading.Thread(target=self._loop, args=(c,), daemon=True,
                                          name=f"hwbench-openai-{i}")
                         for i, c in enumerate(self._conns)]
        for t in self._threads:
            t.start()

    def submit(self, ids: np.ndarray, requests: list) -> None:
        with self._cv:
            self._queue.extend(zip(ids.tolist(), requests))
            self._submitted += len(requests)
            self._cv.notify_all()

    def drain(self) -> None:
        with self._cv:
            self._cv.wait_for(lambda: self._finished >= self._submitted or
                              self._failed is not None or self._stopping)

    def outputs(self) -> dict[int, np.ndarray]:
        return dict(self._outputs)

    def errors(self) -> dict[str, int]:
        with self._cv:
            return dict(self._errors)

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for c in self._conns:
            c.interrupt()  # a thread inside a read returns now, not after timeout_s
        for t in self._threads:
            t.join()
        for c in self._conns:
            c.close()
        self._threads, self._conns = [], []

    # -- the connection threads --------------------------------------------------------------
    def _next(self) -> tuple[int, Any] | None:
        with self._cv:
            self._cv.wait_for(lambda: self._queue or self._stopping or self._failed)
            if self._stopping or self._failed:
                return None
            return self._queue.popleft()

    def _loop(self, conn: Connection) -> None:
        while (item := self._next()) is not None:
            id_, request = item
            ids = np.array([id_], dtype=np.uint64)
            self._sink.started(ids)
            try:
                self._serve_one(conn, ids, request)
            except Exception as exc:  # a bad answer too: the run says so, never hangs
                err = exc if isinstance(exc, RemoteError) else RemoteError(
                    "bad_response", f"{type(exc).__name__}: {exc}")
                if self._failure(err):
                    self._sink.complete(ids)  # ended: what it got counts; the error is counted
            with self._cv:
                self._finished += 1
                self._cv.notify_all()

    def _serve_one(self, conn: Connection, ids: np.ndarray, request: Any) -> None:
        def report(count: int, first: int | None) -> None:
            self._sink.tokens(ids, np.array([count], dtype=np.uint32),
                              None if first is None else np.array([first], dtype=np.int64))

        result = self._request(conn, request, report)
        if result.count < request.output_tokens:
            self._count("short_output")  # the server stopped early: flagged, not failed
        if self._keep and self._encode is not None:
            self._outputs[int(ids[0])] = np.array(self._encode(result.text), dtype=np.int64)
        self._sink.complete(ids)

    def _count(self, kind: str) -> None:
        with self._cv:
            self._errors[kind] = self._errors.get(kind, 0) + 1

    def _failure(self, exc: RemoteError) -> bool:
        """Counts a failed request; past ``max_errors`` aborts the run, naming it. False: the
        loop is stopping (the failure is the stop's own interruption, not counted)."""
        with self._cv:
            if self._stopping:
                return False
            self._errors[exc.kind] = self._errors.get(exc.kind, 0) + 1
            failed = sum(n for k, n in self._errors.items() if k != "short_output")
            if self._failed is not None or failed <= self._max_errors:
                return True
            self._failed = (f"backend openai: {failed} request(s) failed, more than "
                            f"max_errors={self._max_errors}; the last: {exc}")
            self._cv.notify_all()
        self._sink.abort(self._failed)
        return True
