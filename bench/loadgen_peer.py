"""hwbench's load generator against the MLCommons LoadGen, side by side, on one machine.

Three figures, each measured for both harnesses in the same command, alternating their order:

1. Server peak: the highest target QPS at which a null system under test (completes every sample
   at once) stays valid under a p99 latency bound. hwbench runs its whole pipeline (`hwbench run
   --backend null`: sample gathering, backend call, completion); MLCommons runs its Python null SUT
   both by default (`ConstructSUT`) and at its best (`ConstructFastSUT`, coalesced queries, no
   trace). Two like-for-like comparisons: `hwbench` completes every coalesced set of samples in
   one backend call (a batch size larger than any set) against MLCommons' FastSUT with
   coalescing, and `hwbench-batch1` makes one backend call per sample against MLCommons' default
   SUT (one Python call per query). Each is also shown against the better of the peer's two.
2. SingleStream per-query overhead: p50 and p99 query latency with the same null system under test.
3. Analysis: the time from the last query of a run with about a million samples to the harness
   returning its verdict; and hwbench's `analyze` on 1,000,000 samples on its own.

Every run is its own process, so one harness's state never leaks into the other's.

    pip install '.[bench]'
    python bench/loadgen_peer.py                 # about 15 minutes on 2 cores
    python bench/loadgen_peer.py --rounds 1 --duration 2   # a quick look

Requires `mlcommons-loadgen` (the `bench` extra). Writes a JSON record with --json-out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HW = "hwbench"            # `hwbench run --backend null`, each issued set of samples in one call
HW_B1 = "hwbench-batch1"  # the same with --batch-size 1: one backend call per sample
MLC_DEFAULT = "mlcommons-default"
MLC_FAST = "mlcommons-fast"
KINDS = (HW, HW_B1, MLC_DEFAULT, MLC_FAST)
HW_LG = "hwbench-loadgen"  # SingleStream: the load generator alone with the peer's minimal SUT
N_SAMPLES = 1024


# --------------------------------------------------------------------------- workers (subprocess)

def _mlc_worker(kind: str, scenario: str, qps: float, duration: float, bound_ms: float,
                min_queries: int) -> dict:
    import mlperf_loadgen as lg

    last_issue, count = [0.0], [0]
    if kind == MLC_FAST:
        def issue_fast(ids, indices):
            last_issue[0] = time.perf_counter()
            count[0] += len(ids)
            lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])
        sut = lg.ConstructFastSUT(issue_fast, lambda: None)
    else:
        def issue(samples):
            last_issue[0] = time.perf_counter()
            count[0] += len(samples)
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in samples])
        sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(N_SAMPLES, N_SAMPLES, lambda i: None, lambda i: None)
    ts = lg.TestSettings()
    ts.scenario = lg.TestScenario.Server if scenario == "server" else lg.TestScenario.SingleStream
    ts.mode = lg.TestMode.PerformanceOnly
    ts.server_target_qps = qps
    ts.server_target_latency_ns = int(bound_ms * 1e6)
    ts.server_coalesce_queries = kind == MLC_FAST
    ts.single_stream_expected_latency_ns = 2_000  # enough generated queries for the duration
    ts.min_duration_ms = int(duration * 1000)
    ts.min_query_count = min_queries
    log = lg.LogSettings()
    with tempfile.TemporaryDirectory() as outdir:
        log.log_output.outdir = outdir
        log.log_output.copy_summary_to_stdout = False
        if kind == MLC_FAST:
            log.enable_trace = False
        t0 = time.perf_counter()
        lg.StartTestWithLogSettings(sut, qsl, ts, log)
        t_end = time.perf_counter()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        summary = Path(outdir, "mlperf_log_summary.txt").read_text()

    def field(name: str) -> float | None:
        m = re.search(re.escape(name) + r"\s*:\s*([\d.]+)", summary)
        return float(m.group(1)) if m else None

    return {
        "valid": re.search(r"Result is : (\w+)", summary).group(1) == "VALID",
        "samples": count[0],
        "p50_ms": (field("50.00 percentile latency (ns)") or 0) / 1e6,
        "p99_ms": (field("99.00 percentile latency (ns)") or 0) / 1e6,
        "wall_s": t_end - t0,
        "post_run_s": t_end - last_issue[0],
    }


def _hw_cli_worker(scenario: str, qps: float, duration: float, bound_ms: float,
                   min_queries: int, batch: int) -> dict:
    """The whole `hwbench run` pipeline, exactly as a user runs it."""
    exe = Path(sys.executable).with_name("hwbench")
    with tempfile.TemporaryDirectory() as out:
        args = [str(exe), "run", "--workload", "tiny", "--backend", "null", "--scenario", scenario,
                "--duration", str(duration), "--warmup", "0.5", "--min-queries", str(min_queries),
                "--batch-size", str(batch), "--json", "--quiet", "--output", out]
        if scenario == "server":
            args += ["--target-qps", str(qps), "--latency-bound-ms", str(bound_ms)]
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"hwbench run failed ({proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    lat = doc["metrics"]["latency_ms"]
    return {"valid": doc["valid"], "reasons": doc["invalid_reasons"], "p50_ms": lat["p50"],
            "p99_ms": lat["p99"], "wall_s": wall}


class _MinimalSut:
    """The peer's null SUT, in hwbench's interface: completes every sample at once. Also a
    sample library with nothing to load. Records when the last issue arrived."""

    def __init__(self, gen) -> None:
        self._complete = gen.complete
        self.last_issue = 0.0

    def issue(self, ids, indices) -> None:
        self.last_issue = time.perf_counter()
        self._complete(ids)

    def flush(self) -> None:
        pass

    def load(self, indices) -> None:
        pass

    def unload(self, indices) -> None:
        pass


def _hw_loadgen_ss_worker(duration: float, min_queries: int) -> dict:
    """SingleStream through the load generator alone, with the same minimal SUT as the peer's."""
    from hwbench.harness import loadgen as lgm

    gen = lgm.LoadGen()
    sut = _MinimalSut(gen)
    s = lgm.Settings()
    s.scenario, s.mode = lgm.Scenario.SingleStream, lgm.Mode.Performance
    s.min_duration_s, s.min_query_count = duration, min_queries
    s.total_sample_count = s.performance_sample_count = N_SAMPLES
    s.warmup_s = 0.5
    m = gen.run(sut, sut, s)["summary"]
    return {"valid": bool(m.valid), "p50_ms": m.latency.p50 / 1e6, "p99_ms": m.latency.p99 / 1e6,
            "queries": int(m.completed_queries)}


