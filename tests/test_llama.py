"""The Llama model of the ``llm`` workload, for real in torch on the CPU: the KV-cache paths
(whole prefill, chunked prefill, batched decode over a paged cache) give the logits of the plain
causal forward; greedy generation is deterministic; seeded weights are the same for a seed and
differ between seeds; a safetensors checkpoint under Hugging Face's names round-trips, and a
missing, unexpected or misshapen tensor is a one-line ModelError (exit 2) naming it."""
from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from hwbench.errors import EXIT_USAGE, ModelError  # noqa: E402
from hwbench.workloads import llama  # noqa: E402
from hwbench.workloads.llama import SIZES, Llama, LlamaConfig, PagedKvCache  # noqa: E402

TINY = SIZES["tiny"]
# Smaller still, with the Llama 3 frequency scaling and tied embeddings (as the 1B has).
MICRO = LlamaConfig(vocab=97, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=48,
                    rope_theta=500000.0, max_seq_len=128, tie_embeddings=True, rope_scaling=32.0)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _tokens(n: int, vocab: int, seed: int = 0):
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("config", [TINY, MICRO], ids=["tiny", "micro"])
def test_cached_paths_match_the_full_forward(config):
    model = Llama.seeded(config, 3)
    toks = _tokens(45, config.vocab)
    full = model.forward(toks)
    cache = PagedKvCache(config, 6, 8, dtype=model.dtype, device=model.device)
    slots = cache.slots([5, 0, 3, 1, 4, 2], 45)  # scattered blocks: paging is exercised
    last = model.extend(toks[:20], 0, cache, slots[:20])
    torch.testing.assert_close(last, full[19], rtol=1e-4, atol=1e-4)
    last = model.extend(toks[20:33], 20, cache, slots[:33])  # a second chunk of the prompt
    torch.testing.assert_close(last, full[32], rtol=1e-4, atol=1e-4)
    for pos in range(33, 45):
        logits = model.decode(toks[pos:pos + 1], torch.tensor([pos]), cache, slots[None, :pos + 1])
        torch.testing.assert_close(logits[0], full[pos], rtol=1e-4, atol=1e-4)


def test_batched_decode_of_sequences_of_different_lengths():
    model = Llama.seeded(MICRO, 4)
    a, b = _tokens(30, MICRO.vocab, 1), _tokens(12, MICRO.vocab, 2)
    # interleaved blocks of one pool: each sequence reads only its own
    cache = PagedKvCache(MICRO, 12, 4, dtype=model.dtype, device=model.device)
    sa = cache.slots([0, 2, 4, 6, 8, 10, 11, 9], 30)
    sb = cache.slots([1, 3, 5], 12)
    model.extend(a[:29], 0, cache, sa[:29])
    model.extend(b[:11], 0, cache, sb[:11])
    slots = torch.zeros((2, 30), dtype=torch.long)
    slots[0], slots[1, :12] = sa, sb
    logits = model.decode(torch.stack([a[29], b[11]]), torch.tensor([29, 11]), cache, slots)
    torch.testing.assert_close(logits[0], model.forward(a)[29], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits[1], model.forward(b)[11], rtol=1e-4, atol=1e-4)


def test_greedy_generation_is_deterministic_and_follows_the_forward():
    model = Llama.seeded(TINY, 1)
    prompt = _tokens(16, TINY.vocab)
    out = model.generate(prompt, 12)
    assert out == Llama.seeded(TINY, 1).generate(prompt, 12)
    assert len(out) == 12 and all(0 <= t < TINY.vocab for t in out)
    seq = torch.cat([prompt, torch.tensor(out[:-1])])
    assert model.forward(seq)[15:].argmax(-1).tolist() == out  # teacher-forced on its own tokens


def test_seeded_weights_depend_on_the_seed_only():
    a, b = llama.seeded_weights(MICRO, 7), llama.seeded_weights(MICRO, 7)
    c = llama.seeded_weights(MICRO, 8)
    assert set(a) == set(llama.tensor_shapes(MICRO)) and "lm_head.weight" not in a
    name = "model.layers.1.mlp.down_proj.weight"
    assert torch.equal(a[name], b[name]) and not torch.equal(a[name], c[name])
    assert sum(t.numel() for t in a.values()) == MICRO.parameter_count()


def test_synthetic_logits_are_finite_and_not_degenerate():
    model = Llama.seeded(TINY, 1)
    logits = model.forward(_tokens(64, TINY.vocab))
    assert torch.isfinite(logits).all()
    assert 0.3 < float(logits.std()) < 5  # neither flat nor exploding through the depth
    assert len(set(logits.argmax(-1).tolist())) > 16  # not one token everywhere


def test_public_sizes_have_the_published_shapes():
    assert SIZES["1b"].parameter_count() == pytest.approx(1.236e9, rel=1e-3)
    assert SIZES["8b"].parameter_count() == pytest.approx(8.03e9, rel=1e-3)
    assert (SIZES["1b"].head_dim, SIZES["8b"].head_dim) == (64, 128)


