"""``hwbench audit``: did the system under test do the work it claims? Checks in the spirit of
MLPerf Inference's compliance tests, run on one configuration in one run:

- **caching** (TEST04): Offline passes over the configuration's samples against passes that
  repeat one sample, interleaved in pairs (5, or up to 9 when passes are short, so that each
  kind runs about half a second). A system that answers a repeat from memory runs the
  repeated pass faster; honest work costs the same. FAIL when the repeated pass is more than 10%
  faster on the median of the pairs. It runs first, so that nothing the other checks show the
  system is remembered yet.
- **sampled accuracy** (TEST01): the accuracy pass, then the performance pass keeping its
  outputs; a seeded tenth of the samples (at least 200, or all) must give the same outputs under
  load as in the accuracy pass, within the tolerance of the precision the backend declares.
  Catches a system that skips or approximates work when it is busy.
- **alternate seeds** (TEST05), last: performance passes with the configured sample and schedule seeds
  against passes with other seeds, interleaved in pairs after one unmeasured pass of the
  configured seeds. The median of the alternate passes must fall inside the 95% prediction
  interval of one more pass with the configured seeds (at least +-3% wide). Catches a system
  tuned to the published seed: its sample set, its order or its arrival times.

Generative workloads (``llm``) are audited by MLPerf's TEST06 instead, with TEST05:

- **prefix caching** (hwbench's TEST04 for LLMs), first: SingleStream passes whose requests all
  repeat one prompt against passes of fresh prompts, all of one prompt length and one output
  length, interleaved in pairs (at least 3). A system that caches prefixes answers a repeated
  prompt's first token sooner; honest prefill costs the same. FAIL when the repeated passes'
  median TTFT is more than 10% below the unique passes' (median of the pairs' ratios).
- **first token** (TEST06): the performance pass in the configured scenario, keeping its
  outputs; for every request of its window, the first token's value that the token event
  reported must equal the first token of the request's output, and the token count reported
  must equal the output's length.
- **alternate seeds** (TEST05), last, as above with the scenario's token figure: tokens per
  second in Offline, TTFT at the scenario's percentile elsewhere.

Caching (TEST04) and sampled accuracy (TEST01) do not apply to a generative run: its samples are
prompts whose answers are token sequences, cached per prefix (the prefix caching check), and the
first token check compares every request's stream with its output, not a sample of them; the
result says so in ``audit.not_applicable``.

Each check records PASS or FAIL with its evidence in the result's ``audit`` section, and the
command exits 6 when one fails.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

import numpy as np

from hwbench.artifacts import flat_values
from hwbench.harness.loadgen import Scenario
from hwbench.harness.samples import RequestLibrary
from hwbench.passes import checks
from hwbench.passes.run import OFFLINE_CALIBRATION_MARGIN, OFFLINE_SAMPLE_CAP, Run
from hwbench.results.spread import t95

CACHE_TOLERANCE = 0.10   # a repeated pass may be this much faster than unique work, no more
CACHE_PAIRS = 5          # interleaved pairs at least, judged on the median (machines are noisy)
CACHE_MAX_PAIRS = 9      # more pairs when passes are short, until each kind has run CACHE_TOTAL_S
CACHE_TOTAL_S = 0.5
CACHE_PASS_S = 0.5       # the length each pass is sized for, from a calibration
SAMPLED_FRACTION = 0.1   # of the samples both passes computed
SAMPLED_MIN = 200
# The largest difference between an output under load and the accuracy pass's, as a fraction of
# the accuracy outputs' scale, by the precision the backend declares: the same computation,
# batched differently, rounds differently in the last bits of that precision.
TOLERANCE = {"fp32": 1e-4, "tf32": 5e-3, "fp16": 5e-3, "bf16": 3e-2, "int8": 1e-1, "none": 0.0}
SEED_PAIRS = 3           # configured-seed and alternate-seed passes, interleaved
SEED_MIN_HALF_WIDTH = 0.03  # the prediction interval is at least this wide each side (noise)
SEED_STRIDE = 7919       # alternate seed k is the configured seed + SEED_STRIDE * k
PREFIX_TOLERANCE = 0.10  # a repeated prompt's TTFT may be this much lower than a fresh one's
PREFIX_PAIRS = 3         # interleaved pairs, judged on the median of their ratios
PREFIX_PASS_S = 0.3      # the length each pass is sized for, from a calibration pass
PREFIX_MIN_REQUESTS = 8
PREFIX_MAX_REQUESTS = 64
PREFIX_OUTPUT_TOKENS = 4  # every audit request's output length (at most the workload's median)
NOT_APPLICABLE_TO_LLM = [
    {"name": "caching (TEST04)",
     "reason": "a generative run's repeats are prompts: the prefix caching check times them"},
    {"name": "sampled accuracy (TEST01)",
     "reason": "the first token check compares every request's stream with its output"}]


def audit_passes(run: Run) -> None:
    """The passes of ``hwbench audit`` (in place of those ``--mode`` asks for). A generative
    workload's audit checks prefix caching and the first token (TEST06) where an image
    workload's checks caching (TEST04) and sampled accuracy (TEST01); both end with alternate
    seeds (TEST05)."""
    generative = run.workload.generative
    found = [prefix_caching(run) if generative else caching(run)]
    # A generative run's accuracy pass (every request of the set) only when there is accuracy to
    # judge: with synthetic weights there is none, and the result says why (Run's accuracy_note).
    if not run.stopped() and not (generative
                                  and run.workload.accuracy_unavailable() is not None):
        run.accuracy()
    qps = 1.0
    if not run.stopped():
        qps = run.server_qps() if run.spec.loadgen_scenario == "Server" else 1.0
        out = run.performance(target_qps=qps, keep_outputs=True)
        run.doc["invalid_reasons"] += list(out["summary"].invalid_reasons)
        found.append(first_token(out["records"], run.performance_outputs or {}) if generative
                     else sampled_accuracy(run))
    if not run.stopped():
        checks.fidelity(run)
    # Last: its passes show the system the samples the accuracy pass must see first.
    if not run.stopped():
        found.append(alternate_seeds(run, qps))
    run.doc["audit"] = {"passed": all(c["passed"] for c in found), "checks": found,
                        "not_applicable": list(NOT_APPLICABLE_TO_LLM) if generative else []}


class AuditRequests(RequestLibrary):
    """The prefix caching check's requests: all of one prompt length and one output length;
    every request gets a fresh prompt (``n`` drawn from ``rng`` beforehand, so that drawing
    them costs nothing while the pass is timed), or all of them ``repeated``."""

    def __init__(self, run: Run, template: Any, length: int, output_tokens: int,
                 rng: np.random.Generator, repeated: np.ndarray | None, n: int) -> None:
        super().__init__(run.workload)
        self._template, self._length, self._out = template, length, output_tokens
        self._rng, self._repeated = rng, repeated
        self._vocab = int(run.workload.config().vocab)
        self._fresh = [] if repeated is not None else [self._draw() for _ in range(n)]

    def _draw(self) -> np.ndarray:
        return self._rng.integers(0, self._vocab, self._length, dtype=np.int64)

    def load(self, indices: np.ndarray) -> None:
        pass  # made as they are asked for

    def unload(self, indices: np.ndarray) -> None:
        pass

    def requests(self, indices: np.ndarray) -> list:
        return [dataclasses.replace(
            self._template, output_tokens=self._out,
            prompt=(self._repeated if self._repeated is not None
                    else self._fresh.pop() if self._fresh else self._draw()))
            for _ in range(len(indices))]


def prefix_caching(run: Run) -> dict[str, Any]:
    """A pass repeating one prompt must not get its first tokens more than 10% sooner than
    passes of fresh prompts of the same lengths."""
    name = "prefix caching (TEST06)"
    sample = run.workload.load_requests(np.arange(min(64, run.workload.sample_count())))
    length = int(statistics.median(len(r.prompt) for r in sample))
    out_tokens = max(1, min(PREFIX_OUTPUT_TOKENS,
                            int(statistics.median(r.output_tokens for r in sample))))
    vocab = int(run.workload.config().vocab)
    rng = np.random.default_rng([run.cfg.seed, 0x7E06])  # prompts the workload never holds
    repeated = rng.integers(0, vocab, length, dtype=np.int64)

    def one(kind: str, n: int, label: str) -> tuple[float, float] | None:
        s = run.loadgen_settings()
        s.scenario = Scenario.SingleStream  # one request at a time: TTFT is the prefill's
        s.min_duration_s, s.warmup_s, s.warmup_queries, s.max_query_count = 0.0, 0.0, 0, 0
        s.min_query_count = n
        library = run.library
        run.library = AuditRequests(run, sample[0], length, out_tokens, rng,
                                    repeated if kind == "repeated" else None, n)
        try:
            out, _ = run.loadgen_pass(s, f"audit: prefix caching, {label}")
        finally:
            run.library = library
        if out["errors"] or run.stopped() or not out["summary"].has_tokens:
            return None
        return out["summary"].ttft.p50 / 1e6, out["summary"].duration_s

    got = one("unique", PREFIX_MIN_REQUESTS, "calibration")
    if got is None:
        return _check(name, False, {"error": "the calibration pass did not complete"})
    per_request = got[1] / PREFIX_MIN_REQUESTS
    n = max(PREFIX_MIN_REQUESTS,
            min(PREFIX_MAX_REQUESTS, int(PREFIX_PASS_S / max(per_request, 1e-6))))
    pairs: list[dict[str, float]] = []
    for i in range(PREFIX_PAIRS):
        order = ("unique", "repeated") if i % 2 == 0 else ("repeated", "unique")
        pair: dict[str, float] = {}
        for kind in order:
            got = one(kind, n, f"{kind}, pair {i + 1}")
            if got is None:
                return _check(name, False, {"error": "an audit pass did not complete"})
            pair[kind] = got[0]
        pairs.append(pair)
    ratios = [p["repeated"] / p["unique"] for p in pairs if p["unique"] > 0]
    median = statistics.median(ratios) if ratios else 0.0
    return _check(name, median >= 1 - PREFIX_TOLERANCE, {
        "requests_per_pass": n, "prompt_tokens": length, "output_tokens": out_tokens,
        "pairs_ttft_p50_ms": pairs, "ratios": ratios, "median_ttft_ratio": median,
        "limit": 1 - PREFIX_TOLERANCE,
        "rule": "repeated-prompt TTFT p50 / fresh-prompt TTFT p50, median of interleaved "
                "SingleStream pairs, must not fall below the limit"})


def first_token(records: dict[str, np.ndarray], outputs: dict[int, np.ndarray]
                ) -> dict[str, Any]:
    """TEST06: for every completed request of the window, the first token its event reported
    is its output's first token, and the token count reported is the output's length."""
    name = "first token (TEST06)"
    if "token_count" not in records:
        return _check(name, False, {"error": "the performance pass reported no token"})
    done = np.flatnonzero(records["complete_ns"] != 0)
    index, count = records["index"], records["token_count"]
    value = records["first_token_value"]
    missing, unreported, wrong_first, wrong_count = 0, 0, [], []
    for row in done.tolist():
        out = outputs.get(int(index[row]))
        if out is None or len(out) == 0:
            missing += 1
            continue
        if int(value[row]) == -1:
            unreported += 1
        elif int(value[row]) != int(out[0]):
            wrong_first.append({"sample": int(index[row]), "reported": int(value[row]),
                                "output": int(out[0])})
        if int(count[row]) != len(out):
            wrong_count.append({"sample": int(index[row]), "reported": int(count[row]),
                                "output": len(out)})
    checked = len(done) - missing
    passed = checked > 0 and not (missing or unreported or wrong_first or wrong_count)
    return _check(name, passed, {
        "requests_checked": checked, "without_output": missing,
        "first_token_not_reported": unreported, "first_token_mismatched": len(wrong_first),
        "count_mismatched": len(wrong_count), "examples": (wrong_first + wrong_count)[:10],
        "rule": "every completed request: the first token its first event reported equals its "
                "output's first token, and its last reported count equals the output's length"})


def caching(run: Run) -> dict[str, Any]:
    """TEST04: a pass that repeats one sample must not beat unique work by more than 10%."""
    population = run.loadgen_settings().performance_sample_count
    name = "caching (TEST04)"

    def one(kind: str, n: int, pair: int) -> tuple[float, float] | None:
        s = run.loadgen_settings()
        s.scenario = Scenario.Offline
        s.min_duration_s, s.warmup_s, s.warmup_queries, s.max_query_count = 0.0, 0.0, 0, 0
        s.min_query_count = n
        s.sample_seed = run.cfg.seed + 1000 * (pair + 1)  # another subset and order each pair
        s.performance_sample_count = 1 if kind == "repeated" else population
        label = f"audit: caching, {kind}" + (f", pair {pair + 1}" if pair >= 0 else "")
        out, _ = run.loadgen_pass(s, label)
        if out["errors"] or run.stopped():
            return None
        return out["summary"].samples_per_second, out["summary"].duration_s

    # Sized on the repeated sample alone, so that no other sample is shown to the system first.
    n = 8
    while True:
        got = one("repeated", n, -1)
        if got is None:
            return _check(name, False, {"error": "the calibration pass did not complete"})
        if got[1] >= 0.2 or n >= (1 << 20):
            break
        n *= 8
    # At most a quarter of the samples per pass: every unique pass shows the system samples it
    # may remember, and the sampled accuracy check then needs some it has never seen.
    n = max(8, min(population // 4, int(got[0] * CACHE_PASS_S)))
    pairs: list[dict[str, float]] = []
    want = CACHE_PAIRS
    while len(pairs) < want:
        i = len(pairs)
        order = ("unique", "repeated") if i % 2 == 0 else ("repeated", "unique")
        pair: dict[str, float] = {}
        for kind in order:
            got = one(kind, n, i)
            if got is None:
                return _check(name, False, {"error": "an audit pass did not complete"})
            pair[kind] = got[0]
            if i == 0 and kind == "unique":  # short passes: more pairs, so noise averages out
                want = min(CACHE_MAX_PAIRS,
                           max(CACHE_PAIRS, math.ceil(CACHE_TOTAL_S / max(got[1], 1e-3))))
        pairs.append(pair)
    ratios = [p["repeated"] / p["unique"] for p in pairs if p["unique"] > 0]
    median = statistics.median(ratios) if ratios else float("inf")
    return _check(name, median <= 1 + CACHE_TOLERANCE, {
        "samples_per_pass": n, "pairs": pairs, "ratios": ratios, "median_ratio": median,
        "limit": 1 + CACHE_TOLERANCE,
        "rule": "repeated-sample throughput / unique-sample throughput, median of interleaved "
                "pairs, must not exceed the limit"})


def alternate_seeds(run: Run, qps: float) -> dict[str, Any]:
    """TEST05: passes with other seeds land inside the configured seeds' prediction interval."""
    name = "alternate seeds (TEST05)"
    s = run.loadgen_settings(target_qps=qps)
    offline = s.scenario == Scenario.Offline
    if offline:
        s.offline_expected_qps = OFFLINE_CALIBRATION_MARGIN * run.calibrate()
        s.max_query_count = s.max_query_count or OFFLINE_SAMPLE_CAP
    base = (s.sample_seed, s.schedule_seed)
    tokens = run.workload.generative
    pct = f"p{s.target_latency_percentile * 100:g}"
    metric = (("tokens_per_second" if tokens else "samples_per_second") if offline
              else f"{pct}_ttft_ms" if tokens else f"{pct}_latency_ms")

    def one(k: int, label: str) -> float | None:
        s.sample_seed, s.schedule_seed = (base[0] + SEED_STRIDE * k, base[1] + SEED_STRIDE * k)
        out, _ = run.loadgen_pass(s, f"audit: alternate seeds, {label}")
        if out["errors"] or run.stopped():
            return None
        m = out["summary"]
        if tokens:
            return m.tokens_per_second if offline else m.percentile_ttft_ns / 1e6
        return m.samples_per_second if offline else m.percentile_latency_ns / 1e6

    if one(0, "unmeasured pass of the configured seeds") is None:
        return _check(name, False, {"error": "an audit pass did not complete"})
    configured: list[float] = []
    alternate: list[float] = []
    for i in range(SEED_PAIRS):
        order = ((0, configured), (i + 1, alternate))
        for k, into in (order if i % 2 == 0 else order[::-1]):
            got = one(k, "configured seeds" if k == 0 else f"seed set {k}")
            if got is None:
                return _check(name, False, {"error": "an audit pass did not complete"})
            into.append(got)
    passed, evidence = judge_seeds(configured, alternate)
    evidence.update(metric=metric, alternate_seeds=[
        [base[0] + SEED_STRIDE * k, base[1] + SEED_STRIDE * k] for k in range(1, SEED_PAIRS + 1)])
    return _check(name, passed, evidence)


