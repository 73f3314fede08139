"""The llm workload on the torch backend end to end, for real: the tiny Llama served with
continuous batching through the compiled load generator (which stamps every token), fidelity
teacher-forced against the FP32 reference, a user's checkpoint, and the backends that cannot
serve it refused with exit 2. Runs pin ``threads=1`` (a small, shared machine); their token
figures are never asserted against a time, only their order and presence."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import cli, load_only, run_json

torch = pytest.importorskip("torch")

from hwbench.backends.pytorch import TorchBackend  # noqa: E402
from hwbench.quality import llm_fidelity  # noqa: E402
from hwbench.workloads import llama  # noqa: E402
from hwbench.workloads.llm import Llm  # noqa: E402

SHORT = ("--duration", "0.3", "--warmup", "0", "--min-queries", "24")
ONE = ("--backend-opt", "threads=1")
LLM_TORCH = ("--workload", "llm", "--backend", "torch", *ONE)


def _dataset(tmp_path, n: int, prompt: int, output: int):
    rng = np.random.default_rng(0)
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps({"prompt": rng.integers(0, 4096, prompt).tolist(),
                                        "output_tokens": output}) + "\n" for _ in range(n)))
    return str(path)


def _samples(out_dir, doc) -> dict[str, np.ndarray]:
    with np.load(out_dir / doc["run_id"] / "samples.npz") as z:
        return {k: z[k] for k in z.files}


def _joined_mid_decode(s: dict[str, np.ndarray]) -> int:
    """Requests issued while an earlier one was decoding that got their first token before it
    finished: what only continuous batching gives."""
    issue, first, done = s["issue_ns"], s["first_token_ns"], s["complete_ns"]
    n = 0
    for a in range(len(issue)):
        during = (issue > first[a]) & (issue < done[a])
        n += int(np.count_nonzero(during & (first < done[a])))
    return n


def test_server_run_reports_token_timing_fidelity_and_a_verdict(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, *LLM_TORCH, "--scenario", "server",
                         "--target-qps", "8", *SHORT)
    assert code in (0, 3) and not load_only(doc["invalid_reasons"]), doc["invalid_reasons"]
    m = doc["metrics"]
    assert m["tokens_per_second"] > 0 and m["output_tokens"] > 0
    for key in ("ttft_ms", "tpot_ms"):
        assert m[key]["p99"] >= m[key]["p50"] > 0
    assert {"ttft_met", "tpot_met"} <= set(m["token_bounds"])  # a verdict on both bounds
    info = doc["backend_info"]
    assert info["streams"] is True and info["precision"] == "fp32"
    assert info["options"]["kv_cache_tokens"] > 0 and info["options"]["max_seqs"] == 64
    f = doc["fidelity"]
    assert f["passed"] and f["observed_precision"] == "fp32" and f["top1_agreement"] == 1.0
    tf = f["teacher_forced"]
    assert tf["requests"] == 4 and tf["first_divergence"] == [None] * 4
    assert doc["validated"]["accuracy"] is None
    s = _samples(out_dir, doc)
    assert (s["first_token_ns"] <= s["complete_ns"]).all() and (s["token_count"] >= 1).all()


def test_requests_join_a_running_batch_through_the_load_generator(capsys, out_dir, tmp_path):
    """Server arrivals during another request's decode get their first token before it
    finishes; with room for one sequence (max_seqs=1) none does: the differential proves the
    first figure comes from continuous batching, not from the arrival times."""
    data = _dataset(tmp_path, 24, 16, 48)
    joined = {}
    for seqs in ("64", "1"):
        code, doc = run_json(capsys, out_dir, *LLM_TORCH, "--scenario", "server",
                             "--target-qps", "40", "--dataset", data, *SHORT,
                             "--backend-opt", f"max_seqs={seqs}")
        assert not load_only(doc["invalid_reasons"]), doc["invalid_reasons"]
        s = _samples(out_dir, doc)
        assert (s["token_count"] == 48).all()  # exactly output_tokens each
        joined[seqs] = _joined_mid_decode(s)
    assert joined["64"] > 0 and joined["1"] == 0


def test_bf16_is_judged_as_bf16_and_its_divergence_reported():
    backend = _torch_llm("dtype=bf16")
    try:
        section, failure = llm_fidelity.check(backend, Llm().artifact(), _requests(4))
    finally:
        backend.close()
    assert failure is None and section["passed"]
    assert section["observed_precision"] == "bf16" and section["expected_precision"] == "bf16"
    assert 0.8 <= section["top1_agreement"] < 1.0
    assert section["envelope"]["measured_error"]["bf16"] > 0
    assert len(section["teacher_forced"]["first_divergence"]) == 4


def test_a_backend_computing_coarser_than_it_declares_fails_fidelity():
    """A fake: the torch backend computing in bf16 while declaring fp32 (a real backend that
    lies cannot be made here)."""
    backend = _torch_llm("dtype=bf16")
    real_info = backend.info

    def lying():
        info = real_info()
        return type(info)(**{**info.__dict__, "precision": "fp32"})

    backend.info = lying
    try:
        section, failure = llm_fidelity.check(backend, Llm().artifact(), _requests(2))
    finally:
        backend.close()
    assert not section["passed"] and "declares fp32" in failure
    assert section["observed_precision"] == "bf16"


def test_logits_of_other_weights_fail_on_top1():
    """A backend serving a model of another seed: its logits are of the right scale and
    precision but not this model's."""
    backend = TorchBackend(TorchBackend.parse_options((("threads", "1"),)))
    backend.load(Llm(seed=2).artifact())
    try:
        section, failure = llm_fidelity.check(backend, Llm(seed=1).artifact(), _requests(2))
    finally:
        backend.close()
    assert failure and not section["passed"]
    assert section["top1_agreement"] < 0.1


