"""One run through the house: config -> workload -> backend -> load generator -> result on disk.

Whatever happens once measuring has begun (a backend fault, Ctrl-C, a bug), the run is written:
marked invalid with the reason, with everything measured so far.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hwbench import backends
from hwbench.passes import checks, peak, pipeline, precision
from hwbench.config import RunConfig
from hwbench.errors import HwbenchError, PassStopped, UsageError
from hwbench.passes.run import Run
from hwbench.harness.progress import Reporter
from hwbench.results.store import output_root, write_run
from hwbench.results.summary import summary_text
from hwbench.telemetry.power import requested_failures

EXIT_VALID, EXIT_INTERNAL, EXIT_USAGE, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@dataclass
class Outcome:
    """A finished run: its result document, where it was written, and the exit status."""

    result: dict[str, Any]
    run_dir: Path | None
    exit_code: int
    # A backend call was abandoned, its thread left running: whatever runs next must not reuse
    # the backend, and the process should end without finalising the interpreter.
    abandoned: bool = False


def execute(cfg: RunConfig, reporter: Reporter,
            annotate: Callable[[dict[str, Any]], None] | None = None,
            passes: Callable[[Run], None] | None = None) -> Outcome:
    """Runs `cfg` and writes its result. Bad input raises UsageError before anything runs.

    `annotate`, when given, may add to the finished document just before it is written (a
    ``--repeat`` series records its group and spread this way). `passes` replaces the passes
    the run's mode asks for (``hwbench audit`` runs its checks this way).
    """
    root = output_root(cfg.output)
    if passes is not None and cfg.pipeline != "model":
        raise UsageError(f"--pipeline {cfg.pipeline} is not checked by these passes (they run "
                         "the model-only path): drop --pipeline")
    run = Run(cfg, reporter)
    try:
        source = run.workload.artifact(progress=reporter.info)
        limit = run.workload.batch_limit()
        if limit and cfg.batch_size > limit:
            raise UsageError(f"--batch-size {cfg.batch_size}: {source.path.name} takes batches "
                             f"of at most {limit} (a fixed batch dimension): use --batch-size "
                             f"{limit}, or export the model with a dynamic batch")
        run.workload.prepare(progress=reporter.info)
        artifact = run.artifact = precision.convert(source, cfg.precision, run.workload,
                                                    reporter.info)
        run.instances.load(artifact)
        info = run.backend.info()
        if info.max_batch_size and cfg.batch_size > info.max_batch_size:
            raise UsageError(f"--batch-size {cfg.batch_size} exceeds backend {info.name}'s "
                             f"limit of {info.max_batch_size}: lower it or raise the backend's")
    except BaseException:
        run.instances.close()
        _close_telemetry(run)
        raise
    run.doc["backend_info"] = _info_dict(info)
    run.doc["backend_info"]["concurrency"] = run.instances.describe()
    run.doc["workload_info"] = run.workload.describe()
    run.doc["workload_info"]["artifact"] = precision.describe(artifact, source)
    try:
        (passes or _passes)(run)
    except KeyboardInterrupt:
        run.doc["interrupted"] = True
        run.doc["invalid_reasons"].append("interrupted by the user (Ctrl-C)")
    except PassStopped as stop:
        run.doc["invalid_reasons"] += stop.reasons
    except HwbenchError as exc:
        run.doc["invalid_reasons"].append(str(exc))
    except Exception as exc:  # a bug: keep what was measured, say what broke
        run.internal_error = True
        run.doc["invalid_reasons"].append(f"internal error: {type(exc).__name__}: {exc}")
        run.doc["traceback"] = traceback.format_exc()
    finally:
        if run.stuck:  # a call is still inside a backend: neither read nor close any of them
            run.doc["backend_info"]["device_compute_ms"] = None
            run.doc["backend_info"]["request_errors"] = None
        else:
            run.doc["backend_info"]["device_compute_ms"] = _spread(
                run.instances.device_compute_ms())
            run.doc["backend_info"]["request_errors"] = run.instances.request_errors()
            run.instances.close()
        _close_telemetry(run)
    return _finish(run, root, annotate)


def _passes(run: Run) -> None:
    """The passes the run's mode asks for, on the path(s) --pipeline names (model alone, the
    whole pipeline, or both), then the checks that follow them."""
    pipeline.run_passes(run, _mode_passes)
    if not run.stopped():
        checks.fidelity(run)
    if run.cfg.robustness and not run.stopped():
        checks.robustness(run)
    checks.drift(run)  # reads what the soak measured: also after an interruption


def _mode_passes(run: Run) -> None:
    """The passes the run's mode asks for."""
    mode = run.cfg.mode
    if mode in ("accuracy", "both"):
        run.accuracy()
    if mode in ("performance", "both") and not run.stopped():
        qps = run.server_qps() if run.spec.loadgen_scenario == "Server" else 1.0
        out = run.performance(target_qps=qps)
        run.doc["invalid_reasons"] += list(out["summary"].invalid_reasons)
    if mode == "find-peak":
        peak.find_peak(run)


def _close_telemetry(run: Run) -> None:
    if run.telemetry is not None:
        run.telemetry.close()


def _finish(run: Run, root: Path,
            annotate: Callable[[dict[str, Any]], None] | None = None) -> Outcome:
    doc = run.doc
    doc["invalid_reasons"] += requested_failures(doc["power"])
    v = doc["validated"]
    if isinstance(doc["fidelity"], dict) and doc["fidelity"].get("passed") is not None:
        v["fidelity"] = bool(doc["fidelity"]["passed"])
    doc["valid"] = (not doc["invalid_reasons"] and not doc["interrupted"]
                    and v["performance"] is not False and v["accuracy"] is not False
                    and (v["performance"] or v["accuracy"]) is True)
    if doc["accuracy"] is None and doc["accuracy_note"] is None:
        doc["accuracy_note"] = (run.workload.accuracy_unavailable()
                                or "accuracy not run: use --mode accuracy or both")
    checks.explain_missing(run)
    if annotate is not None:
        annotate(doc)
    run_dir = write_run(root, doc, summary_text(doc), run.samples, run.files)
    if doc["interrupted"]:
        code = EXIT_INTERRUPTED
    elif run.internal_error:
        code = EXIT_INTERNAL
    else:
        code = EXIT_VALID if doc["valid"] else EXIT_INVALID
    return Outcome(doc, run_dir, code, abandoned=run.stuck)


def _info_dict(info: backends.BackendInfo) -> dict[str, Any]:
    return {"name": info.name, "device": info.device, "precision": info.precision,
            "max_batch_size": info.max_batch_size, "streams": info.streams,
            "versions": info.versions, "options": info.options}


def _spread(times_ms: list[float] | None) -> dict[str, float] | None:
    """The device's own compute times (CUDA events), beside the load generator's latency."""
    if not times_ms:
        return None
    t = sorted(times_ms)
    return {"calls": len(t), "mean": sum(t) / len(t), "p50": t[len(t) // 2],
            "p90": t[int(0.9 * len(t))], "max": t[-1]}
