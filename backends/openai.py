"""The ``openai`` backend: a remote server speaking the OpenAI-compatible completions or chat
completions API with streaming (vLLM, SGLang, TGI, llama.cpp's server, ``transformers serve``).

It serves generative workloads (``llm``) through the streaming interface. Each request is one
streamed HTTP request (``stream: true``); every server-sent chunk that carries text is a token
event, reported to the load generator, which timestamps it: the time to first token is taken at
the first chunk with text (never the chat API's role-only chunk), the time per output token from
the chunks after it. A chunk counts as one token unless ``tokenizer`` is given, when it counts
the tokens of its text; the server's own count (``usage``, asked for with ``stream_options:
{include_usage: true}``) raises the final count where the server gives it. Output length is
fixed with ``max_tokens`` and, where the server accepts them (vLLM, SGLang), ``ignore_eos`` and
``min_tokens``; a request that still ends short is counted (``request_errors.short_output``).

Prompts are token ids. ``api=completions`` sends them as ids (vLLM and SGLang accept a list of
ids as ``prompt``), or as text when ``tokenizer`` is given; ``api=chat`` sends text (the ids
rendered with ``tokenizer``) as one user message, which the server wraps in its chat template.

Before anything is measured the server is asked what it serves (``GET /v1/models``, recorded)
and one short request is made, so a closed port, a refused key or a wrong model is exit 2 in
seconds. At most ``connections`` requests are in flight; a request that waits for a free one is
stamped when it is taken (client queueing). A request that errs or passes ``timeout_s`` between
chunks is counted by kind; past ``max_errors`` the run ends invalid naming it. The API key is
read from the variable ``api_key_env`` names and is never kept in options, results or messages.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from hwbench.backends import remote
from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, option
from hwbench.errors import BackendUnavailable, UsageError

_INSTALL = "install it with: pip install 'hwbench[serving]'"
_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
_PROBE_PROMPT = np.arange(1, 5, dtype=np.int64)  # token ids every vocabulary has


class OpenAiBackend(Backend):
    name: ClassVar[str] = "openai"
    description: ClassVar[str] = ("a remote server speaking the OpenAI-compatible completions or "
                                  "chat API with streaming (vLLM, SGLang, TGI, llama.cpp)")
    streams: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options:
        url: str = option("", "the server: http[s]://host:port (its /v1 endpoints are used)")
        model: str = option("", "the model's name on the server")
        api: str = option("completions", "the endpoint: completions (/v1/completions) or chat "
                          "(/v1/chat/completions, needs tokenizer)",
                          choices=("completions", "chat"))
        connections: int = option(8, "requests in flight at most (one connection each)",
                                  minimum=1)
        timeout_s: float = option(60.0, "longest wait for a request's next chunk (the first "
                                  "included)", minimum=0.001)
        connect_timeout_s: float = option(3.0, "longest wait to connect", minimum=0.001)
        tls: bool = option(False, "use TLS (implied by an https:// url or tls_ca)")
        tls_ca: str = option("", "CA certificate file (PEM) that signed the server's certificate")
        insecure: bool = option(False, "TLS without checking the server's certificate")
        api_key_env: str = option("", "environment variable holding an API key, sent as "
                                      "'Authorization: Bearer'; the key is never recorded")
        tokenizer: str = option("", "the served model's tokenizer.json (or its folder): prompts "
                                "are sent as its text and chunks counted in its tokens")
        ignore_eos: bool = option(True, "ask for exactly the request's output length "
                                  "(ignore_eos, min_tokens) where the server accepts it")
        max_errors: int = option(0, "failed requests tolerated before the run ends invalid",
                                 minimum=0)

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True, devices=("remote",), precisions=("fp32",))

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self._streams: Any = None
        self._tok: Any = None

    # --- loading: everything that can be wrong is found here, in seconds ------------------------
    def load(self, model: ModelArtifact) -> None:
        o = self.opts
        if not o.url or not o.model:
            raise UsageError("backend openai needs the server and the model: --backend-opt "
                             "url=http://HOST:PORT --backend-opt model=NAME")
        config = getattr(model, "config", None)
        if config is None or hasattr(model, "output_shape"):
            raise UsageError("backend openai serves generative workloads: use --workload llm")
        if o.api == "chat" and not o.tokenizer:
            raise UsageError("backend openai: api=chat sends text: give the served model's "
                             "tokenizer with --backend-opt tokenizer=PATH (its tokenizer.json)")
        self._tok = _tokenizer(o.tokenizer, config.vocab) if o.tokenizer else None
        self._base = o.url.rstrip("/").removesuffix("/v1")
        tls = o.tls or bool(o.tls_ca) or self._base.startswith("https://")
        self._tls = (remote.tls_context(self.name, remote.readable(self.name, o.tls_ca),
                                        o.insecure) if tls else None)
        self._headers = remote.auth_headers(self.name, o.api_key_env)
        self._length_control = o.ignore_eos
        self._refused = ""
        probe = self._connection()
        try:
            self._server = self._models(probe)
            self._probe(probe)
        finally:
            probe.close()
        from hwbench.backends.openai_stream import Streams

        encode = self._encode if self._tok is not None else None
        self._streams = Streams(self._connection, o.connections, self._request, o.max_errors,
                                encode)

    def _connection(self) -> Any:
        from hwbench.backends.openai_stream import Connection

        o = self.opts
        return Connection(self._base, timeout_s=o.timeout_s,
                          connect_timeout_s=o.connect_timeout_s, tls=self._tls,
                          headers=self._headers)

    def _models(self, conn: Any) -> dict[str, str]:
        """What the server says about itself (``GET /v1/models``), for the result."""
        url = self.opts.url
        try:
            status, headers, body = conn.get_json("/v1/models")
        except remote.RemoteError as exc:
            if exc.kind == "tls":
                raise UsageError(f"backend openai: TLS with {url} failed ({exc}): give the CA "
                                 "of its certificate with --backend-opt tls_ca=PATH") from None
            raise UsageError(f"backend openai: no OpenAI-compatible server answers at {url} "
                             f"({exc}): start it, or fix --backend-opt url=") from None
        if status in (401, 403):
            raise _refused(url, f"GET /v1/models answered {status}")
        if status != 200 or not isinstance(body, dict):
            raise UsageError(f"backend openai: {url} is not an OpenAI-compatible server (GET "
                             f"/v1/models answered {status}): fix --backend-opt url=")
        listed = [m for m in body.get("data") or [] if isinstance(m, dict)]
        self._listed = [str(m.get("id")) for m in listed]
        mine = next((m for m in listed if m.get("id") == self.opts.model), {})
        more = f" (+{len(listed) - 3} more)" if len(listed) > 3 else ""
        said = {"server": headers.get("server", ""),
                "models": ",".join(self._listed[:3]) + more,
                "owned_by": mine.get("owned_by", ""),  # vLLM: "vllm"
                "max_model_len": mine.get("max_model_len", "")}
        return {k: str(v) for k, v in said.items() if v not in ("", None)}

    def _probe(self, conn: Any) -> None:
        """One short request: the model is served, and whether it takes ignore_eos."""
        probe = _Probe(_PROBE_PROMPT, 2)
        for _ in range(2):
            try:
                self._probe_result = self._request(conn, probe, lambda count, first: None)
                return
            except remote.RemoteError as exc:
                if exc.kind in ("http_400", "http_422") and self._length_control:
                    self._length_control = False  # the server refuses ignore_eos/min_tokens
                    self._refused = str(exc)
                    continue
                raise self._probe_failed(exc) from None

    def _probe_failed(self, exc: Any) -> UsageError:
        o = self.opts
        if exc.kind in ("http_401", "http_403"):
            return _refused(o.url, str(exc))
        if exc.kind in ("refused", "timeout", "disconnected", "network", "tls"):
            return UsageError(f"backend openai: the server at {o.url} did not answer a first "
                              f"request ({exc}): check it, or raise --backend-opt timeout_s")
        served = ", ".join(self._listed) or "(the server lists none)"
        return UsageError(f"backend openai: the server at {o.url} cannot serve model "
                          f"{o.model!r} on {_PATHS[o.api]} ({exc}); it lists: {served}; fix "
                          "--backend-opt model= (or api=)")

    # --- one request --------------------------------------------------------------------------
    def _body(self, request: Any) -> dict[str, Any]:
        o = self.opts
        n = int(request.output_tokens)
        body: dict[str, Any] = {"model": o.model, "max_tokens": n, "stream": True,
                                "stream_options": {"include_usage": True},
                                "temperature": 0.0}
        if self._length_control:
            body.update(ignore_eos=True, min_tokens=n)
        ids = np.asarray(request.prompt, dtype=np.int64)
        if self._tok is None:
            body["prompt"] = ids.tolist()
            return body
        text = self._tok.decode(ids.tolist(), skip_special_tokens=False)
        if o.api == "chat":
            body["messages"] = [{"role": "user", "content": text}]
        else:
            body["prompt"] = text
        return body

    def _request(self, conn: Any, request: Any,
                 report: Callable[[int, int | None], None]) -> Any:
        from hwbench.backends.openai_stream import Result

        count, first, parts, usage = 0, None, [], None
        for event in conn.events(_PATHS[self.opts.api], self._body(request)):
            text = _text(event, self.opts.api)
            if text:
                if self._tok is not None:
                    ids = self._encode(text)
                    count += max(1, len(ids))
                    if first is None and ids:
                        first = ids[0]
                else:
                    count += 1
                parts.append(text)
                report(count, first)
            u = event.get("usage")
            if isinstance(u, dict) and u.get("completion_tokens") is not None:
                usage = int(u["completion_tokens"])
        if usage is not None and usage > count:
            count = usage
            report(count, first)
        return Result(count, "".join(parts), usage is not None)

    def _encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    # --- streaming ------------------------------------------------------------------------------
    def serve(self, sink: Any, keep_outputs: bool) -> None:
        self._streams.serve(sink, keep_outputs)

    def submit(self, ids: np.ndarray, requests: list) -> None:
        self._streams.submit(ids, requests)

    def drain(self) -> None:
        self._streams.drain()

    def outputs(self) -> dict[int, np.ndarray]:
        return self._streams.outputs()

    def stop(self) -> None:
        if self._streams is not None:
            self._streams.stop()

    def request_errors(self) -> dict[str, int] | None:
        return {} if self._streams is None else self._streams.errors()

    def run(self, batch: np.ndarray) -> np.ndarray:
        raise UsageError("backend openai serves generative workloads: use --workload llm")

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        raise NotImplementedError("backend openai: an OpenAI-compatible server gives no "
                                  "teacher-forced logits")

    def info(self) -> BackendInfo:
        o = self.opts
        counted = ("the server's usage" if self._probe_result.usage else
                   "the tokenizer's tokens per chunk" if self._tok is not None else
                   "one token per chunk")
        length = ("max_tokens, ignore_eos, min_tokens" if self._length_control else
                  "max_tokens only" + (f" (the server refused ignore_eos/min_tokens: "
                                       f"{self._refused})" if self._refused else ""))
        versions = {"endpoint": self._base + _PATHS[o.api], **self._server,
                    "token_count": counted, "length_control": length}
        return BackendInfo(self.name, device=f"remote ({o.api})", precision="fp32",
                           thread_safe=True, streams=True, versions=versions,
                           options=self.option_values())

    def close(self) -> None:
        self.stop()


@dataclass(frozen=True)
class _Probe:
    """The first request, shaped as the workload's requests are (a backend never imports a
    workload)."""

    prompt: np.ndarray
    output_tokens: int


def _text(event: dict[str, Any], api: str) -> str:
    """The text a chunk carries (none for a role-only or usage-only chunk)."""
    choices = event.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    if api == "chat":
        return (choices[0].get("delta") or {}).get("content") or ""
    return choices[0].get("text") or ""


def _tokenizer(path: str, vocab: int) -> Any:
    """A Hugging Face ``tokenizers`` tokenizer from ``tokenizer.json`` (or its folder)."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise BackendUnavailable(f"backend openai: tokenizer= needs the tokenizers package "
                                 f"({exc}); {_INSTALL}") from None
    p = Path(path)
    file = p / "tokenizer.json" if p.is_dir() else p
    if not file.is_file():
        raise UsageError(f"backend openai: tokenizer={path}: no tokenizer.json there; give the "
                         "served model's tokenizer.json or the folder holding it")
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:  # the library's own error type for a malformed file
        raise UsageError(f"backend openai: tokenizer={path} is not a tokenizer.json "
                         f"({exc})") from None
    if tok.get_vocab_size() < vocab:
        raise UsageError(f"backend openai: tokenizer={path} has {tok.get_vocab_size()} tokens, "
                         f"fewer than the workload's model ({vocab}): give the served model's "
                         "tokenizer, or a --model of its size")
    return tok


def _refused(url: str, detail: str) -> UsageError:
    return UsageError(f"backend openai: the server at {url} refused the request ({detail}): "
                      "give its API key with --backend-opt api_key_env=NAME (a variable "
                      "holding it)")
