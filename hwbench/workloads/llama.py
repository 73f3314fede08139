"""The Llama family of decoder-only transformers, in torch: RMSNorm, rotary embeddings (with
Llama 3's frequency scaling), SwiGLU, grouped-query attention and a paged KV cache.

This is the ``llm`` workload's model, what an ONNX file is to the image workloads: the workload
names it (a size and a seed, or a checkpoint) and a backend that runs torch builds it, places it
on its device at its precision and serves it. torch is imported only when a model is built, so
hwbench imports without the torch extra.

Sizes: ``tiny`` for tests and CPU runs (a decode step takes a few milliseconds on two cores);
``1b`` and ``8b`` have the shapes of the public Llama-3.2-1B and Llama-3.1-8B. Weights are
synthetic and seeded (``seeded_weights``): the same seed gives the same weights on every machine
and device, since they are drawn on the CPU in fp32 and only then cast and moved. Their scale
keeps activations of order one through the depth (fan-in initialisation, residual branches
scaled by 1/sqrt(2 n_layers)), so logits are finite and not degenerate; they are still nearly
flat, which is why fidelity is judged teacher-forced. A checkpoint of the same architecture in
safetensors with Hugging Face's key names (``model.layers.N.self_attn.q_proj.weight`` ...) may
replace them (``load_safetensors``).

Tensors are kept under Hugging Face's names; the projections a layer applies together are
fused when the model is built (q/k/v into one matrix, gate/up into one), which halves the number
of kernel launches of a decode step.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwbench.errors import ModelError


@dataclass(frozen=True)
class LlamaConfig:
    """The shape of a Llama model. ``rope_scaling`` is Llama 3's frequency scaling factor
    (1: none); ``tie_embeddings``: the output projection is the embedding matrix (Llama 3.2)."""

    vocab: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    rope_theta: float = 500000.0
    max_seq_len: int = 8192
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    rope_scaling: float = 1.0

    def __post_init__(self) -> None:
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads or self.head_dim % 2:
            raise ModelError(f"llama config: dim {self.dim}, n_heads {self.n_heads} and "
                             f"n_kv_heads {self.n_kv_heads} do not divide into even heads; fix "
                             "the checkpoint's config")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def kv_bytes_per_token(self, element_bytes: int) -> int:
        """KV-cache memory of one token of one sequence (keys and values of every layer)."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * element_bytes

    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in tensor_shapes(self).values())


SIZES: dict[str, LlamaConfig] = {
    "tiny": LlamaConfig(vocab=4096, dim=256, n_layers=4, n_heads=8, n_kv_heads=2, ffn_dim=688,
                        rope_theta=10000.0, max_seq_len=2048),
    # Llama-3.2-1B (config.json of meta-llama/Llama-3.2-1B)
    "1b": LlamaConfig(vocab=128256, dim=2048, n_layers=16, n_heads=32, n_kv_heads=8,
                      ffn_dim=8192, rope_theta=500000.0, max_seq_len=131072, norm_eps=1e-5,
                      tie_embeddings=True, rope_scaling=32.0),
    # Llama-3.1-8B
    "8b": LlamaConfig(vocab=128256, dim=4096, n_layers=32, n_heads=32, n_kv_heads=8,
                      ffn_dim=14336, rope_theta=500000.0, max_seq_len=131072, norm_eps=1e-5,
                      tie_embeddings=False, rope_scaling=8.0),
}