def judge_seeds(configured: list[float], alternate: list[float]) -> tuple[bool, dict[str, Any]]:
    """TEST05's verdict on the passes' figures: the alternate passes' median inside the
    configured passes' prediction interval."""
    low, high = prediction_interval(configured)
    median = statistics.median(alternate)
    return low <= median <= high, {
        "configured": configured, "alternate": alternate, "alternate_median": median,
        "interval": [low, high],
        "rule": "the median of the alternate-seed passes must lie inside the 95% prediction "
                "interval of one more configured-seed pass (Student t, at least "
                f"+-{SEED_MIN_HALF_WIDTH:.0%} of their mean)"}


def prediction_interval(values: list[float]) -> tuple[float, float]:
    """Where one more value of the same process falls with 95% probability (Student t: mean
    +- t * sd * sqrt(1 + 1/n)), widened to at least SEED_MIN_HALF_WIDTH of the mean each side."""
    n, mean = len(values), statistics.fmean(values)
    sd = statistics.stdev(values) if n > 1 else 0.0
    half = max(t95(n - 1) * sd * math.sqrt(1 + 1 / n), SEED_MIN_HALF_WIDTH * abs(mean))
    return mean - half, mean + half


def sampled_accuracy(run: Run) -> dict[str, Any]:
    """TEST01: outputs kept under load equal the accuracy pass's for the same samples."""
    acc, perf = run.accuracy_outputs or {}, run.performance_outputs or {}
    common = sorted(set(acc) & set(perf))
    name = "sampled accuracy (TEST01)"
    if not common:
        return _check(name, False, {"error": "no sample was computed in both passes"})
    rng = np.random.default_rng([run.cfg.seed, 101])
    k = min(len(common), max(SAMPLED_MIN, int(SAMPLED_FRACTION * len(common))))
    chosen = sorted(rng.choice(common, size=k, replace=False).tolist())
    # Every output of a model of several, as one vector per sample.
    ref = np.stack([flat_values(acc[i]) for i in chosen])
    got = np.stack([flat_values(perf[i]) for i in chosen])
    scale = float(np.max(np.abs(ref))) or 1.0
    err = np.max(np.abs(got - ref).reshape(k, -1), axis=1) / scale
    declared = str((run.doc.get("backend_info") or {}).get("precision") or "fp32")
    tol = next((v for key, v in TOLERANCE.items() if declared.startswith(key)), TOLERANCE["fp32"])
    bad = [int(i) for i, e in zip(chosen, err) if e > tol]
    return _check(name, not bad, {
        "samples_compared": k, "samples_in_both": len(common), "declared_precision": declared,
        "tolerance": tol, "max_error": float(err.max()), "mismatched": len(bad),
        "mismatched_examples": bad[:10],
        "rule": "max |performance - accuracy| per sample / max |accuracy output| <= tolerance"})


def _check(name: str, passed: bool, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "evidence": evidence}
