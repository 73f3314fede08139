"""``llm``: text generation with a Llama-family model, timed token by token.

A sample is a request: a prompt (token ids) and how many tokens to generate. The model is named
by ``--model``: a size (``tiny``, the default; ``1b``, ``8b``: the shapes of Llama-3.2-1B and
Llama-3.1-8B) with seeded synthetic weights, or a ``.safetensors`` checkpoint (its ``config.json``
beside it). Requests come from a seeded length distribution (``LENGTHS``, docs/llm.md) or from a
user's tokenized dataset (``--dataset FILE.jsonl`` or ``.npz``, see ``read_dataset``).

The workload is torch-native: a backend serves it through the streaming interface
(``hwbench.backends.base``), and the load generator stamps every token event. With synthetic
weights there is no accuracy to validate: an LLM run is validated by its performance verdict and,
when the backend computes, by fidelity against the FP32 reference (teacher-forced logits).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from hwbench.errors import DatasetError, ModelError, UsageError
from hwbench.workloads.base import Workload

if TYPE_CHECKING:  # the model module is the llama workload's; imported when a size is resolved
    from hwbench.workloads.llama import LlamaConfig

SIZE_NAMES = ("tiny", "1b", "8b")
SAMPLE_COUNT = 1024  # synthetic requests in the sample set
PROFILES = ("default", "interactive")


@dataclass(frozen=True)
class LlmRequest:
    """One generation request: exactly ``output_tokens`` tokens are generated (EOS ignored)."""

    prompt: np.ndarray      # int64 token ids, 1-D
    output_tokens: int


@dataclass(frozen=True)
class LlmArtifact:
    """The model an llm run serves, handed to ``Backend.load``: a shape, and the seed of its
    synthetic weights or the checkpoint that replaces them."""

    config: LlamaConfig
    seed: int
    checkpoint: Path | None
    size: str
    precision: str = "fp32"  # of the model as named; a backend casts it to its own

    @property
    def path(self) -> Path | None:
        return self.checkpoint

    def build(self, device: Any, dtype: Any) -> Any:
        """The model in torch (``hwbench.workloads.llama.Llama``) on ``device`` in ``dtype``: a
        backend that serves it reaches the model through its artifact, never by import."""
        from hwbench.workloads import llama

        return llama.build(self.config, self.seed, self.checkpoint, device=device, dtype=dtype)


@dataclass(frozen=True)
class LengthDistribution:
    """Log-normal prompt and output lengths (median, sigma of the log), clipped to [lo, hi]."""

    prompt_median: float
    prompt_sigma: float
    prompt_min: int
    prompt_max: int
    output_median: float
    output_sigma: float
    output_min: int
    output_max: int

    def draw(self, rng: np.random.Generator) -> tuple[int, int]:
        p = rng.lognormal(np.log(self.prompt_median), self.prompt_sigma)
        o = rng.lognormal(np.log(self.output_median), self.output_sigma)
        return (int(np.clip(round(p), self.prompt_min, self.prompt_max)),
                int(np.clip(round(o), self.output_min, self.output_max)))


# The synthetic request mix per size (docs/llm.md). tiny keeps a CPU run short; 1b and 8b follow
# the shape of MLPerf's llama3.1-8b set (CNN/DailyMail summaries: prompts of ~800 tokens,
# outputs of ~100), clipped to what a server of that size serves.
LENGTHS = {
    "tiny": LengthDistribution(64, 0.5, 8, 256, 32, 0.5, 4, 128),
    "1b": LengthDistribution(768, 0.5, 64, 2048, 128, 0.5, 16, 512),
    "8b": LengthDistribution(768, 0.5, 64, 2048, 128, 0.5, 16, 512),
}

# Server's token bounds (ms): (TTFT p99, TPOT p99) per size and profile. 8b: MLPerf's
# llama3.1-8b (2000/100; interactive 500/30); 1b is judged as 8b; tiny's are sized for a
# decode step of a few milliseconds on a small CPU.
TOKEN_BOUNDS_MS = {
    ("tiny", "default"): (500.0, 50.0), ("tiny", "interactive"): (100.0, 15.0),
    ("1b", "default"): (2000.0, 100.0), ("1b", "interactive"): (500.0, 30.0),
    ("8b", "default"): (2000.0, 100.0), ("8b", "interactive"): (500.0, 30.0),
}


def read_dataset(path: Path, vocab: int, max_seq_len: int) -> list[LlmRequest]:
    """A user's tokenized requests. ``.jsonl``: one object per line, ``{"prompt": [ids...],
    "output_tokens": N}``. ``.npz``: ``prompt_tokens`` (every prompt's ids, concatenated),
    ``prompt_lengths`` and ``output_tokens`` (one per request). Ids must be below the model's
    vocabulary and each request must fit its context."""
    if not path.is_file():
        raise DatasetError(f"dataset {path} not found: give --dataset an existing .jsonl or .npz")
    if path.suffix == ".jsonl":
        out = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                out.append(LlmRequest(np.asarray(obj["prompt"], dtype=np.int64),
                                      int(obj["output_tokens"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise DatasetError(f"{path}:{n}: expected {{\"prompt\": [token ids], "
                                   f"\"output_tokens\": N}} ({type(exc).__name__}); fix the "
                                   "line") from None
    elif path.suffix == ".npz":
        try:
            with np.load(path) as z:
                flat = z["prompt_tokens"].astype(np.int64)
                lengths = z["prompt_lengths"].astype(np.int64)
                outs = z["output_tokens"].astype(np.int64)
        except (KeyError, ValueError, OSError) as exc:
            raise DatasetError(f"{path}: expected arrays prompt_tokens, prompt_lengths and "
                               f"output_tokens ({type(exc).__name__}); see docs/llm.md") from None
        if len(lengths) != len(outs) or lengths.sum() != len(flat) or (lengths < 0).any():
            raise DatasetError(f"{path}: prompt_lengths must sum to len(prompt_tokens), one per "
                               "output_tokens entry; fix the file")
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        out = [LlmRequest(flat[s:s + n], int(o)) for s, n, o in zip(starts, lengths, outs)]
    else:
        raise DatasetError(f"dataset {path}: use a .jsonl or .npz file (see docs/llm.md)")
    if not out:
        raise DatasetError(f"dataset {path} holds no request: add at least one")
    for i, r in enumerate(out):
        if r.prompt.ndim != 1 or len(r.prompt) < 1 or r.output_tokens < 1:
            raise DatasetError(f"{path}: request {i} needs a prompt of >= 1 token and "
                               "output_tokens >= 1")
        if r.prompt.min() < 0 or r.prompt.max() >= vocab:
            raise DatasetError(f"{path}: request {i} has a token id outside the model's "
                               f"vocabulary [0, {vocab}): tokenize for this model")
        if len(r.prompt) + r.output_tokens > max_seq_len:
            raise DatasetError(f"{path}: request {i} needs {len(r.prompt) + r.output_tokens} "
                               f"positions, beyond the model's context of {max_seq_len}")
    return out


class Llm(Workload):
    name: ClassVar[str] = "llm"
    description: ClassVar[str] = ("Llama text generation (tiny, 1b, 8b or a checkpoint), timed "
                                  "per token: TTFT, TPOT, tokens/s")
    generative: ClassVar[bool] = True
    server_latency_bound_ms: ClassVar[float] = 0.0  # judged per token instead (token_bounds_ms)
    mlperf_performance_sample_count: ClassVar[int] = SAMPLE_COUNT
    sample_shape: ClassVar[tuple[int, ...]] = ()

    def __init__(self, model: str | None = None, dataset: str | None = None,
                 seed: int = 1) -> None:
        self.size = "tiny" if model is None else model
        checkpoint = None
        if self.size not in SIZE_NAMES:
            checkpoint = Path(self.size)
            if checkpoint.suffix != ".safetensors" and not checkpoint.is_dir():
                raise UsageError(f"--model {model!r}: name a size ({', '.join(SIZE_NAMES)}) or a "
                                 ".safetensors checkpoint with its config.json")
            if not checkpoint.exists():
                raise ModelError(f"checkpoint {checkpoint} not found: give --model an existing "
                                 ".safetensors file")
        super().__init__(None, dataset, seed)
        self.checkpoint = checkpoint
        self._requests: list[LlmRequest] | None = None
        self._llm_artifact: LlmArtifact | None = None

    # --- the model -------------------------------------------------------------------------
    @property
    def synthetic_weights(self) -> bool:
        return self.checkpoint is None

    def config(self) -> LlamaConfig:
        from hwbench.workloads import llama

        if self.checkpoint is None:
            return llama.SIZES[self.size]
        return llama.config_from_hf(self.checkpoint)

    def artifact(self, progress: Callable[[str], None] | None = None) -> LlmArtifact:  # type: ignore[override]
        if self._llm_artifact is None:
            size = "checkpoint" if self.checkpoint is not None else self.size
            self._llm_artifact = LlmArtifact(self.config(), self.seed, self.checkpoint, size)
        return self._llm_artifact

    def token_bounds_ms(self, profile: str) -> tuple[float, float]:
        """Server's default (TTFT, TPOT) bounds for this size under ``profile``."""
        size = self.size if self.checkpoint is None else "8b"
        return TOKEN_BOUNDS_MS[(size, profile)]

    def backend_needed(self) -> str:
        """What to do when the chosen backend cannot serve this workload."""
        return ("the llm workload is served token by token: use --backend torch, openai (an "
                "OpenAI-compatible server) or null (to measure the harness)")

    # --- the requests ----------------------------------------------------------------------
    def requests(self) -> list[LlmRequest]:
        """Every request of the sample set: the user's dataset, else the seeded synthetic set."""
        if self._requests is None:
            cfg = self.config()
            if self.dataset is not None:
                self._requests = read_dataset(self.dataset, cfg.vocab, cfg.max_seq_len)
            else:
                self._requests = [self._synthetic(i, cfg) for i in range(SAMPLE_COUNT)]
        return self._requests

    def _synthetic(self, i: int, cfg: LlamaConfig) -> LlmRequest:
        # Request i is the same whichever others are loaded (seeded by the seed and its index).
        rng = np.random.default_rng([self.seed, 0x11A, i])
        dist = LENGTHS.get(self.size, LENGTHS["8b"])
        n_prompt, n_out = dist.draw(rng)
        n_prompt = min(n_prompt, cfg.max_seq_len - n_out)
        return LlmRequest(rng.integers(0, cfg.vocab, n_prompt, dtype=np.int64), n_out)

    def prepare(self, progress: Callable[[str], None] | None = None) -> None:
        self.requests()  # a bad dataset fails here, before anything is measured

    def sample_count(self) -> int:
        return len(self.requests())

    def load_requests(self, indices: np.ndarray) -> list[LlmRequest]:
        reqs = self.requests()
        return [reqs[i] for i in indices.tolist()]

    def load_samples(self, indices: np.ndarray) -> np.ndarray:
        raise NotImplementedError("llm samples are requests of varying length: use "
                                  "load_requests")

    # --- correctness -----------------------------------------------------------------------
    def accuracy_unavailable(self) -> str | None:
        if self.synthetic_weights:
            return ("accuracy not applicable: synthetic weights generate no meaningful text; an "
                    "llm run is validated by its token bounds and by fidelity")
        return ("accuracy not applicable: hwbench has no text metric for llm yet; the run is "
                "validated by its token bounds and by fidelity")

    def _identity(self) -> str:
        """What names the model in comparisons: its size and seed, or the checkpoint's name and
        byte size (hashing a checkpoint of gigabytes would cost a run minutes)."""
        if self.checkpoint is None:
            return f"llama-{self.size}-seed{self.seed}"
        size = sum(f.stat().st_size for f in ([self.checkpoint] if self.checkpoint.is_file()
                                               else self.checkpoint.glob("*.safetensors")))
        return f"checkpoint:{self.checkpoint.name}:{size}"

    def describe(self) -> dict[str, Any]:
        a = self._llm_artifact
        cfg = a.config if a else None
        return {"name": self.name, "description": self.description,
                "model": str(self.checkpoint) if self.checkpoint else self.size,
                "model_sha256": self._identity(), "synthetic_model": self.synthetic_weights,
                "sample_count": self.sample_count(),
                "dataset": str(self.dataset) if self.dataset else None, "generative": True,
                "llm": {"size": self.size if self.checkpoint is None else "checkpoint",
                        "seed": self.seed,
                        "config": None if cfg is None else dict(vars(cfg)),
                        "lengths": None if self.dataset else vars(LENGTHS.get(self.size,
                                                                              LENGTHS["8b"]))}}