def test_first_divergence_is_where_the_greedy_choice_leaves_the_reference():
    seq = np.array([5, 6, 7, 1, 2, 3])  # prompt of 3, generated 1 2 3
    logits = np.zeros((6, 8), dtype=np.float32)
    logits[2, 1] = logits[3, 2] = logits[4, 4] = 1  # follows 1 and 2, then chooses 4, not 3
    assert llm_fidelity.first_divergence([(3, seq)], [logits]) == [2]
    logits[4, 3] = 2
    assert llm_fidelity.first_divergence([(3, seq)], [logits]) == [None]


def test_a_checkpoint_runs_in_place_of_seeded_weights(capsys, out_dir, tmp_path):
    config = llama.SIZES["tiny"]
    ckpt = tmp_path / "model.safetensors"
    llama.save_safetensors(llama.seeded_weights(config, 9), ckpt)
    (tmp_path / "config.json").write_text(json.dumps({
        "vocab_size": config.vocab, "hidden_size": config.dim,
        "num_hidden_layers": config.n_layers, "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads, "intermediate_size": config.ffn_dim,
        "rope_theta": config.rope_theta, "max_position_embeddings": config.max_seq_len}))
    code, doc = run_json(capsys, out_dir, *LLM_TORCH, "--model", str(ckpt), "--scenario",
                         "offline", *SHORT)
    assert not load_only(doc["invalid_reasons"]), doc["invalid_reasons"]
    assert doc["fidelity"]["passed"] and doc["metrics"]["output_tokens"] > 0


