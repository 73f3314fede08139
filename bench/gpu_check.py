"""The GPU check: one command for an NVIDIA machine without network, which writes four files.

    python bench/gpu_check.py OUTDIR [--device cuda]     # on the GPU machine, from a checkout
    python bench/gpu_check.py OUTDIR --device cpu --installed --workload tiny   # CI's dry run

1. **Build and one run, PASS/FAIL within 90 s.** Installs hwbench from this working tree onto the
   Python running the check, with no downloads and that machine's own torch
   (``pip install --no-build-isolation --no-deps .``: cmake, ninja, nanobind and
   scikit-build-core must be there; ``--installed`` skips this where hwbench already is), then one
   short ``tiny`` run on the torch backend on the device.
2. **The torch backend on the device** for the workload (resnet50 with synthetic weights by
   default) in all four scenarios at fp32 and bf16, each beside a bare torch loop over the same
   converted module (same batch, dtype, host-to-device copies and back): Offline throughput and
   SingleStream p90, as ratios harness / bare. Server runs at half the Offline throughput.
3. **Power and the GPU**, from each run's own telemetry: NVML energy per sample and how it was
   measured (the total-energy counter where the GPU has one), SM clock, utilisation, memory,
   temperature, throttle reasons. Missing telemetry is reported missing, with its reason.
4. ``hwbench report`` of the fp32 Offline run.
5. **The llm workload** (``--llm SIZE``: ``1b`` by default on a GPU, ``tiny`` in the CPU dry run,
   ``none`` to skip) on the torch backend in bf16: Offline tokens/s, then Server at half that
   request rate, with TTFT and TPOT percentiles, the token-bound verdicts and teacher-forced
   fidelity against the FP32 reference (torch on the CPU). On a GPU it serves up to 256
   sequences with a KV cache of 20 GiB.

It writes exactly summary.md, summary.json, report.html and results.tar.gz (every run directory)
into OUTDIR, whatever fails: a failed step is a FAIL line with its reason, never a missing file.
On an H200 steps 1 to 4 finish within 4 minutes; step 5 adds a few (the 1B's FP32
reference for fidelity runs on the CPU). ``tests/test_gpu_check.py`` runs the CPU dry run in CI so
that the check cannot rot.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FILES = ("summary.md", "summary.json", "report.html", "results.tar.gz")
SCENARIOS = ("offline", "single-stream", "multi-stream", "server")
DTYPES = ("fp32", "bf16")
SMOKE_LIMIT_S = 90.0


def _hwbench(args: list[str], timeout: float) -> tuple[int, dict | None, str]:
    """Runs ``hwbench`` (this interpreter's install) and returns (exit code, its --json, stderr)."""
    # -P: a checkout's own hwbench/ (no compiled extension) must not shadow the installed one
    cmd = [sys.executable, "-P", "-m", "hwbench", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, None, f"timed out after {timeout:g} s: {' '.join(args)}"
    try:
        doc = json.loads(p.stdout) if p.stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    return p.returncode, doc, p.stderr.strip()


def _install(log: list[str]) -> tuple[bool, float, str]:
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation",
                        "--no-deps", "--no-index", str(ROOT)], capture_output=True, text=True)
    secs = time.monotonic() - t
    log.append(f"pip install: exit {p.returncode} in {secs:.1f} s")
    why = "" if p.returncode == 0 else (p.stderr.strip().splitlines() or ["?"])[-1]
    return p.returncode == 0, secs, why


def _torch_opts(device: str, dtype: str) -> list[str]:
    return ["--backend", "torch", "--backend-opt", f"device={device}",
            "--backend-opt", f"dtype={dtype}"]


