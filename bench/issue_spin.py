"""What the load generator's issue-thread spin (``--spin-us``) costs and buys, measured in one command.

The issue thread busy-waits up to ``--spin-us`` before each Server arrival (after sleeping until
then) and, in SingleStream and MultiStream, for a completion before it blocks. A spin takes a core
for as long as it lasts; on a 2-core machine that core may be one the backend wanted. Each case
runs ``hwbench run`` at each ``--spins`` value (default: 0, hwbench's default, 200), rotating the order
round by round since these machines are shared and noisy, and reports each figure's median and
its ratio to the first spin's (by default: none) from the same command.

Cases:

1. resnet50 Server near its peak on the cpu backend (onnxruntime): the target is 80% (--load) of
   the throughput an Offline run of single-sample calls measured first, in this command. Once inline
   (one instance: the backend runs on the issue thread, so the spin only fills idle gaps) and once
   with two worker instances of one intra-op thread each (the issue thread spins while the
   workers compute). MLPerf's 15 ms bound is out of a 2-core CPU's reach, so the bound is
   generous (``--bound-ms``): the figures are throughput, p99 and CPU, not validity.
2. null backend Server at a rate where arrivals are ~100 us apart (service time 20 us): how late
   arrivals are issued, which counts as latency, with and without the spin.
3. null backend SingleStream through worker threads: the completion wait, spin against wake-up.

    python bench/issue_spin.py                 # about 8 minutes on 2 cores
    python bench/issue_spin.py --rounds 1 --duration 5   # a quick look
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

def _hw(args: list[str], out: str) -> dict:
    cmd = [str(Path(sys.executable).with_name("hwbench")), "run", "--json", "--quiet", "--no-power",
           "--output", out, *args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in (0, 3):
        raise SystemExit(f"hwbench run failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return json.loads(p.stdout)


def _figures(doc: dict) -> dict:
    m = doc["metrics"]
    lat = m["latency_ms"]
    tel = doc.get("telemetry") or {}
    rate = m.get("completed_samples_per_second") or m["samples_per_second"]
    spin = m.get("issue_spin_s")
    return {"samples_per_s": rate, "p50_ms": lat["p50"], "p99_ms": lat["p99"],
            "valid": bool(doc["valid"]),
            "spin_pct": None if spin is None else 100 * spin / m["duration_s"],
            "process_cpu_pct": ((tel.get("process_cpu_pct_of_core") or {}).get("mean"))}


def _runs(label: str, args: list[str], rounds: int, out: str, spins: list[float]) -> dict:
    """Runs `args` at each spin, rotating the order round by round, and collects each figure."""
    runs: dict[float, list[dict]] = {us: [] for us in spins}
    for r in range(rounds):
        k = r % len(spins)
        for us in spins[k:] + spins[:k]:
            f = _figures(_hw([*args, "--spin-us", f"{us:g}"], out))
            runs[us].append(f)
            print(f"  {label:30s} spin {us:5g} us {f['samples_per_s']:10.1f}/s  p50 "
                  f"{f['p50_ms']:8.3f}  p99 {f['p99_ms']:8.3f} ms  cpu "
                  f"{f['process_cpu_pct'] or 0:4.0f}%  spin {f['spin_pct'] or 0:5.2f}%  "
                  f"{'VALID' if f['valid'] else 'INVALID'}",
                  file=sys.stderr, flush=True)
    return runs


def _median(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if r[key] is not None]
    return statistics.median(vals) if vals else None


KEYS = (("samples_per_s", "samples/s", "{:.1f}"), ("p50_ms", "p50 ms", "{:.3f}"),
        ("p99_ms", "p99 ms", "{:.3f}"), ("process_cpu_pct", "cpu %", "{:.0f}"),
        ("spin_pct", "spin % of a core", "{:.2f}"))


def _rows(label: str, runs: dict) -> list[dict]:
    """One row per spin: medians, and each figure's ratio to the first spin's (the baseline)."""
    base = next(iter(runs))
    out = []
    for us, rs in runs.items():
        row: dict = {"case": label, "spin_us": us,
                     "valid": f"{sum(r['valid'] for r in rs)}/{len(rs)}"}
        for key, _, _ in KEYS:
            v, b = _median(rs, key), _median(runs[base], key)
            row[key] = v
            row[key + "_ratio"] = v / b if v is not None and b else None
        out.append(row)
    return out


def _print(rows: list[dict]) -> None:
    print("\nmedians; (x) = ratio to the first spin of the same case, measured in this command\n")
    head = ["case", "spin us"] + [h for _, h, _ in KEYS] + ["valid"]
    table = [head]
    for r in rows:
        cells = [r["case"], f"{r['spin_us']:g}"]
        for key, _, fmt in KEYS:
            v, q = r[key], r[key + "_ratio"]
            cells.append("-" if v is None else fmt.format(v) + ("" if q is None or q == 1
                                                                else f" ({q:.2f}x)"))
        table.append(cells + [r["valid"]])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))


def main() -> int:
    from hwbench.config import default

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs of each setting per case")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per resnet50 run")
    ap.add_argument("--null-duration", type=float, default=5.0, help="seconds per null run")
    ap.add_argument("--load", type=float, default=0.8, help="resnet50 Server target as a "
                    "fraction of the Offline throughput (default: %(default)s)")
    ap.add_argument("--bound-ms", type=float, default=2000.0, help="resnet50 Server bound")
    ap.add_argument("--spins", default=f"0,{default('spin_us'):g},200", help="--spin-us values "
                    "to compare, the first the baseline (default: none, hwbench's default, 200)")
    ap.add_argument("--only", choices=("resnet50", "null"), help="one family of cases")
    ap.add_argument("--json-out", metavar="FILE")
    a = ap.parse_args()
    spins = list(dict.fromkeys(float(x) for x in a.spins.split(",")))
    rows = []
    with tempfile.TemporaryDirectory() as out:
        if a.only != "null":
            base = ["--workload", "resnet50", "--backend", "cpu", "--warmup", "2"]
            off = _figures(_hw([*base, "--scenario", "offline", "--duration", "10"], out))
            peak = off["samples_per_s"]
            target = a.load * peak
            print(f"resnet50 offline (batch 1): {peak:.1f} samples/s; Server target "
                  f"{target:.1f} QPS", file=sys.stderr)
            srv = [*base, "--scenario", "server", "--target-qps", f"{target:.2f}",
                   "--latency-bound-ms", f"{a.bound_ms:g}", "--duration", f"{a.duration:g}"]
            label = f"resnet50 server {target:.1f} qps inline"
            rows += _rows(label, _runs(label, srv, a.rounds, out, spins))
            label = f"resnet50 server {target:.1f} qps 2 workers"
            workers = [*srv, "--instances", "2", "--backend-opt", "threads=1"]
            rows += _rows(label, _runs(label, workers, a.rounds, out, spins))
        if a.only != "resnet50":
            null = ["--workload", "tiny", "--backend", "null", "--duration", f"{a.null_duration:g}",
                    "--warmup", "1", "--backend-opt", "service_time_us=20"]
            srv = [*null, "--scenario", "server", "--target-qps", "10000",
                   "--latency-bound-ms", "1"]
            label = "null server 10k qps inline"
            rows += _rows(label, _runs(label, srv, a.rounds, out, spins))
            label = "null server 10k qps 2 workers"
            rows += _rows(label, _runs(label, [*srv, "--instances", "2"], a.rounds, out, spins))
            label = "null single-stream 2 workers"
            ss = [*null, "--scenario", "single-stream", "--instances", "2"]
            rows += _rows(label, _runs(label, ss, a.rounds, out, spins))
    _print(rows)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(
            {"spins": spins, "rounds": a.rounds, "machine": platform.processor()
             or platform.machine(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
