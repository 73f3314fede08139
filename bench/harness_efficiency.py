"""What the harness costs: `hwbench run --backend cpu` against a bare onnxruntime loop.

The bare loop is the backend's own API in a tight loop: the same ONNX model file, the same
session options (threads, graph optimisation), the same batch size and the same preprocessed
samples, warmed up for as long as hwbench warms up. It feeds contiguous slices of the sample
array (no gathering), so it is the stricter baseline. Each side runs in its own process, and the
order alternates every round.

Figures: Offline throughput ratio (hwbench / bare, higher is better, 1.0 is parity) and
SingleStream p90 latency ratio (hwbench / bare, lower is better).

    pip install .
    python bench/harness_efficiency.py                   # resnet50, about 15 minutes on 2 cores
    python bench/harness_efficiency.py --rounds 1 --duration 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _bare(scenario: str, workload: str, batch: int, threads: int, duration: float,
          warmup: float) -> dict:
    import numpy as np
    import onnxruntime as ort

    from hwbench import workloads

    wl = workloads.create(workload)
    art = wl.artifact()
    data = wl.load_samples(np.arange(wl.performance_sample_count()))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(art.path), so, providers=["CPUExecutionProvider"])
    name, out = art.input_name, [art.output_name]
    bs = batch if scenario == "offline" else 1
    n = len(data) - len(data) % bs or bs

    def loop(seconds: float, record: list | None) -> int:
        done, i = 0, 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            x = data[i:i + bs]
            t0 = time.perf_counter_ns()
            sess.run(out, {name: x})
            if record is not None:
                record.append(time.perf_counter_ns() - t0)
            done += len(x)
            i = (i + bs) % n
        return done

    loop(warmup, None)
    lat: list[int] = []
    t0 = time.perf_counter()
    done = loop(duration, lat)
    elapsed = time.perf_counter() - t0
    lat_sorted = np.sort(np.asarray(lat))
    return {"samples_per_second": done / elapsed,
            "p90_ms": float(lat_sorted[int(0.9 * len(lat_sorted))]) / 1e6,
            "p50_ms": float(lat_sorted[int(0.5 * len(lat_sorted))]) / 1e6,
            "queries": len(lat)}


def _hwbench(scenario: str, workload: str, batch: int, threads: int, duration: float,
             warmup: float) -> dict:
    exe = Path(sys.executable).with_name("hwbench")
    with tempfile.TemporaryDirectory() as outdir:
        args = [str(exe), "run", "--workload", workload, "--backend", "cpu",
                "--scenario", scenario, "--batch-size", str(batch if scenario == "offline" else 1),
                "--backend-opt", f"threads={threads}", "--duration", str(duration),
                "--warmup", str(warmup), "--min-queries", "64", "--json", "--quiet",
                "--output", outdir]
        proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"hwbench run failed ({proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    m = doc["metrics"]
    return {"samples_per_second": m["samples_per_second"], "p90_ms": m["latency_ms"]["p90"],
            "p50_ms": m["latency_ms"]["p50"], "queries": m["completed_queries"],
            "valid": doc["valid"], "reasons": doc["invalid_reasons"]}


def _spawn(side: str, scenario: str, a: argparse.Namespace) -> dict:
    args = [sys.executable, __file__, "_worker", side, scenario, a.workload, str(a.batch_size),
            str(a.threads), repr(a.duration), repr(a.warmup)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} {scenario} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        side, scenario, workload, batch, threads, duration, warmup = argv[1:8]
        fn = _bare if side == "bare" else _hwbench
        print(json.dumps(fn(scenario, workload, int(batch), int(threads), float(duration),
                            float(warmup))))
        return 0

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=30.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=8, help="Offline batch size (SingleStream: 1)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    p.add_argument("--json-out")
    a = p.parse_args(argv)

    res: dict[str, dict[str, list]] = {"offline": {"hwbench": [], "bare": []},
                                       "single-stream": {"hwbench": [], "bare": []}}
    ratios: dict[str, list[float]] = {"offline": [], "single-stream": []}
    for rnd in range(a.rounds):
        for scenario in ("offline", "single-stream"):
            sides = ("hwbench", "bare") if rnd % 2 == 0 else ("bare", "hwbench")
            got = {}
            for side in sides:
                got[side] = r = _spawn(side, scenario, a)
                res[scenario][side].append(r)
                print(f"round {rnd + 1}/{a.rounds} {scenario:13s} {side:7s} "
                      f"{r['samples_per_second']:8.2f} samples/s  p90 {r['p90_ms']:8.2f} ms"
                      + ("" if r.get("valid", True) else f"  INVALID {r['reasons']}"),
                      file=sys.stderr, flush=True)
            if scenario == "offline":
                ratios[scenario].append(got["hwbench"]["samples_per_second"]
                                        / got["bare"]["samples_per_second"])
            else:
                ratios[scenario].append(got["hwbench"]["p90_ms"] / got["bare"]["p90_ms"])

    from hwbench.tables import table
    med = statistics.median
    rows = []
    for scenario, key, unit in (("offline", "samples_per_second", "samples/s"),
                                ("single-stream", "p90_ms", "p90 ms")):
        for side in ("hwbench", "bare"):
            vals = [r[key] for r in res[scenario][side]]
            rows.append([f"{scenario} {unit} ({side})", med(vals), min(vals), max(vals)])
        rs = ratios[scenario]
        rows.append([f"{scenario} ratio hwbench/bare", med(rs), min(rs), max(rs)])
    print(table(["figure", "median", "min", "max"], rows,
                title=f"{a.workload}, {a.threads} threads, Offline batch {a.batch_size}, "
                      f"{a.rounds} round(s) of {a.duration:g} s, order alternating"))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"args": vars(a), "runs": res, "ratios": ratios},
                                               indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
