"""A KServe v2 server for the tests: kserve's own ModelServer serving an ONNX model (every input
and output, by name) through onnxruntime, over HTTP (REST, binary-data extension) and gRPC, on
loopback.

Run by tests/kserve_env.py with the Python of a virtual environment that holds kserve 0.21 and
onnxruntime (kept out of hwbench's own environment: kserve pins pandas and psutil and pulls in a
Kubernetes client). Its own options, beside kserve's (``--http_port``, ``--grpc_port``,
``--ssl_certfile``, ``--ssl_keyfile``):

    --model PATH        the ONNX model served
    --name NAME         the model's name on the server
    --stall-after N     answer N inference requests, then never answer again (a stalled server)
    --api-key-env NAME  refuse HTTP requests without 'Authorization: Bearer $NAME' (401)

The server's own compute time per request is in its Prometheus metrics (GET /metrics:
``request_predict_seconds``), which bench/kserve_overhead.py reads.
"""
from __future__ import annotations

import argparse
import asyncio
import os

import onnxruntime as ort
from fastapi.responses import JSONResponse

import kserve
from kserve import InferOutput, InferRequest, InferResponse, model_server


class OnnxModel(kserve.Model):
    def __init__(self, name: str, path: str, stall_after: int) -> None:
        super().__init__(name)
        self._path = path
        self._stall_after = stall_after
        self._answered = 0
        self.load()

    def load(self) -> bool:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self._session = ort.InferenceSession(self._path, so, providers=["CPUExecutionProvider"])
        self._ins = self._session.get_inputs()
        self._outs = self._session.get_outputs()
        self.ready = True
        return True

    def get_input_types(self) -> list[dict]:
        return [_declared(i) for i in self._ins]

    def get_output_types(self) -> list[dict]:
        return [_declared(o) for o in self._outs]

    async def predict(self, payload: InferRequest, headers=None, response_headers=None):
        self._answered += 1
        if self._stall_after and self._answered > self._stall_after:
            await asyncio.sleep(3600)  # a stalled server: the request is never answered
        feeds = {i.name: i.as_numpy() for i in payload.inputs}  # by name, every input
        ys = self._session.run([o.name for o in self._outs], feeds)
        outs = []
        for o, y in zip(self._outs, ys):
            out = InferOutput(name=o.name, shape=list(y.shape), datatype=_DATATYPE[o.type])
            out.set_data_from_numpy(y, binary_data=True)
            outs.append(out)
        return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=outs,
                             use_binary_outputs=True)


_DATATYPE = {"tensor(float)": "FP32", "tensor(float16)": "FP16", "tensor(int64)": "INT64",
             "tensor(int32)": "INT32", "tensor(bool)": "BOOL"}


def _declared(arg) -> dict:
    shape = [d if isinstance(d, int) else -1 for d in arg.shape]
    return {"name": arg.name, "datatype": _DATATYPE[arg.type], "shape": shape}


def _require_key(env: str) -> None:
    expected = f"Bearer {os.environ[env]}"

    @model_server.app.middleware("http")
    async def check(request, call_next):
        health = request.url.path.startswith("/v2/health")  # the tests' readiness probe
        if not health and request.headers.get("authorization") != expected:
            return JSONResponse({"error": "missing or wrong API key"}, status_code=401)
        return await call_next(request)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--name", default="digits")
    p.add_argument("--stall-after", type=int, default=0)
    p.add_argument("--api-key-env", default="")
    args, _ = p.parse_known_args()  # the rest are kserve's own (its parser reads sys.argv)
    if args.api_key_env:
        _require_key(args.api_key_env)
    model = OnnxModel(args.name, args.model, args.stall_after)
    kserve.ModelServer(workers=1).start([model])


if __name__ == "__main__":
    main()
