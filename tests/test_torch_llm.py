"""The torch backend's continuous-batching engine, for real (the tiny Llama in torch on the CPU),
driven through the TokenSink protocol by a sink that records the order of its calls. The load
generator, which implements the sink in a run, timestamps those calls; here only their order is
asserted, never a time."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hwbench.backends.torch_llm import BLOCK_SIZE, Engine, cache_blocks  # noqa: E402
from hwbench.workloads.llama import SIZES, Llama, LlamaConfig, PagedKvCache  # noqa: E402

MICRO = LlamaConfig(vocab=97, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=48,
                    rope_theta=10000.0, max_seq_len=256)


@dataclass(frozen=True)
class Request:
    """The fields of the llm workload's LlmRequest the engine reads."""

    prompt: np.ndarray
    output_tokens: int


class RecordingSink:
    """Records every call in order; ``first_token(id)`` waits until an id has had a token."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.first_values: dict[int, int] = {}  # id -> the first token's reported value
        self._cv = threading.Condition()

    def tokens(self, ids, counts, first=None) -> None:
        assert ids.dtype == np.uint64 and counts.dtype == np.uint32 and len(ids) == len(counts)
        assert first is not None and first.dtype == np.int64 and len(first) == len(ids)
        with self._cv:
            self.events.append(("tokens", ids.tolist(), counts.tolist()))
            for i, c, f in zip(ids.tolist(), counts.tolist(), first.tolist()):
                if c == 1:
                    self.first_values[i] = f
            self._cv.notify_all()

    def complete(self, ids) -> None:
        assert ids.dtype == np.uint64
        with self._cv:
            self.events.append(("complete", ids.tolist()))

    def abort(self, reason: str) -> None:
        with self._cv:
            self.events.append(("abort", reason))
            self._cv.notify_all()

    def wait_first_token(self, rid: int) -> None:
        with self._cv:
            assert self._cv.wait_for(lambda: self.index("tokens", rid) is not None or
                                     self.aborted(), timeout=120)

    def index(self, kind: str, rid: int) -> int | None:
        """The position of the first event of ``kind`` naming ``rid``."""
        for i, e in enumerate(self.events):
            if e[0] == kind and rid in e[1]:
                return i
        return None

    def aborted(self) -> list[str]:
        return [e[1] for e in self.events if e[0] == "abort"]

    def counts(self, rid: int) -> list[int]:
        return [e[2][e[1].index(rid)] for e in self.events if e[0] == "tokens" and rid in e[1]]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _engine(model, *, blocks=64, max_seqs=8, chunk=64) -> Engine:
    cache = PagedKvCache(model.config, blocks, BLOCK_SIZE, dtype=model.dtype, device=model.device)
    return Engine(model, cache, max_seqs=max_seqs, prefill_chunk=chunk)


def _request(n_prompt: int, n_out: int, seed: int, vocab: int = MICRO.vocab) -> Request:
    rng = np.random.default_rng(seed)
    return Request(rng.integers(0, vocab, n_prompt, dtype=np.int64), n_out)


def _serve(engine, sink, keep=True):
    engine.serve(sink, keep)
    return engine


def test_every_request_gets_exactly_its_tokens_and_the_greedy_ones():
    """Batched and chunked serving generates what the model generates alone, token for token."""
    model = Llama.seeded(MICRO, 2)
    reqs = [_request(5 + 13 * i, 3 + 4 * i, i) for i in range(6)]
    sink = RecordingSink()
    engine = _serve(_engine(model, chunk=24), sink)
    try:
        engine.submit(np.arange(100, 103, dtype=np.uint64), reqs[:3])
        engine.submit(np.arange(103, 106, dtype=np.uint64), reqs[3:])
        engine.drain()
        out = engine.outputs()
    finally:
        engine.stop()
    assert not sink.aborted()
    for rid, r in zip(range(100, 106), reqs):
        assert sink.counts(rid) == list(range(1, r.output_tokens + 1))  # one token per call
        assert out[rid].dtype == np.int64
        assert out[rid].tolist() == model.generate(torch.from_numpy(r.prompt), r.output_tokens)
        assert sink.first_values[rid] == out[rid][0]  # the first event carries the first token
    completed = [i for e in sink.events if e[0] == "complete" for i in e[1]]
    assert sorted(completed) == list(range(100, 106))
    for rid in range(100, 106):  # complete comes after the last token call of that id
        last = max(i for i, e in enumerate(sink.events) if e[0] == "tokens" and rid in e[1])
        assert sink.index("complete", rid) > last


def test_a_request_arriving_during_a_decode_gets_its_first_token_before_the_first_finishes():
    model = Llama.seeded(SIZES["tiny"], 1)
    sink = RecordingSink()
    engine = _serve(_engine(model), sink, keep=False)
    try:
        engine.submit(np.array([1], dtype=np.uint64), [_request(32, 200, 1, 4096)])
        sink.wait_first_token(1)  # request 1 is decoding now
        engine.submit(np.array([2], dtype=np.uint64), [_request(32, 4, 2, 4096)])
        engine.drain()
    finally:
        engine.stop()
    assert not sink.aborted()
    assert sink.index("tokens", 2) < sink.index("complete", 1)
    assert sink.index("complete", 2) < sink.index("complete", 1)  # it even finished first
    assert engine.outputs() == {}  # not kept


def test_max_seqs_one_serves_one_request_at_a_time():
    """The contrast: with room for one sequence, the second waits for the first to finish."""
    model = Llama.seeded(MICRO, 1)
    sink = RecordingSink()
    engine = _serve(_engine(model, max_seqs=1), sink)
    try:
        engine.submit(np.array([1, 2], dtype=np.uint64), [_request(8, 20, 1), _request(8, 3, 2)])
        engine.drain()
    finally:
        engine.stop()
    assert sink.index("complete", 1) < sink.index("tokens", 2)


def test_a_full_kv_cache_makes_requests_wait():
    """Each request needs 3 blocks (8 + 40 tokens); a pool of 4 holds one at a time."""
    model = Llama.seeded(MICRO, 1)
    sink = RecordingSink()
    engine = _serve(_engine(model, blocks=4), sink)
    try:
        engine.submit(np.array([1, 2], dtype=np.uint64), [_request(8, 40, 1), _request(8, 40, 2)])
        engine.drain()
    finally:
        engine.stop()
    assert not sink.aborted()
    assert sink.index("complete", 1) < sink.index("tokens", 2)
    assert sink.counts(2) == list(range(1, 41))


@pytest.mark.parametrize("request_, blocks, words", [
    ((250, 10), 64, "max_seq_len"),
    ((100, 100), 8, "kv_cache_mb"),
    ((0, 5), 64, "no prompt"),
])
def test_a_request_that_cannot_run_aborts_the_run_and_releases_drain(request_, blocks, words):
    model = Llama.seeded(MICRO, 1)
    sink = RecordingSink()
    engine = _serve(_engine(model, blocks=blocks), sink)
    try:
        engine.submit(np.array([7], dtype=np.uint64), [_request(*request_, 3)])
        engine.drain()  # returns: the loop failed, it does not hang
    finally:
        engine.stop()
    (reason,) = sink.aborted()
    assert words in reason and "request 7" in reason and "\n" not in reason
    assert engine.failure == reason


def test_a_fault_of_the_model_is_an_abort_with_its_reason():
    """A model whose decode raises (a fake: a device fault cannot be made to happen here)."""
    class Broken(Llama):
        def decode(self, *args, **kwargs):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    model = Broken(MICRO, Llama.seeded(MICRO, 1).weights())
    sink = RecordingSink()
    engine = _serve(_engine(model), sink)
    engine.submit(np.array([3], dtype=np.uint64), [_request(8, 5, 3)])
    engine.drain()
    engine.stop()
    engine.stop()  # idempotent
    (reason,) = sink.aborted()
    assert "RuntimeError" in reason and "illegal memory access" in reason
    assert sink.counts(3) == [1]  # the prefill's token was reported before the fault


class GatedSink(RecordingSink):
    """Holds the serving loop inside its first ``tokens`` call until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def tokens(self, ids, counts, first=None) -> None:
        super().tokens(ids, counts, first)
        self.gate.wait()


