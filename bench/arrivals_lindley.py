"""Do measured Server latencies follow from the arrivals? A check of the whole Server path against
queueing theory, for each arrival process.

The null backend with a fixed service time S is a single FIFO server (one instance, one sample
per call). Lindley's recursion over the *recorded* scheduled arrivals a_n predicts every
latency: finish_n = max(a_n, finish_{n-1}) + S, latency_n = finish_n - a_n. This runs
``hwbench run --backend null`` under each arrival process and compares the measured latency
percentiles with the prediction from the same run's samples.npz. The harness's own cost per call
(a few microseconds) adds to S, so measured runs slightly above predicted, more so under load.

    python bench/arrivals_lindley.py                    # about a minute
    python bench/arrivals_lindley.py --service-us 300 --qps 2500 --duration 10
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PROCESSES = ("poisson", "gamma:cv=2", "gamma:cv=4", "onoff:on_s=0.2,off_s=0.8,ratio=8",
             "ramp:from=1000,to=3000,over_s=4")


def lindley(arrivals_ns: np.ndarray, service_ns: float) -> np.ndarray:
    """Latencies of a FIFO single server with a fixed service time, arrivals sorted."""
    out = np.empty(len(arrivals_ns))
    finish = -np.inf
    for i, a in enumerate(arrivals_ns):
        finish = max(a, finish) + service_ns
        out[i] = finish - a
    return out


def run(process: str, service_us: float, qps: float, duration: float, out: str) -> dict:
    exe = Path(sys.executable).with_name("hwbench")
    cmd = [str(exe), "run", "--workload", "tiny", "--backend", "null", "--scenario", "server",
           "--backend-opt", f"service_time_us={service_us:g}", "--target-qps", f"{qps:g}",
           "--arrivals", process, "--duration", f"{duration:g}", "--warmup", "0",
           "--latency-bound-ms", "1000", "--no-power", "--json", "--quiet", "--output", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in (0, 3):
        raise SystemExit(f"hwbench run failed: {p.stderr[-1000:]}")
    doc = json.loads(p.stdout)
    z = np.load(Path(out) / doc["run_id"] / "samples.npz")
    order = np.argsort(z["issue_ns"], kind="stable")
    arrive, done = z["issue_ns"][order], z["complete_ns"][order]
    measured = (done - arrive) / 1e3
    predicted = lindley(arrive.astype(np.float64), service_us * 1e3) / 1e3
    row = {"process": process, "samples": int(len(arrive))}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        m, pr = np.percentile(measured, q), np.percentile(predicted, q)
        row[f"{name}_measured_us"], row[f"{name}_predicted_us"] = float(m), float(pr)
        row[f"{name}_ratio"] = float(m / pr)
    row["median_abs_error_us"] = float(np.median(np.abs(measured - predicted)))
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--service-us", type=float, default=200.0)
    ap.add_argument("--qps", type=float, default=3000.0, help="mean rate (60%% of 1/S by default)")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--json-out", metavar="FILE")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for process in PROCESSES:
            rows.append(run(process, a.service_us, a.qps, a.duration, out))
            r = rows[-1]
            print(f"  {process:34s} p99 measured {r['p99_measured_us']:9.1f} us, predicted "
                  f"{r['p99_predicted_us']:9.1f} us", file=sys.stderr, flush=True)
    from hwbench.tables import table
    head = ["arrivals", "samples", "p50 us meas / pred", "p90 us meas / pred",
            "p99 us meas / pred", "p99 ratio", "median |error| us"]
    body = [[r["process"], r["samples"],
             *(f"{r[f'{q}_measured_us']:.1f} / {r[f'{q}_predicted_us']:.1f}"
               for q in ("p50", "p90", "p99")),
             f"{r['p99_ratio']:.3f}", f"{r['median_abs_error_us']:.1f}"] for r in rows]
    print(table(head, body, title=f"null backend, service {a.service_us:g} us, mean "
                f"{a.qps:g} QPS ({a.duration:g} s runs)"))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