def test_a_broken_checkpoint_is_exit_2_naming_the_tensor(capsys, out_dir, tmp_path):
    config = llama.SIZES["tiny"]
    weights = llama.seeded_weights(config, 9)
    del weights["model.layers.2.mlp.up_proj.weight"]
    llama.save_safetensors(weights, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({
        "vocab_size": config.vocab, "hidden_size": config.dim,
        "num_hidden_layers": config.n_layers, "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads, "intermediate_size": config.ffn_dim}))
    code, out, err = cli(capsys, "run", "--output", str(out_dir), *LLM_TORCH, "--model",
                         str(tmp_path / "model.safetensors"), *SHORT)
    assert code == 2 and "model.layers.2.mlp.up_proj.weight" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("backend", ["cpu", "openvino", "cuda", "tensorrt"])
def test_backends_that_cannot_serve_llm_are_refused(capsys, out_dir, backend):
    code, out, err = cli(capsys, "run", "--output", str(out_dir), "--workload", "llm",
                         "--backend", backend, *SHORT)
    assert code == 2 and "--backend torch" in err and "Traceback" not in err


@pytest.mark.parametrize("opt, words", [
    (("mode=compile",), "mode=compile"),
    (("kv_cache_mb=1", "max_seqs=0"), "max_seqs"),
])
def test_bad_llm_options_are_exit_2(capsys, out_dir, opt, words):
    pairs = [a for o in opt for a in ("--backend-opt", o)]
    code, out, err = cli(capsys, "run", "--output", str(out_dir), *LLM_TORCH, *pairs, *SHORT)
    assert code == 2 and words in err and "Traceback" not in err


def _torch_llm(*opts: str) -> TorchBackend:
    backend = TorchBackend(TorchBackend.parse_options(
        (("threads", "1"), *(tuple(o.split("=")) for o in opts))))
    backend.load(Llm().artifact())
    return backend


def _requests(n: int):
    return Llm().load_requests(np.arange(n))


def test_schema_7_fidelity_gains_a_null_teacher_forced(tmp_path):
    from hwbench.results.store import SCHEMA_VERSION, load_result

    (tmp_path / "result.json").write_text(json.dumps({
        "schema_version": 7, "run_id": "r", "fidelity": {"passed": True, "max_rel_error": 0.0}}))
    doc = load_result(tmp_path)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["fidelity"] == {"teacher_forced": None, "passed": True, "max_rel_error": 0.0,
                               "outputs": None}  # schema 14: one output compared


def test_a_kv_cache_that_holds_no_block_is_exit_2_before_the_model_is_built():
    """The 8b's block of 16 tokens takes 2 MiB in bf16: 1 MiB holds none (checked before its
    8 billion weights would be drawn)."""
    from hwbench.errors import UsageError

    backend = TorchBackend(TorchBackend.parse_options((("kv_cache_mb", "1"), ("dtype", "bf16"))))
    with pytest.raises(UsageError, match="kv_cache_mb=1 holds no block"):
        backend.load(Llm(model="8b").artifact())


def test_the_onnx_path_does_not_stream():
    from hwbench.errors import ModelError
    from hwbench.workloads.tiny import Tiny

    backend = TorchBackend(TorchBackend.parse_options((("threads", "1"),)))
    backend.load(Tiny().artifact())
    try:
        assert backend.info().streams is False
        with pytest.raises(ModelError, match="llm workload"):
            backend.serve(None, False)
    finally:
        backend.close()


class FaultyTorch(TorchBackend):
    """The torch backend whose model faults at its 20th decode step (a fake fault: a device
    that fails on demand cannot be had here); everything else is the real backend."""

    name = "faulty-torch"

    def _load_llm(self, artifact) -> None:
        super()._load_llm(artifact)
        model, real, calls = self._engine.model, self._engine.model.decode, []

        def decode(*args, **kwargs):
            calls.append(1)
            if len(calls) == 20:
                raise RuntimeError("CUDA error: device-side assert triggered")
            return real(*args, **kwargs)

        model.decode = decode


def test_a_fault_in_the_serving_loop_invalidates_the_run_with_its_reason(capsys, out_dir,
                                                                         monkeypatch):
    from cli_helpers import register_backend

    register_backend(monkeypatch, FaultyTorch)
    code, doc = run_json(capsys, out_dir, "--workload", "llm", "--backend", "faulty-torch",
                         *ONE, "--scenario", "server", "--target-qps", "8", *SHORT)
    assert code == 3 and not doc["valid"]
    assert any("device-side assert triggered" in r for r in doc["invalid_reasons"]), \
        doc["invalid_reasons"]