def tensor_shapes(config: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of a checkpoint, by its Hugging Face name, and its shape."""
    c, hd = config, config.head_dim
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (c.vocab, c.dim)}
    for i in range(c.n_layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (c.dim,),
            p + "self_attn.q_proj.weight": (c.n_heads * hd, c.dim),
            p + "self_attn.k_proj.weight": (c.n_kv_heads * hd, c.dim),
            p + "self_attn.v_proj.weight": (c.n_kv_heads * hd, c.dim),
            p + "self_attn.o_proj.weight": (c.dim, c.n_heads * hd),
            p + "post_attention_layernorm.weight": (c.dim,),
            p + "mlp.gate_proj.weight": (c.ffn_dim, c.dim),
            p + "mlp.up_proj.weight": (c.ffn_dim, c.dim),
            p + "mlp.down_proj.weight": (c.dim, c.ffn_dim),
        })
    shapes["model.norm.weight"] = (c.dim,)
    if not c.tie_embeddings:
        shapes["lm_head.weight"] = (c.vocab, c.dim)
    return shapes


def _init_std(name: str, shape: tuple[int, ...], config: LlamaConfig) -> float | None:
    """The standard deviation a synthetic tensor is drawn with; None: a norm's weight (ones)."""
    if name.endswith("layernorm.weight") or name == "model.norm.weight":
        return None
    if name == "model.embed_tokens.weight":
        # Tied, the embedding is also the output projection: rows of norm ~1 keep logits O(1).
        return 1.0 / math.sqrt(config.dim) if config.tie_embeddings else 1.0
    std = 1.0 / math.sqrt(shape[1])
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        std /= math.sqrt(2 * config.n_layers)  # residual branches: the sum stays O(1)
    return std


def seeded_weights(config: LlamaConfig, seed: int, *, dtype: Any = None,
                   device: Any = None) -> dict[str, Any]:
    """Synthetic weights under Hugging Face's names, the same for a seed on every machine: drawn
    on the CPU in fp32 in a fixed order, then cast to ``dtype`` and moved to ``device`` one
    tensor at a time (a large model never sits twice in memory)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {}
    for name, shape in tensor_shapes(config).items():
        std = _init_std(name, shape, config)
        t = torch.ones(shape) if std is None else torch.randn(shape, generator=gen).mul_(std)
        out[name] = t.to(device=device, dtype=dtype)
    return out


def _checkpoint_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise ModelError(f"checkpoint {path}: the folder holds no .safetensors file; give "
                             "a .safetensors file or a folder of them")
        return files
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist; give a .safetensors file")
    return [path]


def load_safetensors(path: Path, config: LlamaConfig, *, dtype: Any = None,
                     device: Any = None) -> dict[str, Any]:
    """A checkpoint (one .safetensors file, or a folder of shards) of ``config``'s shape, every
    tensor cast to ``dtype`` on ``device``. A missing, unexpected or misshapen tensor is a
    ModelError naming it."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ModelError("loading a .safetensors checkpoint needs the safetensors package: "
                         "pip install 'hwbench[torch]'") from None
    expected = tensor_shapes(config)
    out: dict[str, Any] = {}
    for file in _checkpoint_files(Path(path)):
        try:
            with safe_open(str(file), framework="pt", device="cpu") as f:
                for name in f.keys():
                    if name not in expected:
                        if config.tie_embeddings and name == "lm_head.weight":
                            continue  # a tied checkpoint may carry the copy; the embedding rules
                        if name.endswith("rotary_emb.inv_freq"):
                            continue  # a buffer older exports saved; recomputed here
                        raise ModelError(f"checkpoint {file}: unexpected tensor {name!r} for "
                                         "this Llama config; is it the same architecture?")
                    t = f.get_tensor(name)
                    if tuple(t.shape) != expected[name]:
                        raise ModelError(f"checkpoint {file}: tensor {name!r} has shape "
                                         f"{tuple(t.shape)}, the config expects "
                                         f"{expected[name]}; give the checkpoint's own config")
                    out[name] = t.to(device=device, dtype=dtype)
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"checkpoint {file} is not a readable safetensors file "
                             f"({exc})") from None
    missing = [n for n in expected if n not in out]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ModelError(f"checkpoint {path}: tensor {missing[0]!r}{more} missing; is it a "
                         "checkpoint of this config?")
    return out


