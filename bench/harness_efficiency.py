"""What the harness costs: `hwbench run --backend B` against a bare loop of B's own API, for every
backend usable here that has a bare loop (cpu: an onnxruntime session; openvino: one OpenVINO
infer request).

The bare loop is the backend's own API in a tight loop: the same ONNX model file, the same
settings (threads, graph optimisation or performance hint, precision left to the runtime in
both), the same batch size and the same preprocessed samples, warmed up for as long as hwbench
warms up. It feeds contiguous slices of the sample array (no gathering), so it is the stricter
baseline. Each side runs in its own process, and the order alternates every round.

Figures: Offline throughput ratio (hwbench / bare, higher is better, 1.0 is parity) and
SingleStream p90 latency ratio (hwbench / bare, lower is better).

    pip install '.[openvino]'
    python bench/harness_efficiency.py                   # resnet50, about 15 minutes per backend
    python bench/harness_efficiency.py --backends openvino --workload digits --rounds 3 --duration 10
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _ort_call(path: str, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name, out = sess.get_inputs()[0].name, [sess.get_outputs()[0].name]
    return lambda x: sess.run(out, {name: x}), {"onnxruntime": ort.__version__}


def _openvino_call(path: str, threads: int):
    import openvino as ov

    core = ov.Core()
    props = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    request = core.compile_model(core.read_model(path), "CPU", props).create_infer_request()

    def call(x):
        request.infer({0: x}, share_inputs=True)
        return request.get_output_tensor(0).data

    return call, {"openvino": ov.__version__}


# The bare loop of each backend's own API, with the settings hwbench's backend is given below.
BARE = {"cpu": _ort_call, "openvino": _openvino_call}
HWBENCH_OPTS = {"cpu": ["threads={threads}"], "openvino": ["threads={threads}", "hint=latency"]}


def _bare(backend: str, scenario: str, workload: str, batch: int, threads: int,
          duration: float, warmup: float) -> dict:
    import numpy as np

    from hwbench import workloads

    wl = workloads.create(workload)
    data = wl.load_samples(np.arange(wl.performance_sample_count()))
    call, versions = BARE[backend](str(wl.artifact().path), threads)
    bs = batch if scenario == "offline" else 1
    n = len(data) - len(data) % bs or bs

    def loop(seconds: float, record: list | None) -> int:
        done, i = 0, 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            x = data[i:i + bs]
            t0 = time.perf_counter_ns()
            call(x)
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
            "queries": len(lat), "versions": versions}


def _hwbench(backend: str, scenario: str, workload: str, batch: int, threads: int,
             duration: float, warmup: float) -> dict:
    exe = Path(sys.executable).with_name("hwbench")
    with tempfile.TemporaryDirectory() as outdir:
        opts = [x for o in HWBENCH_OPTS[backend] for x in ("--backend-opt",
                                                            o.format(threads=threads))]
        args = [str(exe), "run", "--workload", workload, "--backend", backend,
                "--scenario", scenario, "--batch-size", str(batch if scenario == "offline" else 1),
                *opts, "--duration", str(duration),
                "--warmup", str(warmup), "--min-queries", "64", "--json", "--quiet",
                "--output", outdir]
        proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"hwbench run failed ({proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    m = doc["metrics"]
    return {"samples_per_second": m["samples_per_second"], "p90_ms": m["latency_ms"]["p90"],
            "p50_ms": m["latency_ms"]["p50"], "queries": m["completed_queries"],
            "valid": doc["valid"], "reasons": doc["invalid_reasons"],
            "precision": doc["backend_info"]["precision"], "versions": doc["backend_info"]["versions"]}


def _spawn(backend: str, side: str, scenario: str, a: argparse.Namespace) -> dict:
    args = [sys.executable, __file__, "_worker", backend, side, scenario, a.workload,
            str(a.batch_size), str(a.threads), repr(a.duration), repr(a.warmup)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} {side} {scenario} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _usable(names: list[str]) -> list[str]:
    from hwbench import backends

    out = []
    for name in names:
        avail = backends.backend_class(name).availability()
        if avail.usable:
            out.append(name)
        else:
            print(f"skipping {name}: {avail.reason} ({avail.install})", file=sys.stderr)
    return out


def _measure(backend: str, a: argparse.Namespace) -> dict:
    """Every round of both scenarios for one backend, sides alternating, with their ratios."""
    res: dict[str, dict[str, list]] = {s: {"hwbench": [], "bare": []} for s in SCENARIOS}
    ratios: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    for rnd in range(a.rounds):
        for scenario, (key, _) in SCENARIOS.items():
            sides = ("hwbench", "bare") if rnd % 2 == 0 else ("bare", "hwbench")
            got = {}
            for side in sides:
                got[side] = r = _spawn(backend, side, scenario, a)
                res[scenario][side].append(r)
                print(f"{backend} round {rnd + 1}/{a.rounds} {scenario:13s} {side:7s} "
                      f"{r['samples_per_second']:8.2f} samples/s  p90 {r['p90_ms']:8.3f} ms"
                      + ("" if r.get("valid", True) else f"  INVALID {r['reasons']}"),
                      file=sys.stderr, flush=True)
            ratios[scenario].append(got["hwbench"][key] / got["bare"][key])
    return {"runs": res, "ratios": ratios}


# Offline is judged by throughput, SingleStream by p90 latency.
SCENARIOS = {"offline": ("samples_per_second", "samples/s"), "single-stream": ("p90_ms", "p90 ms")}


def _table(backend: str, m: dict, a: argparse.Namespace) -> str:
    from hwbench.tables import table

    med = statistics.median
    rows = []
    for scenario, (key, unit) in SCENARIOS.items():
        for side in ("hwbench", "bare"):
            vals = [r[key] for r in m["runs"][scenario][side]]
            rows.append([f"{scenario} {unit} ({side})", med(vals), min(vals), max(vals)])
        rs = m["ratios"][scenario]
        rows.append([f"{scenario} ratio hwbench/bare", med(rs), min(rs), max(rs)])
    precision = m["runs"]["offline"]["hwbench"][0]["precision"]
    return table(["figure", "median", "min", "max"], rows,
                 title=f"{backend} ({precision}), {a.workload}, {a.threads} threads, Offline batch "
                       f"{a.batch_size}, {a.rounds} round(s) of {a.duration:g} s, order alternating")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        backend, side, scenario, workload, batch, threads, duration, warmup = argv[1:9]
        fn = _bare if side == "bare" else _hwbench
        print(json.dumps(fn(backend, scenario, workload, int(batch), int(threads),
                            float(duration), float(warmup))))
        return 0

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=",".join(BARE),
                   help=f"comma-separated, among {', '.join(BARE)} (default: each usable one)")
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=30.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=8, help="Offline batch size (SingleStream: 1)")
    p.add_argument("--threads", type=int, default=2, help="inference threads, both sides")
    p.add_argument("--json-out")
    a = p.parse_args(argv)
    names = [n for n in a.backends.split(",") if n]
    unknown = set(names) - set(BARE)
    if unknown:
        p.error(f"no bare loop for {', '.join(sorted(unknown))}: choose among {', '.join(BARE)}")

    import hwbench

    record = {"command": " ".join(["python", "bench/harness_efficiency.py", *argv]),
              "machine": {"cpu": platform.processor() or platform.machine(),
                          "cores": os.cpu_count(), "python": platform.python_version()},
              "hwbench": hwbench.__version__, "args": vars(a), "backends": {}}
    for backend in _usable(names):
        m = record["backends"][backend] = _measure(backend, a)
        print(_table(backend, m, a), flush=True)
        print(f"versions: {m['runs']['offline']['bare'][0]['versions']}\n", flush=True)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
