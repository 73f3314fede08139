"""The ``kserve`` backend: a remote server speaking the Open Inference Protocol (KServe v2).

Triton, OpenVINO Model Server, KServe and TorchServe speak it, over HTTP (``kserve_http``, with
the binary-data extension) or gRPC (``kserve_grpc``, raw contents). The workload's artifact
names the input and output tensors (every one of a model of several, sent and read by name);
before anything is measured the server's model metadata is checked against them, so a wrong
model fails in seconds (exit 2), not mid-run.

A network backend is a backend: it computes (remotely) and never reads a clock. Requests in
flight are the harness's workers (``--instances N``): the backend is thread-safe, each worker
holds one connection (HTTP) or shares one channel (gRPC). A request that errs or passes
``timeout_s`` raises, naming its kind, and the harness ends the run invalid with that reason.
The API key is read from the environment variable ``api_key_env`` names and is sent as a bearer
token; the key itself is never kept in the options, the result or any message.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hwbench.artifacts import named_tensors, pack
from hwbench.backends import remote
from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, option
from hwbench.errors import BackendUnavailable, ModelError, UsageError

_DATATYPE = {"float32": "FP32", "float16": "FP16", "float64": "FP64", "int64": "INT64",
             "int32": "INT32", "int16": "INT16", "int8": "INT8", "uint8": "UINT8",
             "bool": "BOOL"}
_INSTALL = "install it with: pip install 'hwbench[serving]'"


class KServeBackend(Backend):
    name: ClassVar[str] = "kserve"
    description: ClassVar[str] = ("a remote server speaking the Open Inference Protocol "
                                  "(KServe v2: Triton, OpenVINO Model Server, KServe), HTTP or gRPC")

    @dataclass(frozen=True)
    class Options:
        url: str = option("", "the server: http[s]://host:port for http, host:port for grpc")
        model: str = option("", "the model's name on the server")
        model_version: str = option("", "the model's version on the server (empty: its default)")
        protocol: str = option("http", "the wire protocol", choices=("http", "grpc"))
        timeout_s: float = option(10.0, "longest wait for one request's answer", minimum=0.001)
        connect_timeout_s: float = option(3.0, "longest wait to connect and for the metadata",
                                          minimum=0.001)
        tls: bool = option(False, "use TLS (implied by an https:// url or tls_ca)")
        tls_ca: str = option("", "CA certificate file (PEM) that signed the server's certificate")
        insecure: bool = option(False, "TLS without checking the server's certificate (http)")
        api_key_env: str = option("", "environment variable holding an API key, sent as "
                                      "'Authorization: Bearer'; the key is never recorded")

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True, devices=("remote",), precisions=("fp32",))

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self._errors: dict[str, int] = {}  # failed requests by kind, for the result
        self._errors_lock = threading.Lock()

    def load(self, model: ModelArtifact) -> None:
        o = self.opts
        if not o.url or not o.model:
            raise UsageError("backend kserve needs the server and the model: --backend-opt "
                             "url=http://HOST:PORT --backend-opt model=NAME")
        self._artifact = model
        self._datatype = _DATATYPE.get(model.dtype, model.dtype.upper())
        # Every input and output by name (a model of several: --workload onnx).
        self._types = {t.name: _DATATYPE.get(t.dtype, t.dtype.upper())
                       for t in (*model.inputs, *model.outputs)}
        self._named = len(model.inputs) > 1 or len(model.outputs) > 1
        self._client = self._connect()
        self._server = self._server_metadata()
        self._check_model(self._model_metadata())

    def _connect(self) -> Any:
        o = self.opts
        headers = remote.auth_headers(self.name, o.api_key_env)
        tls = o.tls or bool(o.tls_ca) or o.url.startswith(("https://", "grpcs://"))
        if o.protocol == "grpc":
            if o.insecure:
                raise UsageError("backend kserve: insecure=true is for http; for grpc give the "
                                 "server's CA with --backend-opt tls_ca=PATH")
            try:
                from hwbench.backends.kserve_grpc import GrpcClient
            except ImportError as exc:
                raise BackendUnavailable(f"backend kserve: protocol grpc needs tritonclient "
                                         f"({exc}); {_INSTALL}") from None
            return GrpcClient(o.url, timeout_s=o.timeout_s, connect_timeout_s=o.connect_timeout_s,
                              tls_ca=remote.readable(self.name, o.tls_ca), tls=tls,
                              headers=headers)
        from hwbench.backends.kserve_http import HttpClient

        return HttpClient(o.url, timeout_s=o.timeout_s, connect_timeout_s=o.connect_timeout_s,
                          tls=(remote.tls_context(self.name, remote.readable(self.name, o.tls_ca),
                                                  o.insecure) if tls else None),
                          headers=headers)

    def _server_metadata(self) -> dict[str, Any]:
        try:
            if self.opts.protocol == "grpc":
                return self._client.server_metadata()
            status, meta = self._client.get_json("/v2")
        except remote.RemoteError as exc:
            if exc.kind == "tls":
                raise UsageError(f"backend kserve: TLS with {self.opts.url} failed ({exc}): give "
                                 "the CA of its certificate with --backend-opt tls_ca=PATH") from None
            if exc.kind == "unauthenticated":
                raise _refused(self.opts.url, str(exc)) from None
            raise UsageError(f"backend kserve: no KServe v2 server answers at {self.opts.url} "
                             f"({exc}): start it, or fix --backend-opt url=") from None
        if status in (401, 403):
            raise _refused(self.opts.url, f"GET /v2 answered {status}")
        if status != 200 or not isinstance(meta, dict):
            raise UsageError(f"backend kserve: {self.opts.url} is not a KServe v2 server (GET /v2 "
                             f"answered {status}): fix --backend-opt url=")
        return meta

    def _model_metadata(self) -> dict[str, Any]:
        from hwbench.backends.kserve_http import model_path

        o = self.opts
        try:
            if o.protocol == "grpc":
                return self._client.model_metadata(o.model, o.model_version)
            status, meta = self._client.get_json(model_path(o.model, o.model_version))
            if status == 200 and isinstance(meta, dict):
                return meta
            detail = f"answered {status}"
        except remote.RemoteError as exc:
            detail = str(exc)
        raise UsageError(f"backend kserve: the server at {o.url} has no model {o.model!r} "
                         f"({detail}); it serves: {self._model_names()}; fix --backend-opt model=")

    def _model_names(self) -> str:
        """The models the server lists, for a message (best effort: not every server lists)."""
        try:
            if self.opts.protocol == "grpc":
                names = self._client.model_names()
            else:
                names = _http_model_names(self._client)
        except remote.RemoteError:
            names = []
        return ", ".join(sorted(names)) or "(the server does not list its models)"

    def _check_model(self, meta: dict[str, Any]) -> None:
        """The artifact's input and output, by name, against what the server declares."""
        a = self._artifact
        wanted = [("input", t, "inputs") for t in a.inputs]
        wanted += [("output", t, "outputs") for t in a.outputs]
        for role, spec, tensors in wanted:
            name, shape = spec.name, spec.shape
            datatype = self._types[name] if self._named else self._datatype
            declared = {t.get("name"): t for t in meta.get(tensors, [])}
            if name not in declared:
                raise ModelError(f"backend kserve: model {self.opts.model!r} has no {role} named "
                                 f"{name!r} (it has: {', '.join(map(str, declared)) or 'none'}); "
                                 "serve the workload's model or fix --backend-opt model=")
            t = declared[name]
            if t.get("datatype") and t["datatype"] != datatype:
                raise ModelError(f"backend kserve: {role} {name!r} is {t['datatype']} on the "
                                 f"server, the workload's is {datatype}; serve the "
                                 "workload's model")
            if not _shape_fits([int(d) for d in t.get("shape", [])], shape):
                raise ModelError(f"backend kserve: {role} {name!r} has shape {t.get('shape')} on "
                                 f"the server, the workload's samples are {list(shape)} (after "
                                 "the batch dimension); serve the workload's model")
        self._model_meta = {k: meta[k] for k in ("name", "versions", "platform") if k in meta}

    def run(self, batch: np.ndarray) -> np.ndarray:
        a = self._artifact
        try:
            if self._named:
                feeds = named_tensors(batch, a.input_names)
                outs = self._client.infer(self.opts.model, self.opts.model_version,
                                          [(n, feeds[n], self._types[n]) for n in feeds],
                                          a.output_names)
                return pack(outs, a.output_names)
            return self._client.infer(self.opts.model, self.opts.model_version,
                                      [(a.input_name, batch, self._datatype)],
                                      [a.output_name])[0]
        except remote.RemoteError as exc:
            with self._errors_lock:
                self._errors[exc.kind] = self._errors.get(exc.kind, 0) + 1
            raise

    def request_errors(self) -> dict[str, int] | None:
        with self._errors_lock:
            return dict(self._errors)

    def info(self) -> BackendInfo:
        server = self._server
        versions = {"server": str(server.get("name", "")),
                    "server_version": str(server.get("version", "")),
                    "server_extensions": ",".join(map(str, server.get("extensions", []))),
                    "model": ",".join(f"{k}={v}" for k, v in self._model_meta.items())}
        if self.opts.protocol == "grpc":
            from importlib.metadata import version

            versions["tritonclient"] = version("tritonclient")
        return BackendInfo(self.name, device=f"remote ({self.opts.protocol})", precision="fp32",
                           thread_safe=True, versions=versions, options=self.option_values())

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None


def _refused(url: str, detail: str) -> UsageError:
    return UsageError(f"backend kserve: the server at {url} refused the request ({detail}): give "
                      "its API key with --backend-opt api_key_env=NAME (a variable holding it)")


def _shape_fits(declared: list[int], sample: tuple[int, ...]) -> bool:
    """A declared shape (``-1``: any) fits samples of ``sample`` shape behind a batch dimension."""
    if len(declared) == len(sample) + 1:
        declared = declared[1:]
    return len(declared) == len(sample) and all(d in (-1, s) or s == -1
                                                for d, s in zip(declared, sample))


def _http_model_names(client: Any) -> list[str]:
    """KServe lists its models at /v1/models; Triton and OVMS at /v2/repository/index."""
    status, body = client.get_json("/v1/models")
    if status == 200 and isinstance(body, dict):
        return [str(m) for m in body.get("models", [])]
    status, _, data = client.request("POST", "/v2/repository/index", b"{}")
    try:
        listed = json.loads(data) if status == 200 else []
    except ValueError:
        return []
    return [str(m.get("name")) for m in listed if isinstance(m, dict)]