def save_safetensors(weights: dict[str, Any], path: Path) -> None:
    """Writes weights under Hugging Face's names (``seeded_weights`` or ``Llama.weights()``)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(path))


def config_from_hf(path: Path) -> LlamaConfig:
    """A LlamaConfig from a Hugging Face ``config.json`` of a Llama model: ``path`` is the
    config itself, a checkpoint folder holding it, or a ``.safetensors`` file beside it."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    elif path.suffix == ".safetensors":
        path = path.with_name("config.json")
    try:
        hf = json.loads(path.read_text())
        scaling = hf.get("rope_scaling") or {}
        return LlamaConfig(
            vocab=hf["vocab_size"], dim=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
            n_heads=hf["num_attention_heads"],
            n_kv_heads=hf.get("num_key_value_heads", hf["num_attention_heads"]),
            ffn_dim=hf["intermediate_size"], rope_theta=float(hf.get("rope_theta", 10000.0)),
            max_seq_len=hf.get("max_position_embeddings", 8192),
            norm_eps=hf.get("rms_norm_eps", 1e-5),
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            rope_scaling=float(scaling.get("factor", 1.0)) if scaling else 1.0)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"checkpoint config {path}: not a Llama config.json ({exc!r}); give "
                         "the config.json that came with the checkpoint") from None


