"""The openai backend against a real OpenAI-compatible server: ``transformers serve`` (4.57)
serving hwbench's tiny Llama (seeded weights, a word-level tokenizer made here) on loopback,
from its own virtual environment (tests/openai_env.py).

One server, over TLS (uvicorn's own, a self-signed certificate) and refusing requests without
an API key, serves every test (module scope: it takes ~20 s to start); requests bearing a second
key it accepts are answered a few times, then never again: the server that stalls mid-run. ``transformers serve`` streams chat completions only, answers with text
chunks of whole words (a word here is one token), sends no usage and refuses ``ignore_eos``
and ``min_tokens`` (422): the backend counts tokens with the tokenizer and asks for the length
with ``max_tokens`` alone, which this model (no end-of-sequence token) always reaches. Token
figures are never asserted against a time, only their presence, order and counts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import openai_env
import server_venv
from cli_helpers import assert_valid_or_load_bound, cli, run_json

pytest.importorskip("tokenizers")
pytest.importorskip("torch")  # writing the served checkpoint

KEY = "hwbench-openai-key-7c41e9"
SERVER_KEY_ENV = "HWB_OAI_SERVER_KEY"
STALL_TOKEN = "hwbench-openai-stall-2b8d"  # the second key: its requests stall after a few
STALL_AFTER = 7  # the backend's first request (refused: 422) and its retry, then 5 of the run's
FAST = ("--duration", "0.3", "--warmup", "0", "--min-queries", "4")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return openai_env.write_model(tmp_path_factory.mktemp("openai-model") / "tiny-llama")


@pytest.fixture(scope="module")
def server(tmp_path_factory, model):
    pytest.importorskip("cryptography")
    from tls_helpers import self_signed

    d = tmp_path_factory.mktemp("openai-server")
    cert, private = self_signed(d)
    srv = openai_env.start(model, d / "server.log", "--api-key-env", SERVER_KEY_ENV,
                           "--stall-key-env", "HWB_OAI_SERVER_STALL", "--stall-after",
                           str(STALL_AFTER), tls=(cert, private),
                           env={SERVER_KEY_ENV: KEY, "HWB_OAI_SERVER_STALL": STALL_TOKEN})
    srv.cert = cert
    yield srv
    srv.stop()


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("HWB_OAI_KEY", KEY)
    return "HWB_OAI_KEY"


def opts(*pairs: str) -> list[str]:
    return [a for p in pairs for a in ("--backend-opt", p)]


def served(server, *pairs: str) -> list[str]:
    """The options that reach the TLS server: url, model, chat with the tokenizer, CA, key."""
    return opts(f"url={server.url}", f"model={server.model}", "api=chat",
                f"tokenizer={server.model}", f"tls_ca={server.cert}", "api_key_env=HWB_OAI_KEY",
                *pairs)


def test_a_server_run_times_every_token_over_tls_and_never_records_the_key(
        capsys, out_dir, server, key):
    code, doc = run_json(capsys, out_dir, "--workload", "llm", "--backend", "openai",
                         *served(server, "connections=4"), "--scenario", "server",
                         "--target-qps", "4", "--duration", "2", "--warmup", "0",
                         "--min-queries", "8")
    # The tiny model's token bounds are sized for an in-process decode; a loaded 2-core machine
    # serving over HTTP may miss them, which is the machine's load, not a fault.
    assert_valid_or_load_bound(code, doc)
    m = doc["metrics"]
    assert m["tokens_per_second"] > 0
    for k in ("ttft_ms", "tpot_ms"):
        assert m[k]["p99"] >= m[k]["p50"] > 0
    info = doc["backend_info"]
    assert info["device"] == "remote (chat)" and info["streams"] is True
    v = info["versions"]
    assert v["endpoint"] == f"{server.url}/v1/chat/completions" and v["server"] == "uvicorn"
    assert v["token_count"] == "the tokenizer's tokens per chunk"
    assert "refused ignore_eos/min_tokens" in v["length_control"]
    assert info["request_errors"] == {}  # no failure, and no request ended short
    queued = m["client_queueing"]  # four connections at most, each request stamped when taken
    assert queued["samples"] == m["completed_samples"] and queued["in_call_p50_ms"] > 0
    assert doc["fidelity_note"].startswith("fidelity not checked")
    # Every request got exactly the tokens it asked for, counted chunk by chunk.
    from hwbench.workloads.llm import Llm

    with np.load(out_dir / doc["run_id"] / "samples.npz") as z:
        index, counts = z["sample_index"], z["token_count"]
        first, done = z["first_token_ns"], z["complete_ns"]
    asked = [r.output_tokens for r in Llm().load_requests(index)]
    assert counts.tolist() == asked
    assert (first > 0).all() and (first <= done).all()
    grep = subprocess.run(["grep", "-r", KEY, str(out_dir)], capture_output=True)
    assert grep.returncode == 1, grep.stdout  # 1: no line matched
    assert info["options"]["api_key_env"] == "HWB_OAI_KEY"


def test_without_the_key_or_the_ca_is_exit_2_naming_the_option(capsys, out_dir, server, key):
    base = ["run", "--workload", "llm", "--backend", "openai", *FAST, "--output", str(out_dir)]
    common = (f"url={server.url}", f"model={server.model}", "api=chat",
              f"tokenizer={server.model}")
    code, _, err = cli(capsys, *base, *opts(*common, f"tls_ca={server.cert}"))
    assert code == 2 and "refused" in err and "api_key_env" in err, err
    code, _, err = cli(capsys, *base, *opts(*common, "api_key_env=HWB_OAI_KEY"))
    assert code == 2 and "tls_ca" in err, err
    assert "Traceback" not in err and KEY not in err


def test_a_wrong_model_or_endpoint_is_exit_2_naming_it(capsys, out_dir, server, key):
    base = ["run", "--workload", "llm", "--backend", "openai", *FAST, "--output", str(out_dir)]
    code, _, err = cli(capsys, *base, *served(server, "model=no-such-model"))
    assert code == 2 and "cannot serve model 'no-such-model'" in err, err
    assert "it lists:" in err and "Traceback" not in err
    # transformers serve has no /v1/completions: the first request says so, in seconds.
    code, _, err = cli(capsys, *base, *served(server, "api=completions"))
    assert code == 2 and "/v1/completions" in err and "http_404" in err, err
    assert not any(out_dir.iterdir()) if out_dir.exists() else True


def test_a_closed_port_is_exit_2_naming_the_url(capsys, out_dir):
    url = f"http://127.0.0.1:{server_venv.free_port()}"
    code, out, err = cli(capsys, "run", "--workload", "llm", "--backend", "openai",
                         *opts(f"url={url}", "model=m"), *FAST, "--output", str(out_dir))
    assert code == 2
    assert f"no OpenAI-compatible server answers at {url}" in err and "refused" in err
    assert "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_options_that_cannot_work_are_exit_2(capsys, out_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("HWB_UNSET_KEY", raising=False)
    url = "url=http://127.0.0.1:9"
    cases = [("llm", (), "url=http"),
             ("llm", (url, "model=m", "api=chat"), "tokenizer=PATH"),
             ("llm", (url, "model=m", f"tokenizer={tmp_path}"), "no tokenizer.json"),
             ("llm", (url, "model=m", "api_key_env=HWB_UNSET_KEY"), "export HWB_UNSET_KEY"),
             ("llm", ("url=https://127.0.0.1:9", "model=m", "tls_ca=/nonexistent.pem"),
              "is not a file"),
             ("digits", (url, "model=m"), "--workload llm")]
    for workload, pairs, words in cases:
        code, _, err = cli(capsys, "run", "--workload", workload, "--backend", "openai",
                           *opts(*pairs), *FAST, "--output", str(out_dir))
        assert code == 2, (pairs, err)
        assert words in err and "Traceback" not in err, (pairs, err)


def test_a_server_that_stalls_mid_run_ends_invalid_naming_the_timeout(out_dir, server):
    # Last in the module: after STALL_AFTER requests with the stall key, the server answers
    # none of them again (the other key's requests are still answered).
    # A real process, with a bound, so that a hang fails the test instead of holding it.
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("hwbench")), "run", "--workload", "llm",
         "--backend", "openai",
         *served(server, "api_key_env=HWB_OAI_STALL", "timeout_s=2", "connections=2"),
         "--scenario", "server", "--target-qps", "4", "--duration", "4", "--warmup", "0",
         "--min-queries", "12", "--output", str(out_dir), "--json", "--quiet"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HWB_OAI_STALL": STALL_TOKEN})
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert not doc["valid"]
    assert any("timeout" in r and "within 2 s" in r and "max_errors=0" in r
               for r in doc["invalid_reasons"]), doc["invalid_reasons"]
    assert doc["backend_info"]["request_errors"]["timeout"] >= 1
    assert doc["metrics"]["completed_samples"] >= 1  # what was measured before it is written
    assert "Traceback" not in proc.stderr
