"""Server find-peak: the highest target QPS whose run stays valid under the latency bound.

Doubles the target from the starting QPS until a step is invalid, then bisects to within 2%. The
result keeps the best valid step's metrics, power, telemetry and timelines, and every step.
"""
from __future__ import annotations

from hwbench.passes.run import Run

FLOOR_RATIO = 8  # halving stops this far below the starting QPS
RESOLUTION = 0.02  # bisection stops when the valid and invalid targets are this close
MAX_STEPS = 14


def find_peak(run: Run) -> None:
    """Doubles, then bisects, the Server target QPS; keeps the best valid step's metrics."""
    qps, lo, hi, steps, best = run.server_qps(), None, None, [], None
    # Halving has a floor: each step needs its minimum query count, so a step at a tiny rate
    # would run for hours; below the floor the search stops with no valid QPS.
    floor = qps / FLOOR_RATIO
    stopped = False
    for _ in range(MAX_STEPS):
        out = run.performance(target_qps=qps)
        m = out["summary"]
        steps.append({"target_qps": qps, "valid": bool(m.valid), "p99_ms": m.latency.p99 / 1e6,
                      "completed_qps": m.queries_per_second,
                      "invalid_reasons": list(m.invalid_reasons)})
        run.say.info(f"find-peak step {len(steps)}: {qps:,.1f} QPS -> "
                     f"{'VALID' if m.valid else 'INVALID'} (p99 {m.latency.p99 / 1e6:.3f} ms)")
        if run.doc["interrupted"] or out["errors"]:
            # A fault, a timeout or a stuck call ends the search: the run says which step and why.
            run.doc["invalid_reasons"] += [f"find-peak step {len(steps)}: {e}"
                                           for e in out["errors"]]
            stopped = True
            break
        if m.valid:
            lo, best = qps, ({k: run.doc[k] for k in ("metrics", "power", "telemetry")},
                             {k: v for k, v in run.samples.items()
                              if k in ("samples.npz", "telemetry.npz")},
                             dict(run.doc["settings"]))
        else:
            hi = qps
        if lo is not None and hi is not None and (hi - lo) / lo < RESOLUTION:
            break
        if lo is None and hi is not None and qps / 2 < floor:
            break
        qps = qps * 2 if hi is None else qps / 2 if lo is None else (lo + hi) / 2
    if best is not None:
        run.doc.update(best[0])
        run.samples.update(best[1])
        run.doc["settings"] = best[2]
    run.doc["validated"]["performance"] = best is not None
    run.doc["find_peak"] = {"peak_qps": lo, "steps": steps, "floor_qps": floor}
    if best is None and not stopped:
        run.doc["invalid_reasons"].append(
            f"no target QPS from {floor * FLOOR_RATIO:,.1f} down to {floor:,.1f} "
            "stayed valid under the latency bound")