def _inv_freq(config: LlamaConfig) -> Any:
    """Rotary frequencies, with Llama 3's scaling of the long wavelengths when the config has it
    (the rule of Hugging Face's ``_compute_llama3_parameters``: factor, low 1, high 4, 8192)."""
    import torch

    hd = config.head_dim
    inv = 1.0 / (config.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    if config.rope_scaling == 1.0:
        return inv.float()
    factor, low, high, old = config.rope_scaling, 1.0, 4.0, 8192.0
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    mid = (wavelen <= old / low) & (wavelen >= old / high)
    scaled = torch.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
    return scaled.float()


def build(config: LlamaConfig, seed: int, checkpoint: Path | None, *, device: Any = None,
          dtype: Any = None) -> "Llama":
    """The model on ``device`` in ``dtype``: the checkpoint's weights when there is one, else
    the seeded synthetic ones."""
    if checkpoint is not None:
        return Llama(config, load_safetensors(checkpoint, config, dtype=dtype, device=device))
    return Llama.seeded(config, seed, dtype=dtype, device=device)


class PagedKvCache:
    """Keys and values of every layer in one pool of fixed-size blocks (``block_size`` tokens).
    A sequence owns a list of blocks; its token at position p lives in slot
    ``blocks[p // block_size] * block_size + p % block_size``. Zero-filled, so a masked slot
    never carries a NaN into attention."""

    def __init__(self, config: LlamaConfig, n_blocks: int, block_size: int, *, dtype: Any,
                 device: Any) -> None:
        import torch

        self.n_blocks, self.block_size = n_blocks, block_size
        shape = (config.n_layers, n_blocks * block_size, config.n_kv_heads, config.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    def slots(self, blocks: list[int], length: int) -> Any:
        """The slots of positions 0..length-1 of a sequence owning ``blocks`` (a LongTensor)."""
        import torch

        bs = self.block_size
        table = torch.tensor(blocks[: (length + bs - 1) // bs], dtype=torch.long)
        return (table[:, None] * bs + torch.arange(bs)).flatten()[:length]


class Llama:
    """A Llama model on one device at one dtype. Three entry points, all without autograd:

    - ``forward(tokens)``: logits of every position of one sequence, no cache (teacher forcing);
    - ``extend(tokens, start, cache, slots)``: appends a chunk of one sequence's prompt to the
      cache and returns the logits of its last position (prefill, whole or chunked);
    - ``decode(tokens, positions, cache, slots)``: one token of each of B sequences.
    """

    def __init__(self, config: LlamaConfig, weights: dict[str, Any]) -> None:
        import torch

        self.config = config
        w = weights
        self.embed = w["model.embed_tokens.weight"]
        self.device, self.dtype = self.embed.device, self.embed.dtype
        self.lm_head = self.embed if config.tie_embeddings else w["lm_head.weight"]
        self.norm = w["model.norm.weight"]
        self.layers = []
        for i in range(config.n_layers):
            p = f"model.layers.{i}."
            a, m = p + "self_attn.", p + "mlp."
            self.layers.append({
                "in_norm": w[p + "input_layernorm.weight"],
                "wqkv": torch.cat([w[a + "q_proj.weight"], w[a + "k_proj.weight"],
                                   w[a + "v_proj.weight"]]),
                "wo": w[a + "o_proj.weight"],
                "post_norm": w[p + "post_attention_layernorm.weight"],
                "w13": torch.cat([w[m + "gate_proj.weight"], w[m + "up_proj.weight"]]),
                "w2": w[m + "down_proj.weight"],
            })
        self.inv_freq = _inv_freq(config).to(self.device)

    @classmethod
    def seeded(cls, config: LlamaConfig, seed: int, *, dtype: Any = None,
               device: Any = None) -> "Llama":
        return cls(config, seeded_weights(config, seed, dtype=dtype, device=device))

    def new_cache(self, n_blocks: int, block_size: int) -> PagedKvCache:
        """An empty paged KV cache for this model, on its device at its dtype."""
        return PagedKvCache(self.config, n_blocks, block_size, dtype=self.dtype,
                            device=self.device)

    def weights(self) -> dict[str, Any]:
        """The tensors under Hugging Face's names (the fused ones split again)."""
        c, hd = self.config, self.config.head_dim
        out = {"model.embed_tokens.weight": self.embed, "model.norm.weight": self.norm}
        if not c.tie_embeddings:
            out["lm_head.weight"] = self.lm_head
        q, kv = c.n_heads * hd, c.n_kv_heads * hd
        for i, L in enumerate(self.layers):
            p = f"model.layers.{i}."
            out.update({
                p + "input_layernorm.weight": L["in_norm"],
                p + "self_attn.q_proj.weight": L["wqkv"][:q],
                p + "self_attn.k_proj.weight": L["wqkv"][q:q + kv],
                p + "self_attn.v_proj.weight": L["wqkv"][q + kv:],
                p + "self_attn.o_proj.weight": L["wo"],
                p + "post_attention_layernorm.weight": L["post_norm"],
                p + "mlp.gate_proj.weight": L["w13"][:c.ffn_dim],
                p + "mlp.up_proj.weight": L["w13"][c.ffn_dim:],
                p + "mlp.down_proj.weight": L["w2"],
            })
        return out

    # -- the pieces ------------------------------------------------------------------------
    def _rms(self, x: Any, weight: Any) -> Any:
        import torch.nn.functional as F

        # As Hugging Face's LlamaRMSNorm: normalised in fp32, cast back, then scaled.
        xf = F.rms_norm(x.float(), (x.shape[-1],), eps=self.config.norm_eps)
        return weight * xf.to(x.dtype)

    def _rotary(self, positions: Any) -> tuple[Any, Any]:
        import torch

        freqs = positions.to(self.device, torch.float32)[:, None] * self.inv_freq[None]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(self.dtype)[:, None, :], emb.sin().to(self.dtype)[:, None, :]

    @staticmethod
    def _rotate(x: Any, cos: Any, sin: Any) -> Any:
        import torch

        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def _qkv(self, L: dict[str, Any], x: Any, cos: Any, sin: Any) -> tuple[Any, Any, Any]:
        """Projections of N tokens: q ``[N, heads, hd]``, k and v ``[N, kv_heads, hd]``."""
        import torch.nn.functional as F

        c, hd = self.config, self.config.head_dim
        qkv = F.linear(self._rms(x, L["in_norm"]), L["wqkv"])
        qk, v = qkv.split([(c.n_heads + c.n_kv_heads) * hd, c.n_kv_heads * hd], dim=-1)
        qk = self._rotate(qk.reshape(-1, c.n_heads + c.n_kv_heads, hd), cos, sin)  # one pass
        q, k = qk.split([c.n_heads, c.n_kv_heads], dim=1)
        return q, k, v.view(-1, c.n_kv_heads, hd)

    def _rest(self, L: dict[str, Any], x: Any, attn: Any) -> Any:
        """The attention output projection and the SwiGLU feed-forward, both residual."""
        import torch.nn.functional as F

        x = x + F.linear(attn, L["wo"])
        gate, up = F.linear(self._rms(x, L["post_norm"]), L["w13"]).chunk(2, dim=-1)
        return x + F.linear(F.silu(gate) * up, L["w2"])

    def _logits(self, x: Any) -> Any:
        import torch.nn.functional as F

        return F.linear(self._rms(x, self.norm), self.lm_head)

    # -- entry points ----------------------------------------------------------------------
    def forward(self, tokens: Any) -> Any:
        """Logits ``[T, vocab]`` of one sequence, every position attending to those before it."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            tokens = tokens.to(self.device)
            cos, sin = self._rotary(torch.arange(len(tokens)))
            x = self.embed[tokens]
            for L in self.layers:
                q, k, v = self._qkv(L, x, cos, sin)
                o = F.scaled_dot_product_attention(
                    q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None],
                    is_causal=True, enable_gqa=True)
                x = self._rest(L, x, o[0].transpose(0, 1).reshape(len(tokens), -1))
            return self._logits(x)

    def extend(self, tokens: Any, start: int, cache: PagedKvCache, slots: Any) -> Any:
        """Positions ``start .. start+T-1`` of one sequence: their keys and values go to
        ``slots[start:]`` (``slots`` covers positions ``0 .. start+T-1``); returns the logits of
        the last one, ``[vocab]``."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            n, total = len(tokens), start + len(tokens)
            slots = slots.to(self.device)
            cos, sin = self._rotary(torch.arange(start, total))
            mask = (torch.arange(total)[None, :] <= torch.arange(start, total)[:, None])
            mask = mask.to(self.device)
            x = self.embed[tokens.to(self.device)]
            for i, L in enumerate(self.layers):
                q, k, v = self._qkv(L, x, cos, sin)
                cache.k[i, slots[start:]] = k
                cache.v[i, slots[start:]] = v
                keys, values = cache.k[i, slots], cache.v[i, slots]  # [total, kvh, hd]
                o = F.scaled_dot_product_attention(
                    q.transpose(0, 1)[None], keys.transpose(0, 1)[None],
                    values.transpose(0, 1)[None], attn_mask=mask, enable_gqa=True)
                x = self._rest(L, x, o[0].transpose(0, 1).reshape(n, -1))
            return self._logits(x[-1:])[0]

    def decode(self, tokens: Any, positions: Any, cache: PagedKvCache, slots: Any) -> Any:
        """One token of each of B sequences: token b sits at ``positions[b]``; ``slots`` is
        ``[B, L]`` (L > every position; row b holds sequence b's slots, anything past its
        position is masked). Returns logits ``[B, vocab]``."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            b = len(tokens)
            tokens, positions = tokens.to(self.device), positions.to(self.device)
            slots = slots.to(self.device)
            here = slots.gather(1, positions[:, None])[:, 0]
            cos, sin = self._rotary(positions)
            mask = (torch.arange(slots.shape[1], device=self.device)[None, :]
                    <= positions[:, None])[:, None, None, :]
            x = self.embed[tokens]
            for i, L in enumerate(self.layers):
                q, k, v = self._qkv(L, x, cos, sin)
                cache.k[i, here] = k
                cache.v[i, here] = v
                keys, values = cache.k[i][slots], cache.v[i][slots]  # [B, L, kvh, hd]
                o = F.scaled_dot_product_attention(
                    q[:, :, None, :], keys.transpose(1, 2), values.transpose(1, 2),
                    attn_mask=mask, enable_gqa=True)
                x = self._rest(L, x, o.reshape(b, -1))
            return self._logits(x)

    def generate(self, prompt: Any, n: int) -> list[int]:
        """Greedy generation of ``n`` tokens (EOS ignored) through the KV cache, one sequence:
        the reference's free-running tokens."""
        import torch

        bs, total = 16, len(prompt) + n
        cache = self.new_cache((total + bs - 1) // bs, bs)
        slots = cache.slots(list(range(cache.n_blocks)), total)
        out = [int(self.extend(prompt, 0, cache, slots[:len(prompt)]).argmax())]
        for pos in range(len(prompt), total - 1):
            logits = self.decode(torch.tensor([out[-1]]), torch.tensor([pos]), cache,
                                 slots[None, :pos + 1])
            out.append(int(logits[0].argmax()))
        return out
