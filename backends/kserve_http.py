"""The Open Inference Protocol (KServe v2) over HTTP/REST, with the binary-data extension.

Plain ``http.client``: one keep-alive connection per calling thread, so that N harness workers
keep at most N requests in flight. Tensors travel as raw bytes after a JSON header whose length
is given in the ``Inference-Header-Content-Length`` header (the binary tensor data extension),
never as JSON lists. Nothing here reads a clock: the socket's timeout bounds a call, and the
harness times it.
"""
from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from typing import Any

import numpy as np

from hwbench.backends.remote import RemoteError, classified, connect, split

_HEADER_LEN = "Inference-Header-Content-Length"
_NP_OF = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT64": np.int64,
          "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}


class HttpClient:
    """A KServe v2 REST client. Thread-safe: each thread has its own connection."""

    def __init__(self, url: str, *, timeout_s: float, connect_timeout_s: float,
                 tls: ssl.SSLContext | None, headers: dict[str, str]) -> None:
        self._url = url
        self.base = split(url, tls is not None)[3]
        self._tls = tls
        self._timeout = timeout_s
        self._connect_timeout = connect_timeout_s
        self._headers = headers  # never logged: it may hold the API key
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # connecting is bounded apart from answering
            conn = connect(self._url, timeout_s=self._timeout,
                           connect_timeout_s=self._connect_timeout, tls=self._tls)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request on this thread's connection: (status, headers, body)."""
        try:
            conn = self._connection()
            conn.request(method, self.base + path, body=body,
                         headers={**self._headers, **(headers or {})})
            resp = conn.getresponse()
            data = resp.read()
        except BaseException as exc:
            self._drop()
            raise classified(exc, self._timeout) from None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def get_json(self, path: str) -> tuple[int, Any]:
        status, _, data = self.request("GET", path)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode(errors="replace")[:200]

    def infer(self, model: str, version: str, inputs: list[tuple[str, np.ndarray, str]],
              output_names: list[str]) -> list[np.ndarray]:
        """`inputs` as (name, tensor, datatype), the outputs named, in that order."""
        tensors = [np.ascontiguousarray(t) for _, t, _ in inputs]
        head = json.dumps({
            "inputs": [{"name": name, "shape": list(t.shape), "datatype": datatype,
                        "parameters": {"binary_data_size": t.nbytes}}
                       for (name, _, datatype), t in zip(inputs, tensors)],
            "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in output_names],
        }).encode()
        status, headers, data = self.request(
            "POST", f"{model_path(model, version)}/infer",
            b"".join([head, *(t.tobytes() for t in tensors)]),
            {"Content-Type": "application/octet-stream", _HEADER_LEN: str(len(head))})
        if status != 200:
            raise RemoteError(f"http_{status}", _detail(data))
        found = _outputs(data, headers.get(_HEADER_LEN.lower()))
        missing = [n for n in output_names if n not in found]
        if missing:
            raise RemoteError("bad_response", f"the response has no output named {missing[0]!r}")
        return [found[n] for n in output_names]

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def model_path(model: str, version: str) -> str:
    name = urllib.parse.quote(model, safe="")
    return f"/v2/models/{name}" + (f"/versions/{urllib.parse.quote(version, safe='')}"
                                   if version else "")


def _outputs(data: bytes, header_len: str | None) -> dict[str, np.ndarray]:
    """The output tensors of an inference response by name, binary or JSON."""
    n = int(header_len) if header_len else len(data)
    head = json.loads(data[:n])
    offset = n
    found = {}
    for out in head.get("outputs", []):
        size = (out.get("parameters") or {}).get("binary_data_size")
        dtype = _NP_OF.get(out.get("datatype"), np.float32)
        if size is not None:
            raw, offset = data[offset:offset + size], offset + size
            found[out["name"]] = np.frombuffer(raw, dtype=dtype).reshape(out["shape"])
        else:
            found[out["name"]] = np.asarray(out["data"], dtype=dtype).reshape(out["shape"])
    return found


def _detail(data: bytes) -> str:
    try:
        return str(json.loads(data).get("error", data[:200]))
    except (ValueError, AttributeError):
        return data[:200].decode(errors="replace")
