"""What every network backend (``kserve``, ``openai``) shares: the kinds of a failed request,
the TLS context, the API key read from the environment, and HTTP connections on loopback or
across a network with their connect and answer timeouts apart.

Nothing here reads a clock: a socket's timeout bounds a call, and the harness times it. The API
key is read from the environment variable the user names and goes only into request headers; it
is never kept in options, results or messages.
"""
from __future__ import annotations

import http.client
import os
import socket
import ssl
import urllib.parse

from hwbench.errors import UsageError


class RemoteError(Exception):
    """A request the server answered with an error, or did not answer; ``kind`` names which
    (``refused``, ``timeout``, ``disconnected``, ``tls``, ``http_<status>``, ``grpc_<code>``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def classified(exc: BaseException, timeout_s: float,
               option: str = "timeout_s") -> BaseException:
    """A socket or HTTP failure as a RemoteError naming its kind (a timeout names the option
    that bounds it); anything else unchanged."""
    if isinstance(exc, RemoteError) or not isinstance(exc, Exception):
        return exc
    if isinstance(exc, ConnectionRefusedError):
        return RemoteError("refused", "connection refused")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return RemoteError("timeout", f"no answer within {timeout_s:g} s ({option})")
    if isinstance(exc, ssl.SSLError):
        return RemoteError("tls", str(exc))
    if isinstance(exc, (ConnectionError, http.client.HTTPException)):
        return RemoteError("disconnected", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return RemoteError("network", f"{type(exc).__name__}: {exc}")
    return exc


def auth_headers(backend: str, env: str) -> dict[str, str]:
    """``Authorization: Bearer`` with the key the variable ``env`` holds; {} without one."""
    if not env:
        return {}
    key = os.environ.get(env)
    if not key:
        raise UsageError(f"backend {backend}: api_key_env={env} names an environment variable "
                         f"that is not set: export {env}=KEY, or drop the option")
    return {"Authorization": f"Bearer {key}"}


def readable(backend: str, path: str) -> str | None:
    """The CA file ``tls_ca`` names, checked to exist; None when not given."""
    if path and not os.path.isfile(path):
        raise UsageError(f"backend {backend}: tls_ca={path} is not a file: give the PEM file of "
                         "the CA that signed the server's certificate")
    return path or None


def tls_context(backend: str, ca: str | None, insecure: bool) -> ssl.SSLContext:
    """A client TLS context trusting ``ca`` (or the system's CAs); ``insecure``: no checks."""
    try:
        ctx = ssl.create_default_context(cafile=ca)
    except ssl.SSLError as exc:
        raise UsageError(f"backend {backend}: tls_ca={ca} is not a PEM certificate "
                         f"({exc})") from None
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(url: str, *, timeout_s: float, connect_timeout_s: float,
            tls: ssl.SSLContext | None) -> http.client.HTTPConnection:
    """An open keep-alive connection to ``url``'s host: connecting is bounded by
    ``connect_timeout_s``, every later read by ``timeout_s``. Raises RemoteError."""
    host, port, https, _ = split(url, tls is not None)
    try:
        if https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=connect_timeout_s, context=tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect_timeout_s)
        conn.connect()
        conn.sock.settimeout(timeout_s)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException as exc:
        raise classified(exc, connect_timeout_s, "connect_timeout_s") from None
    return conn


def split(url: str, tls: bool) -> tuple[str, int | None, bool, str]:
    """(host, port, https, base path) of a server URL; a bare ``host:port`` is http."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    return (parts.hostname or "127.0.0.1", parts.port, parts.scheme == "https" or tls,
            parts.path.rstrip("/"))
