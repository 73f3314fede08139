"""A real OpenAI-compatible server for the tests: ``transformers serve`` (tests/openai_server.py)
from a virtual environment of its own (tests/server_venv.py), serving a tiny Llama made here.

The model is hwbench's own ``tiny`` llm model with its seeded synthetic weights (seed 1, the
``llm`` workload's default), written as a Hugging Face checkpoint, with a word-level tokenizer
made here (``tokenizers``): token ``i`` is the word ``w<i>``. Nothing is downloaded: the server
runs with the hub offline. Its generation config has no end-of-sequence token, so it always
generates ``max_tokens``; its chat template is the user's message alone, so the server sees the
very prompt ids hwbench sent (the word-level tokenizer maps ids to text and back exactly).

transformers 4.57 is pinned: ``transformers serve`` is experimental and changes between
releases, and the 5.x releases need a ``kernels`` version this project's registry lacks.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import server_venv

REQUIREMENTS = ("transformers[serving]==4.57.*", "torch==2.13.0")
SERVER = Path(__file__).with_name("openai_server.py")
READY_S = 120.0  # importing transformers and torch on a busy 2-core machine is slow
VENV = server_venv.Venv("transformers-serve-4.57", REQUIREMENTS,
                        "import transformers.commands.serving, torch")
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def write_model(folder: Path) -> Path:
    """hwbench's tiny Llama (seed 1) as a Hugging Face checkpoint with a word-level
    tokenizer; returns the folder (the model's name on the server)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from hwbench.workloads import llama

    c = llama.SIZES["tiny"]
    folder.mkdir(parents=True, exist_ok=True)
    llama.save_safetensors(llama.seeded_weights(c, 1), folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": c.vocab,
        "hidden_size": c.dim, "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv_heads,
        "intermediate_size": c.ffn_dim, "rope_theta": c.rope_theta,
        "max_position_embeddings": c.max_seq_len, "rms_norm_eps": c.norm_eps,
        "tie_word_embeddings": c.tie_embeddings, "hidden_act": "silu",
        "torch_dtype": "float32", "bos_token_id": None, "eos_token_id": None,
        "pad_token_id": None}))
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": False}))
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(c.vocab)}, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHAT_TEMPLATE,
        "model_max_length": c.max_seq_len, "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"]}))  # Llama takes no token types
    return folder


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    scheme: str
    model: Path
    log: Path

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        server_venv.stop(self.proc)


def start(model: Path, log: Path, *extra: str, tls: tuple[Path, Path] | None = None,
          env: dict[str, str] | None = None) -> Server:
    """``transformers serve`` on a free loopback port, once it answers and has loaded the
    model (one warm-up request)."""
    port = server_venv.free_port()
    args = [str(VENV.python()), str(SERVER), "--host", "127.0.0.1", "--port", str(port),
            "--device", "cpu", "--dtype", "float32", "--model_timeout", "3600",
            "--log_level", "warning", *extra]
    if tls:
        args += ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])]
    out = open(log, "w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                                 **(env or {})})
    server = Server(proc, port, "https" if tls else "http", model, log)
    deadline = time.monotonic() + READY_S  # not a measurement: how long to wait for a start
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the OpenAI test server exited: {log.read_text()[-2000:]}")
        if _answers(server, tls, env):
            return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"the OpenAI test server did not start: {log.read_text()[-2000:]}")


def _answers(server: Server, tls: tuple[Path, Path] | None, env: dict[str, str] | None) -> bool:
    """Ready, and the model loaded: one chat request of one token is answered."""
    import ssl

    ctx = ssl._create_unverified_context() if tls else None  # only probing readiness
    headers = {"Content-Type": "application/json"}
    key = next((v for k, v in (env or {}).items() if k.endswith("KEY")), None)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = json.dumps({"model": str(server.model), "max_tokens": 1, "stream": True,
                       "messages": [{"role": "user", "content": "w1 w2"}]}).encode()
    try:
        with urllib.request.urlopen(f"{server.url}/health", timeout=1, context=ctx) as r:
            if r.status != 200:
                return False
        req = urllib.request.Request(f"{server.url}/v1/chat/completions", body, headers)
        with urllib.request.urlopen(req, timeout=60, context=ctx) as r:
            return r.status == 200 and b"w" in r.read()
    except OSError:
        return False
