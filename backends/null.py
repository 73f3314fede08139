"""The ``null`` backend: completes samples without computing, to measure the harness itself.

With ``service_time_us`` set, each sample costs exactly that long of busy-waiting in the
compiled extension (GIL released), one sample after another in arrival order: a single FIFO
worker with a fixed service time.

``slowdown_pct`` plants drift: each further 1,000 samples served add that percentage of
``service_time_us`` to every sample's cost (a system that heats up or leaks), so that a soak's
drift check can be shown to flag one.

``cheat`` makes it a system under test that cheats, so that ``hwbench audit`` can be shown to
catch one. Its answers are then a function of each input (the input's values, repeated to the
output's size), and each sample costs ``service_time_us`` (200 us if unset: a cheat needs work
to skip). ``cache`` remembers the answer to every input it has seen and answers a repeat from
memory, skipping the work; ``zeros_under_load`` answers an input it has seen before with zeros,
skipping the work, on the bet that only the first sight of an input (the accuracy pass) is
checked.

Generative workloads (``llm``): the backend streams. Each request's first token comes
``prefill_us`` after it is submitted and each next one ``token_us`` after the previous,
independently per request (no queueing between requests), for the request's own output length
or ``output_tokens`` when set. The pacing is compiled (``hwbench._loadgen.TokenPacer``): its own
thread calls the load generator's token events without the GIL, so the harness's token timing can
be checked against exact settings; this backend still never reads a clock. Every first token
event reports the value 0, the first token of the placeholder outputs (zeros).

``cheat`` for generative workloads (the cheats above are refused there, and these elsewhere):
``prefix_cache`` gives a prompt it has seen before its first token after ``prefill_us / 10`` (a
prefix cache that skips the prefill: caught by ``hwbench audit``'s prefix caching check);
``early_first_token`` reports a first token at once, on submission, whose value (1) is not the
output's first token (0), the way a system would fake a low time to first token: caught by the
first token check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

# The busy-wait is the compiled load generator's (GIL released): this backend never reads a clock.
from hwbench._loadgen import TokenPacer, spin_for_ns
from hwbench.artifacts import TensorSpec, record_dtype
from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, option
from hwbench.errors import UsageError


CHEATS = ("none", "cache", "zeros_under_load", "prefix_cache", "early_first_token")
GENERATIVE_CHEATS = ("prefix_cache", "early_first_token")
PREFIX_CACHE_SPEEDUP = 10  # a cached prompt's first token comes after prefill_us / this
CHEAT_SERVICE_US = 200.0


class NullBackend(Backend):
    name: ClassVar[str] = "null"
    description: ClassVar[str] = "no computation: measures the harness (optional fixed service time)"
    streams: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options:
        service_time_us: float = option(0.0, "busy-wait per sample, in microseconds", minimum=0)
        cheat: str = option("none", "behave like a cheating system under test, for hwbench "
                            "audit to catch", choices=CHEATS)
        slowdown_pct: float = option(0.0, "planted drift: each 1,000 samples served add this "
                                     "percentage of service_time_us per sample", minimum=0)
        prefill_us: float = option(0.0, "llm: time to each request's first token, in "
                                   "microseconds", minimum=0)
        token_us: float = option(0.0, "llm: time between a request's tokens, in microseconds",
                                 minimum=0)
        output_tokens: int = option(0, "llm: tokens per request (0: the request's own length)",
                                    minimum=0)

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True, devices=("none",), precisions=("none",))

    def load(self, model: ModelArtifact) -> None:
        self._pacer = None
        # A generative workload's model has no output shape: it is served token by token.
        self._generative = not hasattr(model, "output_shape")
        cheat = self.opts.cheat
        if cheat != "none" and self._generative != (cheat in GENERATIVE_CHEATS):
            fits = GENERATIVE_CHEATS if not self._generative else ("cache", "zeros_under_load")
            raise UsageError(f"backend null: cheat={cheat} does not apply to this workload "
                             f"(use cheat={' or cheat='.join(fits)})")
        if self._generative:
            self._prompts_seen: set[bytes] = set()
            return
        # An output dimension not known before the model runs (-1) answers with size 1.
        outs = tuple(TensorSpec(t.name, t.dtype, tuple(max(d, 1) for d in t.shape))
                     for t in model.outputs)
        self._shape = outs[0].shape
        self._record = record_dtype(outs) if len(outs) > 1 else None
        if self._record is not None and cheat != "none":
            raise UsageError(f"backend null: cheat={cheat} applies to models of one input and "
                             "one output; drop cheat")
        self._zeros = self._zeros_of(1)
        self._spin_ns = int(self.opts.service_time_us * 1000)
        self._slowdown = self.opts.slowdown_pct / 100.0 / 1000.0  # per sample served
        self._served = 0
        self._cheat = self.opts.cheat
        if self._cheat != "none":
            self._spin_ns = self._spin_ns or int(CHEAT_SERVICE_US * 1000)
            self._size = int(np.prod(self._shape, dtype=np.int64))
            self._seen: dict[bytes, np.ndarray] = {}

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._cheat != "none":
            return np.stack([self._cheating(x) for x in batch])
        n = len(batch)
        if self._spin_ns:
            grown = 1.0 + self._slowdown * self._served if self._slowdown else 1.0
            self._served += n
            spin_for_ns(int(self._spin_ns * grown) * n)
        if n > len(self._zeros):
            self._zeros = self._zeros_of(n)
        return self._zeros[:n]

    def _zeros_of(self, n: int) -> np.ndarray:
        if self._record is not None:  # several outputs: records of zeros (base's docstring)
            return np.zeros(n, dtype=self._record)
        return np.zeros((n, *self._shape), dtype=np.float32)

    def _cheating(self, x: np.ndarray) -> np.ndarray:
        key = x.tobytes()
        seen = self._seen.get(key)
        if seen is not None:  # a repeat: answered without the work
            return seen if self._cheat == "cache" else np.zeros_like(seen)
        spin_for_ns(self._spin_ns)
        out = np.resize(x.ravel().astype(np.float32), self._size).reshape(self._shape)
        self._seen[key] = out
        return out

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, device="none", precision="none", computes=False,
                           streams=self._generative, options=self.option_values())

    # --- streaming: the compiled pacer reports the tokens --------------------------------------
    def serve(self, sink, keep_outputs: bool) -> None:
        native = getattr(sink, "native", None)
        if native is None:
            raise RuntimeError("the null backend's pacer reports to the compiled load generator: "
                               "serve it through hwbench's streaming SUT")
        self.stop()
        # The placeholder outputs are zeros, so the honest first token is 0.
        first = 1 if self.opts.cheat == "early_first_token" else 0
        self._pacer = TokenPacer(native, int(self.opts.prefill_us * 1000),
                                 int(self.opts.token_us * 1000), first_value=first)
        self._outputs: dict[int, np.ndarray] | None = {} if keep_outputs else None

    def submit(self, ids: np.ndarray, requests: list) -> None:
        fixed = self.opts.output_tokens
        lengths = np.fromiter((fixed or r.output_tokens for r in requests), np.uint32,
                              len(requests))
        self._pacer.submit(ids, lengths, self._prefills(requests))
        if self._outputs is not None:  # placeholders: this backend computes no token
            for i, n in zip(ids.tolist(), lengths.tolist()):
                self._outputs[i] = np.zeros(n, np.int64)

    def _prefills(self, requests: list) -> np.ndarray | None:
        """Per-request time to the first token (ns) for a cheat; None: ``prefill_us`` for all."""
        cheat = self.opts.cheat
        if cheat == "early_first_token":
            return np.zeros(len(requests), np.int64)
        if cheat != "prefix_cache":
            return None
        full = int(self.opts.prefill_us * 1000)
        out = np.empty(len(requests), np.int64)
        for i, r in enumerate(requests):
            key = np.ascontiguousarray(r.prompt).tobytes()
            out[i] = full // PREFIX_CACHE_SPEEDUP if key in self._prompts_seen else full
            self._prompts_seen.add(key)
        return out

    def drain(self) -> None:
        self._pacer.drain()

    def outputs(self) -> dict[int, np.ndarray]:
        return dict(self._outputs or {})

    def stop(self) -> None:
        pacer, self._pacer = getattr(self, "_pacer", None), None
        if pacer is not None:
            pacer.stop()
