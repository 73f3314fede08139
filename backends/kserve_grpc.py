"""The Open Inference Protocol (KServe v2) over gRPC, through ``tritonclient.grpc``.

``tritonclient`` speaks the ``inference.GRPCInferenceService`` that KServe, Triton and OpenVINO
Model Server share; tensors travel as raw contents (``raw_input_contents``), never as typed
lists. A gRPC channel multiplexes the calls of every worker thread, so one client is shared.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.remote import RemoteError


class GrpcClient:
    """A KServe v2 gRPC client with the same face as ``HttpClient`` where the backend needs it.
    Thread-safe: a gRPC channel is."""

    def __init__(self, url: str, *, timeout_s: float, connect_timeout_s: float,
                 tls_ca: str | None, tls: bool, headers: dict[str, str]) -> None:
        import tritonclient.grpc as grpcclient

        self._mod = grpcclient
        target = url.split("://", 1)[-1].rstrip("/")
        self._client = grpcclient.InferenceServerClient(
            target, ssl=tls, root_certificates=tls_ca or None)
        self._timeout = timeout_s
        self._connect_timeout = connect_timeout_s
        self._headers = headers  # never logged: it may hold the API key

    def _call(self, what: str, fn: Any, *args: Any, timeout: float, **kw: Any) -> Any:
        from tritonclient.utils import InferenceServerException

        try:
            return fn(*args, headers=self._headers, client_timeout=timeout, **kw)
        except InferenceServerException as exc:
            raise _classified(exc, what, timeout) from None

    def server_metadata(self) -> dict[str, Any]:
        return self._call("server metadata", self._client.get_server_metadata,
                          timeout=self._connect_timeout, as_json=True)

    def model_metadata(self, model: str, version: str) -> dict[str, Any]:
        return self._call("model metadata", self._client.get_model_metadata, model, version,
                          timeout=self._connect_timeout, as_json=True)

    def model_names(self) -> list[str]:
        index = self._call("repository index", self._client.get_model_repository_index,
                           timeout=self._connect_timeout, as_json=True)
        return [m["name"] for m in index.get("models", [])]

    def infer(self, model: str, version: str, inputs: list[tuple[str, np.ndarray, str]],
              output_names: list[str]) -> list[np.ndarray]:
        """`inputs` as (name, tensor, datatype), the outputs named, in that order."""
        sent = []
        for name, tensor, datatype in inputs:
            inp = self._mod.InferInput(name, list(tensor.shape), datatype)
            inp.set_data_from_numpy(np.ascontiguousarray(tensor))
            sent.append(inp)
        result = self._call("inference", self._client.infer, model, sent,
                            model_version=version,
                            outputs=[self._mod.InferRequestedOutput(n) for n in output_names],
                            timeout=self._timeout)
        outs = [result.as_numpy(n) for n in output_names]
        for name, out in zip(output_names, outs):
            if out is None:
                raise RemoteError("bad_response", f"the response has no output named {name!r}")
        return outs

    def close(self) -> None:
        self._client.close()


def _classified(exc: Any, what: str, timeout: float) -> RemoteError:
    status = (exc.status() or "").removeprefix("StatusCode.")
    kind = {"UNAVAILABLE": "refused", "DEADLINE_EXCEEDED": "timeout",
            "UNAUTHENTICATED": "unauthenticated"}.get(status, f"grpc_{status.lower() or 'error'}")
    msg = (exc.message() or str(exc)).splitlines()[0][:300]
    if kind == "timeout":
        msg = f"no answer to the {what} request within {timeout:g} s (timeout_s)"
    return RemoteError(kind, msg)
