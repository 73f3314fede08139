"""The ``pipeline`` section of result.json: the whole pipeline against the model alone.

Built from samples.npz's stage columns (each sample's time in each stage, stamped by the harness
on the load generator's clock; hwbench.harness.pipeline) and the passes' metrics. A stage's
utilisation is its busy time over the wall time of the measured window and the workers that run
it: decode and preprocess share the ``--preprocess-workers`` threads, compute and postprocess the
``--instances`` workers (counted once per backend call, not once per sample of the batch).
Waiting (for a preprocessing worker, for a batch) is reported in ``stages_ms`` but is no stage's
work. ``bound_by`` is the stage with the highest utilisation.
"""
from __future__ import annotations

from typing import Any

import numpy as np

STAGES = ("queue", "decode", "preprocess", "batch_wait", "compute", "postprocess")
WORK = {"decode": "preprocess_workers", "preprocess": "preprocess_workers",
        "compute": "instances", "postprocess": "instances"}
PER_BATCH = ("compute", "postprocess")


def has_stages(columns: dict[str, np.ndarray] | None) -> bool:
    return bool(columns) and all(f"{s}_ns" in columns for s in STAGES)


def stage_times(columns: dict[str, np.ndarray]) -> dict[str, dict[str, float] | None]:
    """Mean, p50 and p99 (ms) of each stage over the samples that got through it."""
    out: dict[str, dict[str, float] | None] = {}
    for stage in STAGES:
        v = columns[f"{stage}_ns"]
        v = v[v >= 0].astype(np.float64) / 1e6
        out[stage] = None if not len(v) else {
            "mean": float(v.mean()), "p50": float(np.percentile(v, 50)),
            "p99": float(np.percentile(v, 99))}
    return out


def wall_ns(columns: dict[str, np.ndarray]) -> int:
    """The measured window: from its first issue to its last completion."""
    done = columns["complete_ns"]
    done = done[done >= 0]
    if not len(done) or not len(columns["issue_ns"]):
        return 0
    return int(done.max() - min(0, int(columns["issue_ns"].min())))


def utilisation(columns: dict[str, np.ndarray], workers: dict[str, int]) -> dict[str, float]:
    """Each working stage's busy time / wall time / its workers (0..1 when the workers kept
    within the window)."""
    wall = wall_ns(columns)
    out = {}
    for stage, pool in WORK.items():
        v = columns[f"{stage}_ns"]
        ok = v >= 0
        if stage in PER_BATCH:  # one backend call per batch, however many samples it held
            _, first = np.unique(columns["batch"][ok], return_index=True)
            busy = float(v[ok][first].sum())
        else:
            busy = float(v[ok].sum())
        out[stage] = busy / wall / workers[pool] if wall else 0.0
    return out


def path_figures(metrics: dict[str, Any] | None, peak_qps: float | None = None
                 ) -> dict[str, Any] | None:
    """One path's headline figures, from its metrics (and its find-peak rate in Server)."""
    if not metrics:
        return None
    return {"samples_per_second": metrics["samples_per_second"],
            "latency_ms": dict(metrics["latency_ms"]), "peak_qps": peak_qps}


def section(mode: str, columns: dict[str, np.ndarray] | None, workers: dict[str, int],
            end_to_end: dict[str, Any] | None, model_only: dict[str, Any] | None
            ) -> dict[str, Any]:
    """The pipeline section. ``end_to_end`` and ``model_only`` come from ``path_figures``;
    with a find-peak rate in both, throughput is compared on those rates (Server)."""
    stages = stage_times(columns) if has_stages(columns) else None
    util = utilisation(columns, workers) if has_stages(columns) else None
    bound = max(util, key=util.get) if util and any(util.values()) else None
    basis = "samples_per_second"
    if end_to_end and model_only and end_to_end.get("peak_qps") is not None:
        basis = "peak_qps"
    ratio = p99_delta = None
    if end_to_end and model_only:
        e, m = end_to_end.get(basis), model_only.get(basis)
        ratio = e / m if e is not None and m else None
        p99_delta = end_to_end["latency_ms"]["p99"] - model_only["latency_ms"]["p99"]
    return {"mode": mode, "preprocess_workers": workers["preprocess_workers"],
            "compute_workers": workers["instances"],
            "end_to_end": end_to_end, "model_only": model_only,
            "throughput_basis": basis, "throughput_ratio": ratio, "p99_delta_ms": p99_delta,
            "stages_ms": stages, "utilisation": util, "bound_by": bound}


def summary_line(p: dict[str, Any] | None) -> str | None:
    """E.g. 'end-to-end delivers 41% of model-only throughput; p99 +18 ms, bound by decode'."""
    if not p or p.get("mode") == "model":
        return None
    bound = f"bound by {p['bound_by']}" if p.get("bound_by") else "no stage measured"
    if p.get("throughput_ratio") is not None:
        what = "peak rate" if p["throughput_basis"] == "peak_qps" else "throughput"
        return (f"end-to-end delivers {p['throughput_ratio']:.0%} of model-only {what}; "
                f"p99 {p['p99_delta_ms']:+.1f} ms, {bound}")
    e = p.get("end_to_end")
    if e:
        alone = ("; no model-only figure to compare (its pass found no valid rate or did not "
                 "complete)" if p.get("mode") == "both" else "")
        return (f"end-to-end {e['samples_per_second']:,.1f} samples/s, p99 "
                f"{e['latency_ms']['p99']:.2f} ms, {bound}{alone}")
    return f"whole pipeline, {bound}"


def stage_rows(p: dict[str, Any] | None) -> list[tuple[str, str]]:
    """One row per stage: mean / p50 / p99 ms, and the utilisation of the working stages."""
    if not p or not p.get("stages_ms"):
        return []
    rows = []
    for stage in STAGES:
        t = p["stages_ms"].get(stage)
        if t is None:
            continue
        u = (p.get("utilisation") or {}).get(stage)
        busy = f", utilisation {u:.0%}" if u is not None else " (waiting)"
        rows.append((f"  {stage}", f"mean {t['mean']:.3f} / p50 {t['p50']:.3f} / p99 "
                     f"{t['p99']:.3f} ms{busy}"))
    return rows
