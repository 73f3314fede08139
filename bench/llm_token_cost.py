"""What token timing costs the harness, against what a token costs the tiny Llama model.

1. The load generator's cost per token event: the null backend's compiled pacer (the one
   ``--backend null --backend-opt token_us=0`` uses) serves N requests of T tokens, every token
   due at once, so the run is nothing but token events (``LoadGen::tokens``, one call per step for
   every request) and completions. The same N requests with 1 token each give the per-request
   part; the difference, over N (T - 1) events, is the cost of one token event. A run of N
   completions with no token event at all (a SUT that completes in the same batches) is the
   non-token path, for the ratio. Durations are the load generator's own (first issue to last
   completion).
2. The tiny model's time per token: one decode step of ``hwbench.workloads.llama``'s tiny model
   (seeded weights, torch on the CPU) for a batch of B sequences, per token (step / B).

3. With ``--baseline-so PATH`` (another build's ``_loadgen*.so``, e.g. main's
   ``build/cp311-*/_loadgen*.so``): the path without token events in both builds, each in its own
   process, rounds alternating: SingleStream queries of a SUT that completes inline, per second
   (the issue thread, the sample log and the callback, per query). Ratio this / baseline.

Figures: ns per token event, ns per completion without tokens, their ratio, and the harness's
share of a token of the tiny model (harness ns per event / model ns per token), as ratios measured
in the same run. The tiny model runs on one thread by default: on a shared two-core machine two
torch threads spin against each other and a step takes tens of milliseconds.

    python -P bench/llm_token_cost.py                   # a minute or so
    python -P bench/llm_token_cost.py --requests 4000 --tokens 256 --rounds 5
    python -P bench/llm_token_cost.py --baseline-so ../main/build/cp311-cp311-linux_x86_64/_loadgen.cpython-311-x86_64-linux-gnu.so
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from hwbench.harness import loadgen as lgm


class _Library:
    def load(self, indices):
        pass

    def unload(self, indices):
        pass


class _PacedSut:
    """Submits every issued request to the compiled pacer (prefill 0, token 0)."""

    def __init__(self, lg, tokens: int) -> None:
        self.pacer = lgm.TokenPacer(lg, 0, 0, 0)
        self.tokens = tokens

    def issue(self, ids, indices):
        self.pacer.submit(ids, np.full(len(ids), self.tokens, np.uint32))

    def flush(self):
        self.pacer.drain()


class _PlainSut:
    """Completes every issued sample in one call: the path without token events."""

    def __init__(self, lg) -> None:
        self.lg = lg

    def issue(self, ids, indices):
        self.lg.complete(ids)

    def flush(self):
        pass


def _offline(n: int) -> lgm.Settings:
    s = lgm.Settings()
    s.scenario = lgm.Scenario.Offline
    s.min_duration_s, s.min_query_count, s.max_query_count = 0.0, n, n
    s.total_sample_count = s.performance_sample_count = 1024
    s.offline_expected_qps = 1.0
    return s


def _duration(make_sut, n: int) -> float:
    lg = lgm.LoadGen()
    sut = make_sut(lg)
    out = lg.run(sut, _Library(), _offline(n))
    if hasattr(sut, "pacer"):
        sut.pacer.stop()
    assert not out["errors"], out["errors"]
    return out["summary"].duration_s


def harness_costs(n: int, tokens: int, rounds: int) -> dict:
    many, one, plain = [], [], []
    for _ in range(rounds):  # interleaved, so a noisy neighbour hits all three alike
        many.append(_duration(lambda lg: _PacedSut(lg, tokens), n))
        one.append(_duration(lambda lg: _PacedSut(lg, 1), n))
        plain.append(_duration(_PlainSut, n))
    t_many, t_one, t_plain = (statistics.median(x) for x in (many, one, plain))
    per_event = (t_many - t_one) / (n * (tokens - 1)) * 1e9
    return {"requests": n, "tokens": tokens, "rounds": rounds,
            "run_s": {"tokens": t_many, "one_token": t_one, "no_token_events": t_plain},
            "ns_per_token_event": per_event,
            "ns_per_request_one_token": t_one / n * 1e9,
            "ns_per_completion_no_tokens": t_plain / n * 1e9}


def model_costs(batches: list[int], steps: int, threads: int) -> dict:
    import torch

    from hwbench.workloads import llama

    torch.set_num_threads(threads)
    cfg = llama.SIZES["tiny"]
    model = llama.Llama.seeded(cfg, 1)
    out = {}
    for b in batches:
        ctx = 128  # every sequence has 128 tokens in the cache
        blocks_per = (ctx + steps + 3 + 15) // 16
        cache = llama.PagedKvCache(cfg, b * blocks_per, 16, dtype=torch.float32,
                                   device=torch.device("cpu"))
        table = torch.stack([cache.slots(list(range(i * blocks_per, (i + 1) * blocks_per)),
                                         ctx + steps + 3) for i in range(b)])
        tok = torch.zeros(b, dtype=torch.long)
        times = []
        for s in range(steps + 3):
            pos = torch.full((b,), ctx + s, dtype=torch.long)
            t0 = time.perf_counter()
            model.decode(tok, pos, cache, table)
            if s >= 3:  # the first steps warm the allocator
                times.append(time.perf_counter() - t0)
        step = statistics.median(times)
        out[str(b)] = {"step_ms": step * 1e3, "ns_per_token": step / b * 1e9}
    return {"size": "tiny", "threads": threads, "context": 128, "batches": out,
            "torch": torch.__version__}


# Runs in a fresh process against one build of the compiled load generator: SingleStream
# queries per second of a SUT that completes inline (no token events).
_PLAIN_RATE = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("_loadgen", sys.argv[1])
L = importlib.util.module_from_spec(spec); spec.loader.exec_module(L)
class Lib:
    def load(self, i): pass
    def unload(self, i): pass
class Sut:
    def __init__(self, lg): self.c = lg.complete
    def issue(self, ids, idx): self.c(ids)
    def flush(self): pass
s = L.Settings(); s.scenario = L.Scenario.SingleStream; s.min_duration_s = 0.0
s.min_query_count = s.max_query_count = int(sys.argv[2]); s.early_stopping = False
s.total_sample_count = s.performance_sample_count = 1024
lg = L.LoadGen(); out = lg.run(Sut(lg), Lib(), s)
print(json.dumps(out["summary"].queries_per_second))
"""