def _hw_analysis_worker(qps: float, duration: float, bound_ms: float) -> dict:
    """The load generator on its own, a Python null SUT, timed from the last issue to the verdict."""
    import numpy as np
    from hwbench.harness import loadgen as lgm

    gen = lgm.LoadGen()
    sut = _MinimalSut(gen)
    s = lgm.Settings()
    s.scenario, s.mode = lgm.Scenario.Server, lgm.Mode.Performance
    s.server_target_qps, s.latency_bound_s = qps, bound_ms / 1e3
    s.min_duration_s, s.min_query_count = duration, 1000
    s.total_sample_count = s.performance_sample_count = N_SAMPLES
    s.warmup_s, s.warmup_queries = 0.0, 0
    out = gen.run(sut, sut, s)
    t_end = time.perf_counter()
    n = int(out["summary"].completed_samples)

    # analyze() alone, on exactly 1,000,000 synthetic samples (best of three).
    rng = np.random.default_rng(1)
    m = 1_000_000
    issue = np.cumsum(rng.integers(1_000, 3_000, m)).astype(np.int64)
    records = {"index": (np.arange(m) % N_SAMPLES).astype(np.uint64),
               "query": np.arange(m, dtype=np.uint64), "issue_ns": issue,
               "complete_ns": issue + rng.integers(10_000, 5_000_000, m)}
    s.early_stopping = True
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        lgm.analyze(s, **records, start_ns=int(issue[0]))
        times.append(time.perf_counter() - t0)
    return {"samples": n, "post_run_s": t_end - sut.last_issue, "analyze_1m_s": min(times),
            "valid": bool(out["summary"].valid)}


# --------------------------------------------------------------------------- driver

