"""What the harness costs the ``torch`` backend: ``hwbench run --backend torch --scenario offline``
against a bare loop over the same converted module (issue 14's acceptance: >= 0.98x).

The bare loop converts the workload's ONNX artifact with the backend's own converter
(``hwbench.backends.torch_convert``), sets the same thread count, and calls the module on
contiguous slices of the preprocessed samples, batch by batch, under ``torch.inference_mode``,
warmed up for as long as hwbench warms up (10 s by default: long enough for torch's kernels to
reach their steady speed on resnet50). Each side runs in its own process, and the order
alternates every round. Figure: Offline throughput ratio hwbench / bare (1.0 is parity).

    python bench/torch_overhead.py                  # resnet50, 3 rounds of 20 s, batch 8, 2 threads
    python bench/torch_overhead.py --workload digits --rounds 5 --duration 5
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


def _bare(workload: str, batch: int, threads: int, duration: float, warmup: float) -> dict:
    import numpy as np
    import onnx
    import torch

    from hwbench import workloads
    from hwbench.backends import torch_convert

    wl = workloads.create(workload)
    data = wl.load_samples(np.arange(wl.performance_sample_count()))
    torch.set_num_threads(threads)
    module = torch_convert.convert(onnx.load(str(wl.artifact().path))).eval()
    n = len(data) - len(data) % batch or batch

    def loop(seconds: float) -> int:
        done, i = 0, 0
        end = time.perf_counter() + seconds
        with torch.inference_mode():
            while time.perf_counter() < end:
                module(torch.from_numpy(data[i:i + batch])).numpy()
                done += batch
                i = (i + batch) % n
        return done

    loop(warmup)
    t0 = time.perf_counter()
    done = loop(duration)
    return {"samples_per_second": done / (time.perf_counter() - t0), "torch": torch.__version__}


def _hwbench(workload: str, batch: int, threads: int, duration: float, warmup: float) -> dict:
    exe = Path(sys.executable).with_name("hwbench")
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [str(exe), "run", "--workload", workload, "--backend", "torch", "--scenario",
             "offline", "--batch-size", str(batch), "--backend-opt", f"threads={threads}",
             "--duration", str(duration), "--warmup", str(warmup), "--min-queries", "64",
             "--json", "--quiet", "--output", out], capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"hwbench run failed ({proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    return {"samples_per_second": doc["metrics"]["samples_per_second"], "valid": doc["valid"],
            "reasons": doc["invalid_reasons"], "precision": doc["backend_info"]["precision"]}


def _spawn(side: str, a: argparse.Namespace) -> dict:
    args = [sys.executable, __file__, "_worker", side, a.workload, str(a.batch_size),
            str(a.threads), repr(a.duration), repr(a.warmup)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        side, workload, batch, threads, duration, warmup = argv[1:7]
        fn = _bare if side == "bare" else _hwbench
        print(json.dumps(fn(workload, int(batch), int(threads), float(duration),
                            float(warmup))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="resnet50")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per measured run")
    # torch's CPU kernels take about five resnet50 batches to reach their steady speed (first
    # allocations, oneDNN primitives): a short warm-up leaves that ramp in the bare loop's window.
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2, help="intra-op threads, both sides")
    p.add_argument("--json-out")
    a = p.parse_args(argv)
    runs: dict[str, list[dict]] = {"hwbench": [], "bare": []}
    ratios = []
    for rnd in range(a.rounds):
        got = {}
        for side in (("hwbench", "bare") if rnd % 2 == 0 else ("bare", "hwbench")):
            got[side] = r = _spawn(side, a)
            runs[side].append(r)
            print(f"round {rnd + 1}/{a.rounds} {side:7s} {r['samples_per_second']:8.2f} "
                  "samples/s" + ("" if r.get("valid", True) else f"  INVALID {r['reasons']}"),
                  file=sys.stderr, flush=True)
        ratios.append(got["hwbench"]["samples_per_second"] / got["bare"]["samples_per_second"])
    med = statistics.median
    for side in ("hwbench", "bare"):
        vals = [r["samples_per_second"] for r in runs[side]]
        print(f"offline samples/s ({side}): median {med(vals):.2f}  min {min(vals):.2f}  "
              f"max {max(vals):.2f}")
    print(f"ratio hwbench/bare: median {med(ratios):.3f}  min {min(ratios):.3f}  "
          f"max {max(ratios):.3f}  ({a.workload}, {runs['hwbench'][0]['precision']}, batch "
          f"{a.batch_size}, {a.threads} threads, {a.rounds} rounds of {a.duration:g} s, "
          f"order alternating; torch {runs['bare'][0]['torch']})")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"command": " ".join(
            ["python", "bench/torch_overhead.py", *argv]), "args": vars(a), "runs": runs,
            "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