def test_llama3_rope_scaling_keeps_high_frequencies_and_divides_low_ones():
    plain = llama._inv_freq(LlamaConfig(**{**MICRO.__dict__, "rope_scaling": 1.0}))
    scaled = llama._inv_freq(MICRO)
    assert scaled[0] == plain[0]  # short wavelengths are kept
    assert scaled[-1] == pytest.approx(plain[-1] / 32)  # long ones divided by the factor


def test_safetensors_round_trip(tmp_path):
    model = Llama.seeded(MICRO, 5)
    path = tmp_path / "micro.safetensors"
    llama.save_safetensors(model.weights(), path)
    loaded = Llama(MICRO, llama.load_safetensors(path, MICRO))
    toks = _tokens(20, MICRO.vocab)
    assert torch.equal(loaded.forward(toks), model.forward(toks))
    half = Llama(MICRO, llama.load_safetensors(path, MICRO, dtype=torch.bfloat16))
    assert half.dtype == torch.bfloat16


def test_a_folder_of_shards_and_a_hugging_face_config(tmp_path):
    weights = Llama.seeded(MICRO, 5).weights()
    names = sorted(weights)
    llama.save_safetensors({n: weights[n] for n in names[::2]}, tmp_path / "a.safetensors")
    llama.save_safetensors({n: weights[n] for n in names[1::2]}, tmp_path / "b.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({
        "vocab_size": 97, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 48, "rope_theta": 500000.0,
        "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
        "rope_scaling": {"factor": 32.0, "rope_type": "llama3"}}))
    config = llama.config_from_hf(tmp_path / "config.json")
    assert config == MICRO
    assert set(llama.load_safetensors(tmp_path, config)) == set(names)


def _broken(tmp_path, change):
    weights = Llama.seeded(MICRO, 5).weights()
    change(weights)
    path = tmp_path / "bad.safetensors"
    llama.save_safetensors(weights, path)
    with pytest.raises(ModelError) as err:
        llama.load_safetensors(path, MICRO)
    assert err.value.exit_code == EXIT_USAGE and "\n" not in str(err.value)
    return str(err.value)


def test_a_missing_tensor_is_named(tmp_path):
    msg = _broken(tmp_path, lambda w: w.pop("model.layers.1.self_attn.k_proj.weight"))
    assert "'model.layers.1.self_attn.k_proj.weight'" in msg and "missing" in msg


def test_a_misshapen_tensor_is_named(tmp_path):
    def grow(w):
        w["model.norm.weight"] = torch.ones(33)
    msg = _broken(tmp_path, grow)
    assert "'model.norm.weight'" in msg and "(33,)" in msg and "(32,)" in msg


def test_an_unexpected_tensor_is_named(tmp_path):
    def bias(w):
        w["model.layers.0.self_attn.q_proj.bias"] = torch.zeros(32)
    assert "'model.layers.0.self_attn.q_proj.bias'" in _broken(tmp_path, bias)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    for path in (junk, tmp_path / "absent.safetensors"):
        with pytest.raises(ModelError) as err:
            llama.load_safetensors(path, MICRO)
        assert str(path) in str(err.value)


def test_a_config_that_does_not_divide_into_heads():
    with pytest.raises(ModelError, match="heads"):
        LlamaConfig(vocab=10, dim=30, n_layers=1, n_heads=4, n_kv_heads=2, ffn_dim=8)


def test_the_kv_cache_budget_per_token():
    assert TINY.kv_bytes_per_token(4) == 2 * 4 * 2 * 32 * 4
    assert math.isclose(SIZES["1b"].kv_bytes_per_token(2), 32 * 1024)


def test_the_config_is_found_beside_a_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "vocab_size": 97, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 48}))
    for where in (tmp_path, tmp_path / "model.safetensors", tmp_path / "config.json"):
        assert llama.config_from_hf(where).n_kv_heads == 2
    with pytest.raises(ModelError, match="config.json"):
        llama.config_from_hf(tmp_path / "elsewhere" / "model.safetensors")


@pytest.mark.parametrize("tied, scaling", [(True, 32.0), (False, 1.0)], ids=["1b-like", "plain"])
def test_logits_match_hugging_face_transformers(tied, scaling):
    """Differential: Hugging Face's own LlamaForCausalLM, given the same weights under the same
    names, computes the same logits (so a real checkpoint runs as its authors' code runs it)."""
    transformers = pytest.importorskip("transformers")
    config = LlamaConfig(vocab=97, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=96,
                         rope_theta=500000.0, max_seq_len=16384, tie_embeddings=tied,
                         rope_scaling=scaling)
    rope = ({"rope_type": "llama3", "factor": scaling, "low_freq_factor": 1.0,
             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
            if scaling != 1.0 else None)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=96, rope_theta=500000.0,
        max_position_embeddings=16384, rms_norm_eps=1e-5, tie_word_embeddings=tied,
        rope_scaling=rope)).eval()
    weights = llama.seeded_weights(config, 3)
    missing, unexpected = hf.load_state_dict(weights, strict=False)
    assert not unexpected and missing == (["lm_head.weight"] if tied else [])
    toks = _tokens(60, 97)
    with torch.no_grad():
        theirs = hf(toks[None]).logits[0]
    torch.testing.assert_close(Llama(config, weights).forward(toks), theirs, rtol=1e-4,
                               atol=1e-4)