def _run_figures(doc: dict) -> dict[str, Any]:
    """What the summary shows of one run, read from its result document."""
    m = doc.get("metrics") or {}
    lat = m.get("latency_ms") or {}
    tel = doc.get("telemetry") or {}
    power = doc.get("power") or {}
    gpu_power = [s for s in power.get("sources") or [] if s.get("kind") == "gpu"
                 or str(s.get("name", "")).startswith("nvml")]
    fid = doc.get("fidelity") or {}
    return {
        "run_id": doc.get("run_id"), "valid": doc.get("valid"),
        "invalid_reasons": doc.get("invalid_reasons") or [],
        "precision": (doc.get("backend_info") or {}).get("precision"),
        "device": (doc.get("backend_info") or {}).get("device"),
        "samples_per_s": m.get("completed_samples_per_second") or m.get("samples_per_second"),
        "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"),
        "device_compute_ms": (doc.get("backend_info") or {}).get("device_compute_ms"),
        "fidelity": fid.get("observed_precision"), "fidelity_passed": fid.get("passed"),
        "gpu_power": [{k: s.get(k) for k in ("name", "method", "valid", "energy_per_sample_j",
                                             "avg_w", "peak_w", "reason", "invalid_reason")}
                      for s in gpu_power],
        "power_note": power.get("note") or power.get("total_note"),
        "gpus": tel.get("gpus") or [], "throttled": tel.get("throttled"),
        "throttle_reasons": tel.get("throttle_reasons") or [],
        "telemetry_notes": tel.get("notes") or [],
    }


