"""The torch backend's serving engine for the ``llm`` workload: iteration-level (continuous)
batching over a paged KV cache, as vLLM and TGI serve.

One thread runs the loop. Each iteration it (1) admits waiting requests, in arrival order, while
fewer than ``max_seqs`` sequences run and the KV-cache pool has the blocks a request will need to
its last token (reserved at admission, so a running sequence is never preempted; a request that
does not fit waits at the head of the queue); (2) prefills admitted prompts, whole or in chunks,
up to ``prefill_chunk`` prompt tokens per iteration, so a long prompt never stalls the running
sequences for long; a sequence whose prompt is done gets its first token; (3) runs one decode
step over every sequence that already had a token before this iteration. Then it reports, in one
``sink.tokens`` call, every request that got a token in this iteration, and in one
``sink.complete`` call those that have all their tokens. A request submitted while others decode
joins the batch at the next iteration: that is the continuous part.

Greedy decoding (argmax), exactly ``output_tokens`` tokens per request, end-of-sequence ignored.
The tokens are brought to the host before they are reported, so a report never runs ahead of the
device. The engine never reads a clock: the load generator timestamps each ``sink`` call.

Threading contract: ``serve``, ``drain`` and ``stop`` are called by the harness's thread;
``submit`` by the load generator's issue thread, and never blocks (it queues and wakes the loop);
``sink`` methods are called only from the loop's thread. A fault inside the loop calls
``sink.abort(reason)`` once, stops the loop and releases ``drain``: a fault never hangs a run.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BLOCK_SIZE = 16  # tokens per KV-cache block


@dataclass
class _Sequence:
    """One request in the engine."""

    id: int
    prompt: Any          # LongTensor on the host
    output_tokens: int
    blocks: list[int] = field(default_factory=list)
    slots: Any = None    # LongTensor: the cache slot of every position it will have
    prefilled: int = 0   # prompt tokens already in the cache
    tokens: list[int] = field(default_factory=list)  # generated so far

    @property
    def length(self) -> int:
        return len(self.prompt) + self.output_tokens


class Engine:
    """Continuous batching of one ``Llama`` model (hwbench.workloads.llama's interface:
    ``extend``, ``decode``, ``forward``, ``config``) over its paged KV cache (``n_blocks``,
    ``block_size``, ``slots(blocks, length)``)."""

    def __init__(self, model: Any, cache: Any, *, max_seqs: int, prefill_chunk: int) -> None:
        self.model, self.cache = model, cache
        self.max_seqs, self.prefill_chunk = max_seqs, prefill_chunk
        self._cv = threading.Condition()
        self._inbox: list[_Sequence] = []       # submitted, not yet seen by the loop (under _cv)
        self._submitted = self._completed = 0   # under _cv
        self._stopping = False                  # under _cv
        self._failed: str | None = None         # under _cv
        self._waiting: collections.deque[_Sequence] = collections.deque()  # loop thread only
        self._running: list[_Sequence] = []     # loop thread only, in admission order
        self._free = list(range(cache.n_blocks - 1, -1, -1))  # a stack of free blocks
        self._outputs: dict[int, np.ndarray] = {}
        self._thread: threading.Thread | None = None
        self._sink: Any = None
        self._keep = False

    # -- the harness's side ----------------------------------------------------------------
    def serve(self, sink: Any, keep_outputs: bool) -> None:
        """Starts the loop for one pass (serve -> submit... -> drain -> stop, as often as the
        harness runs passes); every pass starts from an empty batch and a free cache."""
        self.stop()
        with self._cv:
            self._inbox.clear()
            self._submitted = self._completed = 0
            self._stopping, self._failed = False, None
        self._waiting.clear()
        self._running.clear()
        self._free = list(range(self.cache.n_blocks - 1, -1, -1))
        self._outputs = {}
        self._sink, self._keep = sink, keep_outputs
        self._thread = threading.Thread(target=self._loop, name="hwbench-llm-engine",
                                        daemon=True)
        self._thread.start()

    def submit(self, ids: np.ndarray, requests: list[Any]) -> None:
        import torch

        new = [_Sequence(int(i), torch.as_tensor(np.asarray(r.prompt, dtype=np.int64)),
                         int(r.output_tokens)) for i, r in zip(ids, requests)]
        with self._cv:
            self._inbox.extend(new)
            self._submitted += len(new)
            self._cv.notify_all()

    def drain(self) -> None:
        """Blocks until every request submitted so far is complete, or the loop has failed
        (the sink was told why)."""
        with self._cv:
            self._cv.wait_for(lambda: self._completed >= self._submitted or
                              self._failed is not None or self._stopping)

    def outputs(self) -> dict[int, np.ndarray]:
        return dict(self._outputs)

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    @property
    def failure(self) -> str | None:
        return self._failed

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """Teacher-forced logits ``[len, vocab]`` (float32) of one sequence, at the model's
        precision: what fidelity compares with the FP32 reference."""
        import torch

        out = self.model.forward(torch.as_tensor(np.asarray(tokens, dtype=np.int64)))
        return out.float().cpu().numpy()

    # -- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        import torch

        try:
            with torch.inference_mode():
                while self._next_work():
                    self._iteration()
        except Exception as exc:  # any fault of the model or the device ends the run, said
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            self._fail(f"torch llm engine: {type(exc).__name__}: {first}")

    def _fail(self, reason: str) -> None:
        with self._cv:
            if self._failed is not None:
                return
            self._failed = reason
            self._cv.notify_all()
        try:
            self._sink.abort(reason)
        finally:
            self._running.clear()
            self._waiting.clear()

    def _next_work(self) -> bool:
        """Takes new requests from the inbox, waiting for some when idle. False: stop."""
        with self._cv:
            while not self._stopping and not self._inbox and not self._running \
                    and not self._waiting:
                self._cv.wait()
            if self._stopping:
                return False
            self._waiting.extend(self._inbox)
            self._inbox.clear()
        return True

    def _iteration(self) -> None:
        self._admit()
        decoding = [s for s in self._running if s.tokens]  # had a token before this iteration
        got = self._prefill()
        if decoding:
            self._decode(decoding)
            got = decoding + got
        if not got:
            return
        done = [s for s in got if len(s.tokens) == s.output_tokens]
        self._sink.tokens(np.array([s.id for s in got], dtype=np.uint64),
                          np.array([len(s.tokens) for s in got], dtype=np.uint32),
                          np.array([s.tokens[0] for s in got], dtype=np.int64))
        if done:
            for s in done:
                self._finish(s)
            self._sink.complete(np.array([s.id for s in done], dtype=np.uint64))
            with self._cv:
                self._completed += len(done)
                self._cv.notify_all()

    def _admit(self) -> None:
        bs, cfg = self.cache.block_size, self.model.config
        while self._waiting and len(self._running) < self.max_seqs:
            s = self._waiting[0]
            if s.length > cfg.max_seq_len or s.output_tokens < 1 or len(s.prompt) < 1:
                raise ValueError(f"request {s.id}: prompt {len(s.prompt)} + output "
                                 f"{s.output_tokens} tokens is not within 1..{cfg.max_seq_len}"
                                 " (the model's max_seq_len), or has no prompt or no output")
            need = (s.length + bs - 1) // bs
            if need > self.cache.n_blocks:
                raise ValueError(f"request {s.id} needs {need} KV-cache blocks of {bs} tokens, "
                                 f"more than the whole cache ({self.cache.n_blocks}); raise "
                                 "--backend-opt kv_cache_mb")
            if need > len(self._free):
                return  # the head waits for blocks; arrival order is kept
            self._waiting.popleft()
            s.blocks = [self._free.pop() for _ in range(need)]
            s.slots = self.cache.slots(s.blocks, s.length)
            self._running.append(s)

    def _prefill(self) -> list[_Sequence]:
        """Prompt chunks of admitted sequences, oldest first, up to ``prefill_chunk`` tokens;
        the sequences whose prompt completed, each with its first token."""
        budget, first = self.prefill_chunk, []
        for s in self._running:
            if budget <= 0:
                break
            todo = len(s.prompt) - s.prefilled
            if todo <= 0:
                continue
            n = min(todo, budget)
            end = s.prefilled + n
            logits = self.model.extend(s.prompt[s.prefilled:end], s.prefilled, self.cache,
                                       s.slots[:end])
            s.prefilled, budget = end, budget - n
            if end == len(s.prompt):
                s.tokens.append(int(logits.argmax()))  # to the host: the token exists
                first.append(s)
        return first

    def _decode(self, seqs: list[_Sequence]) -> None:
        import torch

        positions = [len(s.prompt) + len(s.tokens) - 1 for s in seqs]
        width = max(positions) + 1
        slots = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (s, p) in enumerate(zip(seqs, positions)):
            slots[row, :p + 1] = s.slots[:p + 1]
        logits = self.model.decode(torch.tensor([s.tokens[-1] for s in seqs]),
                                   torch.tensor(positions), self.cache, slots)
        for s, t in zip(seqs, logits.argmax(-1).tolist()):  # .tolist(): on the host
            s.tokens.append(t)

    def _finish(self, s: _Sequence) -> None:
        self._running.remove(s)
        self._free.extend(s.blocks)
        if self._keep:
            self._outputs[s.id] = np.array(s.tokens, dtype=np.int64)


def cache_blocks(config: Any, kv_cache_mb: int, element_bytes: int) -> int:
    """How many blocks of ``BLOCK_SIZE`` tokens a KV cache of ``kv_cache_mb`` MiB holds."""
    per_block = config.kv_bytes_per_token(element_bytes) * BLOCK_SIZE
    return (kv_cache_mb << 20) // per_block


def load(artifact: Any, *, device: Any, dtype: Any, max_seqs: int, kv_cache_mb: int,
         prefill_chunk: int) -> Engine:
    """The engine serving an llm artifact on ``device`` in ``dtype``: the artifact builds the
    model (``artifact.build(device, dtype)``: seeded weights or its checkpoint; the model and its
    cache are the workload's, reached through the artifact, never imported), and the KV cache
    gets ``kv_cache_mb`` MiB of the device's memory."""
    import torch

    from hwbench.errors import UsageError

    config = artifact.config
    element = torch.tensor([], dtype=dtype).element_size()
    blocks = cache_blocks(config, kv_cache_mb, element)
    if blocks < 1:
        per = config.kv_bytes_per_token(element) * BLOCK_SIZE
        raise UsageError(f"backend torch: kv_cache_mb={kv_cache_mb} holds no block of "
                         f"{BLOCK_SIZE} tokens of this model ({per / 2**20:.2f} MiB each); raise "
                         "--backend-opt kv_cache_mb")
    try:
        model = artifact.build(device, dtype)
        cache = model.new_cache(blocks, BLOCK_SIZE)
    except torch.cuda.OutOfMemoryError:
        raise UsageError(f"backend torch: the {artifact.size} model and a KV cache of "
                         f"{kv_cache_mb} MiB do not fit in {device}'s memory; lower "
                         "--backend-opt kv_cache_mb or use a smaller --model") from None
    return Engine(model, cache, max_seqs=max_seqs, prefill_chunk=prefill_chunk)
