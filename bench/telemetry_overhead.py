"""What the telemetry sampler costs: its own CPU time, and a null-backend run with and without it.

1. The sampler alone at the given rate with every source that opens on this machine: its
   thread's CPU time as a percentage of one core (the budget is 1%).
2. `hwbench run --backend null` (SingleStream, the harness at full speed) with the sampler at
   the given rate and with telemetry off (--telemetry-hz 0), order alternating every round:
   throughput ratio (with / without, 1.0 is no cost) and p50 latency ratio.

    pip install .
    python bench/telemetry_overhead.py                  # about 1 minute
    python bench/telemetry_overhead.py --rounds 5 --duration 5 --hz 10
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time

import hwbench
from hwbench.config import RunConfig
from hwbench.telemetry import Session


def sampler_alone(hz: float, seconds: float) -> dict:
    session = Session(RunConfig(telemetry_hz=hz))
    try:
        session.start()
        time.sleep(seconds)
        session.stop()
        s = session.sampler
        return {"sources": [t.source.name for t in session.tracks],
                "readings": len(session.tracks[0].times), "thread_cpu_s": s.cpu_s,
                "wall_s": s.wall_s, "pct_of_core": 100 * s.cpu_s / s.wall_s}
    finally:
        session.close()


def one_run(hz: float, duration: float, root: str) -> dict:
    cfg = RunConfig(workload="tiny", backend="null", scenario="single-stream", duration_s=duration,
                    warmup_s=0.5, telemetry_hz=hz, output=root)
    doc = hwbench.run(cfg).result
    tel = doc["telemetry"] or {}
    return {"samples_per_second": doc["metrics"]["samples_per_second"],
            "p50_ms": doc["metrics"]["latency_ms"]["p50"],
            "overhead_pct_of_core": tel.get("overhead_pct_of_core")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    args = ap.parse_args()
    alone = sampler_alone(args.hz, 2 * args.duration)
    pairs = []
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.rounds):
            order = (args.hz, 0.0) if r % 2 == 0 else (0.0, args.hz)
            got = {hz: one_run(hz, args.duration, root) for hz in order}
            pairs.append(got)
    on = [p[args.hz] for p in pairs]
    off = [p[0.0] for p in pairs]
    record = {
        "command": " ".join(sys.argv), "python": platform.python_version(),
        "hwbench": hwbench.__version__, "hz": args.hz, "sampler_alone": alone,
        "throughput_ratio_median": statistics.median(
            a["samples_per_second"] / b["samples_per_second"] for a, b in zip(on, off)),
        "p50_ratio_median": statistics.median(a["p50_ms"] / b["p50_ms"] for a, b in zip(on, off)),
        "overhead_pct_of_core_in_runs": [a["overhead_pct_of_core"] for a in on],
        "rounds": pairs,
    }
    print(json.dumps(record, indent=1, default=str))


if __name__ == "__main__":
    main()
