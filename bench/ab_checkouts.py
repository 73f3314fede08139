"""Same-run A/B of two hwbench checkouts: one ``hwbench run`` command through each checkout's own
interpreter (its venv), alternating every round so that drift of the machine falls on both
sides alike, in a neutral directory (neither checkout on the path but its own install).

Figures, per side the median over rounds: samples/s and the scenario's percentile latency;
ratios B / A (throughput: 1.0 is parity, higher is better for B; latency: lower is better).

    python bench/ab_checkouts.py --a ../main/.venv/bin/python --b .venv/bin/python \\
        --rounds 5 -- --workload digits --backend cpu --scenario offline --duration 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile


def one_run(python: str, args: list[str], out: str) -> dict:
    cmd = [python, "-P", "-m", "hwbench", "run", "--json", "--quiet", "--output", out, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out)
    if proc.returncode not in (0, 3):
        sys.exit(f"{python}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    m = json.loads(proc.stdout)["metrics"]
    return {"samples_per_second": m["samples_per_second"],
            "latency_ms": m.get("percentile_latency_ms")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="interpreter of checkout A (the baseline)")
    p.add_argument("--b", required=True, help="interpreter of checkout B")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then hwbench run's arguments")
    o = p.parse_args()
    args = o.args[1:] if o.args[:1] == ["--"] else o.args
    got: dict[str, list[dict]] = {"a": [], "b": []}
    with tempfile.TemporaryDirectory() as out:
        for r in range(o.rounds):
            for side in (("a", "b") if r % 2 == 0 else ("b", "a")):
                got[side].append(one_run(getattr(o, side), args, out))
    med = {side: {k: statistics.median(x[k] for x in runs if x[k] is not None)
                  for k in ("samples_per_second", "latency_ms")} for side, runs in got.items()}
    print(json.dumps({"args": args, "rounds": o.rounds, "median": med,
                      "throughput_ratio_b_over_a": med["b"]["samples_per_second"]
                      / med["a"]["samples_per_second"],
                      "latency_ratio_b_over_a": med["b"]["latency_ms"] / med["a"]["latency_ms"],
                      "runs": got}, indent=1))


if __name__ == "__main__":
    main()