def plain_path(baseline_so: str, queries: int, rounds: int) -> dict:
    from hwbench import _loadgen

    builds = {"this": _loadgen.__file__, "baseline": baseline_so}
    rates: dict[str, list[float]] = {k: [] for k in builds}
    for r in range(rounds):
        for name in (list(builds) if r % 2 == 0 else list(builds)[::-1]):
            out = subprocess.run([sys.executable, "-c", _PLAIN_RATE, builds[name], str(queries)],
                                 capture_output=True, text=True, check=True)
            rates[name].append(float(out.stdout))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {"queries": queries, "rounds": rounds, "baseline_so": baseline_so,
            "single_stream_qps": med, "this_over_baseline": med["this"] / med["baseline"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", default="1,16", help="decode batch sizes of the tiny model")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the tiny model")
    ap.add_argument("--baseline-so", help="another build's _loadgen .so: compare the path "
                    "without token events")
    ap.add_argument("--plain-queries", type=int, default=100000)
    args = ap.parse_args()
    h = harness_costs(args.requests, args.tokens, args.rounds)
    try:
        m = model_costs([int(b) for b in args.batches.split(",")], args.steps, args.threads)
    except ImportError as exc:  # torch is the torch extra's
        m = {"unavailable": f"{exc}: pip install '.[torch]'"}
    share = {b: h["ns_per_token_event"] / v["ns_per_token"]
             for b, v in (m.get("batches") or {}).items()}
    report = {"machine": platform.machine(), "python": platform.python_version(),
              "harness": h, "tiny_model": m,
              "token_event_vs_completion": h["ns_per_token_event"] / h["ns_per_completion_no_tokens"],
              "harness_share_of_a_tiny_token": share}
    if args.baseline_so:
        report["no_token_path"] = plain_path(args.baseline_so, args.plain_queries,
                                             max(args.rounds, 4))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
