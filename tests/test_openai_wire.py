"""The openai backend's completions path as vLLM streams it: token-id prompts, ``ignore_eos``
and ``min_tokens`` accepted, several tokens in one chunk, the usage chunk, ``data: [DONE]``.

vLLM (and SGLang) cannot run on this project's machines (no GPU; their CPU builds are neither on
this registry nor small), and the real server of tests/test_backends_openai.py (transformers
serve) has no completions endpoint and sends no usage. So this is a fake, said here: a stdlib
HTTP server on a loopback socket that answers ``/v1/models`` and ``/v1/completions`` in vLLM's
documented stream format, checks every request's body as vLLM would take it, and generates
placeholder words. It stops requests asking for more than ``CAP`` tokens at ``CAP``, as a server
without ``ignore_eos`` would at an end-of-sequence token, so shortfalls are seen."""
from __future__ import annotations

import http.server
import json
import threading

import numpy as np
import pytest

from cli_helpers import run_json

CAP = 40  # tokens the fake gives a request at most
PER_CHUNK = 2  # tokens per chunk, as vLLM sends with speculative decoding or a slow reader


class _VllmLike(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bad: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != "/v1/models":
            return self._json(404, {"detail": "Not Found"})
        self._json(200, {"object": "list", "data": [
            {"id": "tiny", "object": "model", "owned_by": "vllm", "max_model_len": 2048}]})

    def do_POST(self) -> None:
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/completions":
            return self._json(404, {"detail": "Not Found"})
        if req.get("model") != "tiny":
            return self._json(404, {"error": {"message": f"The model `{req.get('model')}` "
                                              "does not exist.", "code": 404}})
        n = req["max_tokens"]
        if not (isinstance(req["prompt"], list) and all(isinstance(i, int)
                                                          for i in req["prompt"])
                and req["ignore_eos"] is True and req["min_tokens"] == n and req["stream"]
                and req["stream_options"] == {"include_usage": True}):
            self.bad.append(json.dumps(req)[:200])
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        given = min(n, CAP)
        for start in range(0, given, PER_CHUNK):
            words = " ".join(f"t{k}" for k in range(start, min(start + PER_CHUNK, given)))
            self._event({"id": "cmpl-1", "object": "text_completion", "model": "tiny",
                         "choices": [{"index": 0, "text": words, "finish_reason": None}],
                         "usage": None})
        self._event({"id": "cmpl-1", "object": "text_completion", "model": "tiny",
                     "choices": [], "usage": {"prompt_tokens": len(req["prompt"]),
                                              "completion_tokens": given,
                                              "total_tokens": len(req["prompt"]) + given}})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _event(self, body: dict) -> None:
        self._chunk(f"data: {json.dumps(body)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture
def vllm_like():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _VllmLike)
    srv.daemon_threads = True
    _VllmLike.bad = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"  # a url with /v1 works too
    srv.shutdown()
    srv.server_close()


def test_completions_count_by_usage_and_flag_short_outputs(capsys, out_dir, vllm_like):
    code, doc = run_json(capsys, out_dir, "--workload", "llm", "--backend", "openai",
                         "--backend-opt", f"url={vllm_like}", "--backend-opt", "model=tiny",
                         "--backend-opt", "connections=2", "--scenario", "server",
                         "--target-qps", "20", "--duration", "0.5", "--warmup", "0",
                         "--min-queries", "16")
    assert code in (0, 3), doc["invalid_reasons"]
    assert not _VllmLike.bad, _VllmLike.bad[0]
    info = doc["backend_info"]
    v = info["versions"]
    assert v["endpoint"].endswith(":" + vllm_like.rsplit(":", 1)[1].removesuffix("/v1")
                                  + "/v1/completions")
    assert v["owned_by"] == "vllm" and v["max_model_len"] == "2048"
    assert v["token_count"] == "the server's usage"
    assert v["length_control"] == "max_tokens, ignore_eos, min_tokens"
    from hwbench.workloads.llm import Llm

    with np.load(out_dir / doc["run_id"] / "samples.npz") as z:
        index, counts = z["sample_index"], z["token_count"]
    asked = np.array([r.output_tokens for r in Llm().load_requests(index)])
    # One count per chunk of two tokens, raised to the usage's count at the end.
    assert counts.tolist() == np.minimum(asked, CAP).tolist()
    short = int((asked > CAP).sum())
    assert short >= 1, "the seeded requests include outputs longer than CAP"
    assert info["request_errors"].get("short_output", 0) >= short
    assert set(info["request_errors"]) <= {"short_output"}


def test_a_model_the_server_does_not_have_is_exit_2_naming_what_it_lists(capsys, out_dir,
                                                                        vllm_like):
    from cli_helpers import cli

    code, _, err = cli(capsys, "run", "--workload", "llm", "--backend", "openai",
                       "--backend-opt", f"url={vllm_like}", "--backend-opt", "model=huge",
                       "--duration", "0.3", "--output", str(out_dir))
    assert code == 2 and "cannot serve model 'huge'" in err and "does not exist" in err, err
    assert "it lists: tiny" in err and "Traceback" not in err