def _bare_loop(workload: str, device: str, dtype: str, batch: int, seconds: float
               ) -> dict[str, Any]:
    """A bare torch loop over the module the backend runs: the artifact hwbench built for the
    workload, converted by the same converter, the same dtype and copies. It reads the clock
    itself; that is what a bare loop is for."""
    import numpy as np
    import onnx
    import torch

    from hwbench.backends import torch_convert
    from hwbench.workloads import create

    wl = create(workload)
    art = wl.artifact()
    dev = torch.device(device)
    tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    module = torch_convert.convert(onnx.load(str(art.path)), tdtype).eval().to(dev)
    x_host = torch.from_numpy(wl.load_samples(np.arange(min(batch, wl.sample_count()))))
    while x_host.shape[0] < batch:
        x_host = torch.cat([x_host, x_host])[:batch]
    if dev.type == "cuda":
        x_host = x_host.pin_memory()

    def once() -> None:
        x = x_host.to(dev, non_blocking=True).to(tdtype)
        y = module(x)
        y.float().cpu()  # synchronises on CUDA

    with torch.inference_mode():
        for _ in range(3):
            once()
        lat, n, t0 = [], 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a = time.perf_counter()
            once()
            lat.append(time.perf_counter() - a)
            n += batch
        wall = time.perf_counter() - t0
    lat.sort()
    return {"samples_per_s": n / wall, "p90_ms": lat[int(0.9 * (len(lat) - 1))] * 1e3,
            "batch": batch, "iterations": len(lat)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    ap.add_argument("--workload", default="resnet50")
    ap.add_argument("--installed", action="store_true",
                    help="use the hwbench this Python already has (no pip install)")
    ap.add_argument("--duration", type=float, help="seconds per run (default: 5 on a GPU, "
                    "0.5 on the CPU)")
    ap.add_argument("--batch", type=int, help="Offline batch size (default: 64 on a GPU, 4 on "
                    "the CPU)")
    ap.add_argument("--llm", help="llm model size run in bf16 (default: 1b on a GPU, tiny on "
                    "the CPU; none: skip)")
    a = ap.parse_args()
    a.llm = a.llm or ("1b" if a.device.startswith("cuda") else "tiny")
    gpu = a.device.startswith("cuda")
    duration = a.duration or (5.0 if gpu else 0.5)
    batch = a.batch or (64 if gpu else 4)
    a.outdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log: list[str] = []
    summary: dict[str, Any] = {"device": a.device, "workload": a.workload, "duration_s": duration,
                               "offline_batch": batch, "python": platform.python_version(),
                               "host": platform.node(), "steps": {}, "runs": {}, "bare": {},
                               "ratios": {}, "llm": {}, "log": log}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        try:
            _check(a, summary, runs, duration, batch, started, log)
        except Exception as exc:  # the four files are written whatever happened
            summary["steps"]["error"] = {"passed": False, "why": f"{type(exc).__name__}: {exc}"}
        summary["elapsed_s"] = time.monotonic() - started
        _write(a.outdir, summary, runs)
    print((a.outdir / "summary.md").read_text())
    return 0 if all(s.get("passed") for s in summary["steps"].values()) else 1


def _check(a: argparse.Namespace, summary: dict, runs: Path, duration: float, batch: int,
           started: float, log: list[str]) -> None:
    steps = summary["steps"]
    if not a.installed:
        ok, secs, why = _install(log)
        steps["install"] = {"passed": ok, "seconds": secs, "why": why}
        if not ok:
            return
    code, doc, err = _hwbench(["run", "--workload", "tiny", *_torch_opts(a.device, "fp32"),
                               "--scenario", "offline", "--duration", "1", "--json", "--quiet",
                               "--output", str(runs)], timeout=SMOKE_LIMIT_S)
    elapsed = time.monotonic() - started
    ok = code == 0 and doc is not None and doc.get("valid") and elapsed <= SMOKE_LIMIT_S
    steps["build_and_one_run"] = {
        "passed": bool(ok), "seconds": elapsed,
        "why": "" if ok else (err.splitlines()[-1] if err else f"exit {code}, "
                              f"{elapsed:.0f} s (limit {SMOKE_LIMIT_S:g} s)")}
    log.append(f"build + one run: {'PASS' if ok else 'FAIL'} in {elapsed:.1f} s")
    if not ok:
        return
    for dtype in DTYPES:
        offline_rate = None
        for scenario in SCENARIOS:
            args = ["run", "--workload", a.workload, *_torch_opts(a.device, dtype),
                    "--scenario", scenario, "--duration", f"{duration:g}", "--json", "--quiet",
                    "--output", str(runs), "--warmup", "1"]
            if scenario == "offline":
                args += ["--batch-size", str(batch)]
            elif scenario == "multi-stream":
                args += ["--batch-size", "8"]
            elif scenario == "server":
                qps = 0.5 * (offline_rate or 10.0)
                args += ["--target-qps", f"{qps:.1f}", "--batch-size", str(batch)]
                if not a.device.startswith("cuda"):
                    args += ["--latency-bound-ms", "1000"]  # MLPerf's 15 ms is a GPU's bound
            code, doc, err = _hwbench(args, timeout=max(120.0, 20 * duration))
            key = f"{scenario}/{dtype}"
            if doc is None:
                summary["runs"][key] = {"valid": False, "invalid_reasons": [err or f"exit {code}"]}
                log.append(f"{key}: no result ({err.splitlines()[-1] if err else code})")
                continue
            fig = summary["runs"][key] = _run_figures(doc)
            log.append(f"{key}: exit {code}, {fig['samples_per_s'] or 0:.1f} samples/s")
            if scenario == "offline":
                offline_rate = fig["samples_per_s"]
        summary["bare"][f"offline/{dtype}"] = _bare_loop(a.workload, a.device, dtype, batch,
                                                         duration)
        summary["bare"][f"single-stream/{dtype}"] = _bare_loop(a.workload, a.device, dtype, 1,
                                                               duration)
        _ratios(summary, dtype)
    steps["all_runs"] = {"passed": all(r.get("valid") for r in summary["runs"].values()),
                         "why": "; ".join(f"{k}: {r['invalid_reasons'][0]}"
                                          for k, r in summary["runs"].items()
                                          if not r.get("valid") and r.get("invalid_reasons"))}
    off = summary["runs"].get("offline/fp32") or {}
    if off.get("run_id"):
        code, _, err = _hwbench(["report", str(runs / off["run_id"])], timeout=120)
        steps["report"] = {"passed": code == 0, "why": err.splitlines()[-1] if code and err
                           else ""}
    if a.llm != "none":
        _llm(a, summary, runs, duration, log)


def _llm_figures(doc: dict) -> dict[str, Any]:
    m = doc.get("metrics") or {}
    fid = doc.get("fidelity") or {}
    bounds = m.get("token_bounds") or {}
    return {"run_id": doc.get("run_id"), "valid": doc.get("valid"),
            "invalid_reasons": doc.get("invalid_reasons") or [],
            "precision": (doc.get("backend_info") or {}).get("precision"),
            "device": (doc.get("backend_info") or {}).get("device"),
            "requests_per_s": m.get("completed_samples_per_second") or m.get("samples_per_second"),
            "tokens_per_s": m.get("tokens_per_second"), "output_tokens": m.get("output_tokens"),
            "ttft_ms": m.get("ttft_ms"), "tpot_ms": m.get("tpot_ms"),
            "ttft_met": bounds.get("ttft_met"), "tpot_met": bounds.get("tpot_met"),
            "fidelity": fid.get("observed_precision"), "fidelity_passed": fid.get("passed"),
            "fidelity_top1": fid.get("top1_agreement"), "fidelity_error": fid.get("max_rel_error"),
            "fidelity_note": doc.get("fidelity_note")}


def _llm(a: argparse.Namespace, summary: dict, runs: Path, duration: float,
         log: list[str]) -> None:
    """Step 5: the llm workload in bf16, Offline then Server at half its request rate."""
    rate = None
    for scenario in ("offline", "server"):
        args = ["run", "--workload", "llm", "--model", a.llm, *_torch_opts(a.device, "bf16"),
                "--scenario", scenario, "--duration", f"{duration:g}", "--min-queries", "64",
                "--json", "--quiet", "--output", str(runs)]
        if scenario == "server":
            args += ["--target-qps", f"{0.5 * (rate or 2.0):.2f}"]
        if a.device.startswith("cuda"):  # a GPU's memory holds a serving batch's worth
            args += ["--backend-opt", "max_seqs=256", "--backend-opt", "kv_cache_mb=20480"]
        else:
            args += ["--backend-opt", "threads=1"]  # a small shared CPU (docs/llm.md)
        code, doc, err = _hwbench(args, timeout=600)
        key = f"llm-{a.llm}/{scenario}/bf16"
        if doc is None:
            summary["llm"][key] = {"valid": False, "invalid_reasons": [err or f"exit {code}"]}
            log.append(f"{key}: no result ({err.splitlines()[-1] if err else code})")
            continue
        fig = summary["llm"][key] = _llm_figures(doc)
        log.append(f"{key}: exit {code}, {fig['tokens_per_s'] or 0:.1f} tokens/s")
        if scenario == "offline":
            rate = fig["requests_per_s"]
    done = [f for f in summary["llm"].values() if f.get("run_id")]
    summary["steps"]["llm"] = {
        "passed": len(done) == 2 and all(f["fidelity_passed"] for f in done),
        "why": "; ".join(f"{k}: {(f.get('invalid_reasons') or [f.get('fidelity_note')])[0]}"
                         for k, f in summary["llm"].items()
                         if not (f.get("run_id") and f.get("fidelity_passed")))}


def _ratios(summary: dict, dtype: str) -> None:
    r = summary["ratios"]
    off, bare_off = summary["runs"].get(f"offline/{dtype}"), summary["bare"][f"offline/{dtype}"]
    ss, bare_ss = summary["runs"].get(f"single-stream/{dtype}"), \
        summary["bare"][f"single-stream/{dtype}"]
    if off and off.get("samples_per_s"):
        r[f"offline/{dtype}"] = off["samples_per_s"] / bare_off["samples_per_s"]
    if ss and ss.get("p90_ms"):
        r[f"single-stream-p90/{dtype}"] = ss["p90_ms"] / bare_ss["p90_ms"]


def _throttled(r: dict) -> str:
    if r.get("throttled") is None:
        return "unknown"
    return ("yes: " + ", ".join(r.get("throttle_reasons") or [])) if r["throttled"] else "no"


def _fmt(v: Any, f: str = "{:.2f}") -> str:
    return "-" if v is None else f.format(v)


def _markdown(s: dict) -> str:
    lines = [f"# GPU check: {s['workload']} on {s['device']} ({s['host']}, Python {s['python']})",
             "", f"elapsed {s.get('elapsed_s', 0):.0f} s; {s['duration_s']:g} s per run", "",
             "| step | verdict | detail |", "| --- | --- | --- |"]
    for name, st in s["steps"].items():
        detail = st.get("why") or (f"{st['seconds']:.1f} s" if "seconds" in st else "")
        lines.append(f"| {name} | {'PASS' if st.get('passed') else 'FAIL'} | {detail} |")
    lines += ["", "| run | valid | precision (fidelity) | samples/s | p50 / p90 / p99 ms | "
              "GPU energy/sample J (method) | SM MHz | util % | mem GiB | throttled |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in s["runs"].items():
        g = (r.get("gpus") or [{}])[0]
        gp = (r.get("gpu_power") or [{}])[0]
        energy = (f"{gp['energy_per_sample_j']:.4f} ({gp.get('method')})"
                  if gp.get("energy_per_sample_j") is not None
                  else f"missing: {gp.get('reason') or gp.get('invalid_reason') or 'no NVML'}")
        mem = g.get("mem_used_bytes_max")
        lines.append(
            f"| {key} | {'yes' if r.get('valid') else 'NO'} | {r.get('precision')} "
            f"({r.get('fidelity')}) | {_fmt(r.get('samples_per_s'), '{:,.1f}')} | "
            f"{_fmt(r.get('p50_ms'), '{:.3f}')} / {_fmt(r.get('p90_ms'), '{:.3f}')} / "
            f"{_fmt(r.get('p99_ms'), '{:.3f}')} | {energy} | "
            f"{_fmt(g.get('sm_clock_mhz_mean'), '{:.0f}')} | "
            f"{_fmt(g.get('util_pct_mean'), '{:.0f}')} | "
            f"{_fmt(None if mem is None else mem / 2**30)} | "
            f"{_throttled(r)} |")
    lines += ["", "| harness / bare torch loop | ratio | bar |", "| --- | --- | --- |"]
    for key, v in s["ratios"].items():
        bar = ">= 0.97" if key.startswith("offline") else "<= 1.03"
        lines.append(f"| {key} | {v:.3f} | {bar} |")
    for key, b in s["bare"].items():
        lines.append(f"\nbare {key}: {b['samples_per_s']:,.1f} samples/s, p90 "
                     f"{b['p90_ms']:.3f} ms (batch {b['batch']}, {b['iterations']} iterations)")
    if s.get("llm"):
        lines += ["", "| llm run | valid | precision (fidelity, top-1, error) | requests/s | "
                  "tokens/s | TTFT p50 / p99 ms | TPOT p50 / p99 ms | bounds met (TTFT, TPOT) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key, r in s["llm"].items():
            ttft, tpot = r.get("ttft_ms") or {}, r.get("tpot_ms") or {}
            lines.append(
                f"| {key} | {'yes' if r.get('valid') else 'NO'} | {r.get('precision')} "
                f"({r.get('fidelity')}, {_fmt(r.get('fidelity_top1'), '{:.3f}')}, "
                f"{_fmt(r.get('fidelity_error'), '{:.2g}')}) | "
                f"{_fmt(r.get('requests_per_s'))} | {_fmt(r.get('tokens_per_s'), '{:,.1f}')} | "
                f"{_fmt(ttft.get('p50'), '{:.1f}')} / {_fmt(ttft.get('p99'), '{:.1f}')} | "
                f"{_fmt(tpot.get('p50'), '{:.2f}')} / {_fmt(tpot.get('p99'), '{:.2f}')} | "
                f"{r.get('ttft_met')}, {r.get('tpot_met')} |")
    notes = sorted({n for r in s["runs"].values() for n in r.get("telemetry_notes") or []})
    if notes:
        lines += ["", "Telemetry notes: " + "; ".join(notes)]
    invalid = [f"- {k}: {'; '.join(r['invalid_reasons'])}"
               for k, r in {**s["runs"], **s.get("llm", {})}.items() if r.get("invalid_reasons")]
    if invalid:
        lines += ["", "Invalid runs:", *invalid]
    return "\n".join(lines) + "\n"


def _write(out: Path, summary: dict, runs: Path) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "summary.md").write_text(_markdown(summary))
    report = out / "report.html"
    off = summary["runs"].get("offline/fp32") or {}
    made = runs / str(off.get("run_id")) / "report.html"
    if made.is_file():
        report.write_bytes(made.read_bytes())
    else:
        why = (summary["steps"].get("report") or {}).get("why") or "no fp32 Offline run"
        report.write_text(f"<!doctype html><title>GPU check</title><p>No report: {why}</p>\n")
    with tarfile.open(out / "results.tar.gz", "w:gz") as tar:
        if runs.is_dir():
            tar.add(runs, arcname="runs")


if __name__ == "__main__":
    sys.exit(main())