def _spawn(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "_worker", *args], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _one(kind: str, scenario: str, qps: float, a: argparse.Namespace) -> dict:
    return _spawn(kind, scenario, repr(qps), repr(a.duration), repr(a.bound_ms),
                  str(a.min_queries))


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def server_peak(kind: str, a: argparse.Namespace) -> tuple[float, list]:
    """Doubles the target QPS until a run is invalid, then bisects to `a.precision`. A step
    counts as invalid only if a second run at the same QPS is invalid too."""
    steps, lo, hi, qps = [], None, None, a.start_qps
    while hi is None or lo is None or hi / lo > 1 + a.precision:
        r = _one(kind, "server", qps, a)
        if not r["valid"]:  # a shared machine hiccups: an invalid step must repeat to count
            r = _one(kind, "server", qps, a)
        steps.append((qps, r["valid"]))
        _say(f"  {kind:18s} {qps:>12,.0f} QPS  {'valid' if r['valid'] else 'INVALID'}")
        if r["valid"]:
            lo = qps
        else:
            hi = qps
        if lo is None and qps < 100:
            break
        if hi is None and qps >= a.max_qps:
            _say(f"  {kind:18s} valid at the search cap of {a.max_qps:,.0f} QPS: stopping there")
            break
        qps = qps * 2 if hi is None else qps / 2 if lo is None else (lo * hi) ** 0.5
    return (lo or 0.0), steps


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        kind, scenario, qps, duration, bound, minq = argv[1:7]
        if kind == HW_LG:
            r = _hw_loadgen_ss_worker(float(duration), int(minq))
        elif kind == "hwbench-analysis":
            r = _hw_analysis_worker(float(qps), float(duration), float(bound))
        elif kind in (HW, HW_B1):
            r = _hw_cli_worker(scenario, float(qps), float(duration), float(bound), int(minq),
                               1 if kind == HW_B1 or scenario != "server" else 1 << 20)
        else:
            r = _mlc_worker(kind, scenario, float(qps), float(duration), float(bound), int(minq))
        print(json.dumps(r))
        return 0

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="repeats of every figure (default 3)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    p.add_argument("--bound-ms", type=float, default=10.0, help="Server p99 bound (default 10)")
    p.add_argument("--min-queries", type=int, default=1000)
    p.add_argument("--start-qps", type=float, default=50_000.0)
    p.add_argument("--precision", type=float, default=0.05, help="bisection stops at this ratio")
    p.add_argument("--max-qps", type=float, default=3_200_000.0,
                   help="stop searching upward once valid here (the peak is then at least this)")
    p.add_argument("--skip", action="append", default=[], choices=["server", "single-stream",
                                                                      "analysis"])
    p.add_argument("--json-out", help="write every figure and step here")
    a = p.parse_args(argv)

    try:
        import mlperf_loadgen  # noqa: F401
    except ImportError:
        print("loadgen_peer: the MLCommons LoadGen is missing: pip install '.[bench]'",
              file=sys.stderr)
        return 2
    from importlib.metadata import version

    import hwbench

    record: dict = {"machine": {"cpu": platform.processor() or platform.machine(),
                                "cores": os.cpu_count(), "python": platform.python_version()},
                    "versions": {"hwbench": hwbench.__version__,
                                 "mlcommons-loadgen": version("mlcommons-loadgen")},
                    "command": " ".join(["python", "bench/loadgen_peer.py", *argv]),
                    "args": vars(a), "server": {}, "single_stream": {}, "analysis": []}
    order = list(KINDS)
    for rnd in range(a.rounds):
        _say(f"round {rnd + 1}/{a.rounds}, order {', '.join(order)}")
        for kind in order:
            if "server" not in a.skip:
                peak, steps = server_peak(kind, a)
                record["server"].setdefault(kind, []).append({"peak_qps": peak, "steps": steps})
            if "single-stream" not in a.skip:  # SingleStream is batch 1 anyway
                ss_kind = HW_LG if kind == HW_B1 else kind
                r = _one(ss_kind, "single-stream", 0.0, a)
                record["single_stream"].setdefault(ss_kind, []).append(r)
                _say(f"  {ss_kind:18s} single-stream p50 {r['p50_ms'] * 1e3:,.2f} us, "
                     f"p99 {r['p99_ms'] * 1e3:,.2f} us")
        if "analysis" not in a.skip:
            qps, dur = 100_000.0, 10.0  # about a million samples
            for kind in (order if rnd % 2 == 0 else order[::-1]):
                if kind in (MLC_DEFAULT, HW_B1):
                    continue  # MLCommons with tracing on is slower still, and not its best
                if kind == HW:
                    r = _spawn("hwbench-analysis", "server", repr(qps), repr(dur), "10.0", "1000")
                else:
                    r = _spawn(kind, "server", repr(qps), repr(dur), "10.0", "1000")
                r["kind"] = kind
                record["analysis"].append(r)
                _say(f"  {kind:18s} post-run {r['post_run_s']:.3f} s"
                     + (f", analyze(1M) {r['analyze_1m_s'] * 1e3:.0f} ms" if kind == HW else ""))
        order = order[1:] + order[:1]

    from hwbench.tables import table
    med = statistics.median
    rows = []
    if record["server"]:
        peaks = {k: med(x["peak_qps"] for x in v) for k, v in record["server"].items()}
        peer = max(peaks[MLC_DEFAULT], peaks[MLC_FAST])
        for k in KINDS:
            vals = [x["peak_qps"] for x in record["server"][k]]
            capped = " (search cap)" if peaks[k] >= a.max_qps else ""
            rows.append([f"server peak QPS ({k}){capped}", peaks[k], min(vals), max(vals)])
        record["server_ratio"] = peaks[HW] / peer if peer else None
        record["server_ratio_batch1"] = peaks[HW_B1] / peer if peer else None
        # The two like-for-like comparisons: coalesced sets in one call against MLCommons'
        # FastSUT with coalescing; one call per sample against its default SUT.
        fast, default_ = peaks[MLC_FAST], peaks[MLC_DEFAULT]
        record["server_ratio_coalesced_vs_fast"] = peaks[HW] / fast if fast else None
        record["server_ratio_batch1_vs_default"] = peaks[HW_B1] / default_ if default_ else None
        rows.append(["server peak, coalesced: hwbench / mlcommons-fast",
                     record["server_ratio_coalesced_vs_fast"], None, None])
        rows.append(["server peak, a call per sample: hwbench-batch1 / mlcommons-default",
                     record["server_ratio_batch1_vs_default"], None, None])
        rows.append(["server peak hwbench / best MLCommons", record["server_ratio"], None, None])
        rows.append(["server peak hwbench-batch1 / best MLCommons",
                     record["server_ratio_batch1"], None, None])
    if record["single_stream"]:
        ss = record["single_stream"]
        for k in (HW_LG, HW, MLC_DEFAULT, MLC_FAST):
            for pct in ("p50", "p99"):
                vals = [x[f"{pct}_ms"] * 1e3 for x in ss[k]]
                rows.append([f"single-stream {pct} us ({k})", med(vals), min(vals), max(vals)])
        peer50 = min(med(x["p50_ms"] for x in ss[k]) for k in (MLC_DEFAULT, MLC_FAST))
        record["single_stream_p50_ratio"] = med(x["p50_ms"] for x in ss[HW_LG]) / peer50
        record["single_stream_p50_ratio_pipeline"] = med(x["p50_ms"] for x in ss[HW]) / peer50
        rows.append(["single-stream p50 hwbench-loadgen / best MLCommons",
                     record["single_stream_p50_ratio"], None, None])
        rows.append(["single-stream p50 hwbench (whole pipeline) / best MLCommons",
                     record["single_stream_p50_ratio_pipeline"], None, None])
    for k in (HW, MLC_FAST):
        vals = [x["post_run_s"] for x in record["analysis"] if x["kind"] == k]
        if vals:
            n = med(x.get("samples") or 0 for x in record["analysis"] if x["kind"] == k)
            rows.append([f"post-run s, ~{n / 1e6:.1f}M samples ({k})", med(vals), min(vals),
                         max(vals)])
    an = [x["analyze_1m_s"] for x in record["analysis"] if x["kind"] == HW]
    if an:
        rows.append(["hwbench analyze(1,000,000) s", med(an), min(an), max(an)])
    print(table(["figure", "median", "min", "max"], rows,
                title=f"{a.rounds} round(s), {a.duration:g} s runs, p99 bound {a.bound_ms:g} ms"))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