def test_stop_ends_a_loop_that_is_still_serving():
    model = Llama.seeded(MICRO, 1)
    sink = GatedSink()
    engine = _serve(_engine(model), sink)
    engine.submit(np.array([1], dtype=np.uint64), [_request(8, 200, 1)])
    sink.wait_first_token(1)  # the loop is held inside its first report
    stopper = threading.Thread(target=engine.stop)
    stopper.start()
    with engine._cv:  # stop has asked the loop to end
        assert engine._cv.wait_for(lambda: engine._stopping, timeout=60)
    sink.gate.set()
    stopper.join(timeout=60)
    assert not stopper.is_alive()
    assert sink.counts(1) == [1] and sink.index("complete", 1) is None and not sink.aborted()


def test_cache_blocks_from_megabytes():
    tiny = SIZES["tiny"]
    per_block = tiny.kv_bytes_per_token(4) * BLOCK_SIZE
    assert cache_blocks(tiny, 64, 4) == (64 << 20) // per_block
    assert cache_blocks(tiny, 64, 2) == 2 * cache_blocks(tiny, 64, 4)


def test_one_engine_serves_pass_after_pass():
    """The harness serves, drains and stops once per pass; each pass starts afresh."""
    model = Llama.seeded(MICRO, 1)
    engine = _engine(model)
    for rid in (1, 2):
        sink = RecordingSink()
        engine.serve(sink, True)
        engine.submit(np.array([rid], dtype=np.uint64), [_request(8, 5, 1)])
        engine.drain()
        engine.stop()
        assert sink.counts(rid) == [1, 2, 3, 4, 5] and list(engine.outputs()) == [rid]
