"""Correctness checks that follow a run's measured passes, outside any timing: fidelity against
the FP32 reference (every run), robustness under corruptions (``--robustness``) and a soak's
drift (``--soak-minutes``).

Each check fills its section of the result, or leaves it null with a note saying why. A check that
fails (a backend fault, a model the reference cannot load) makes the run invalid with the reason
and keeps everything measured before it.
"""
from __future__ import annotations

import numpy as np

from hwbench.harness.loadgen import Scenario
from hwbench.passes import precision
from hwbench.passes.run import Run
from hwbench.quality import fidelity as _fidelity
from hwbench.quality import llm_fidelity as _llm
from hwbench.quality import robustness as _robustness
from hwbench.results import drift as _drift


def fidelity(run: Run) -> None:
    """A seeded subset of the performance samples through the backend and the FP32 reference:
    catches a backend that computes coarser than it declares."""
    if _computes_nothing(run, "fidelity"):
        return
    if run.workload.generative:
        _llm_fidelity(run)
        return
    population = run.loadgen_settings().performance_sample_count
    inputs = run.workload.load_samples(_fidelity.subset(population, run.cfg.seed))
    run.say.info(f"fidelity: {len(inputs)} samples against the FP32 reference")
    source = run.workload.artifact()
    try:
        section, failure = _fidelity.check(
            run.backend, source, inputs, run.cfg.batch_size, run.artifact.precision,
            convert=lambda p: precision.convert(source, p, run.workload, run.say.info))
    except Exception as exc:  # a backend fault, or a model the reference cannot load
        _failed(run, "fidelity", exc)
        return
    run.doc["fidelity"] = section
    if failure:
        run.doc["invalid_reasons"].append(f"fidelity: {failure}")


def _llm_fidelity(run: Run) -> None:
    """A generative run: the backend's teacher-forced logits against the FP32 reference's, on a
    few seeded requests (hwbench.quality.llm_fidelity)."""
    population = run.loadgen_settings().performance_sample_count
    indices = _fidelity.subset(population, run.cfg.seed, _llm.FIDELITY_REQUESTS)
    requests = run.workload.load_requests(indices)
    run.say.info(f"fidelity: {len(requests)} requests teacher-forced against the FP32 reference")
    try:
        section, failure = _llm.check(run.backend, run.workload.artifact(), requests)
    except NotImplementedError as exc:  # a streaming backend without teacher-forced logits
        run.doc["fidelity_note"] = f"fidelity not checked: {exc}"
        return
    except Exception as exc:  # a backend fault, or a model the reference cannot build
        _failed(run, "fidelity", exc)
        return
    run.doc["fidelity"] = section
    if failure:
        run.doc["invalid_reasons"].append(f"fidelity: {failure}")


def robustness(run: Run) -> None:
    """The reference set under camera corruptions; robustness.json holds the per-class tables."""
    why_not = _robustness.missing_images(run.workload)
    if why_not:
        run.doc["robustness_note"] = why_not
        return
    if _computes_nothing(run, "robustness"):
        return
    run.say.info("robustness: 10 corruptions x 5 severities")
    try:
        section, full = _robustness.run(run.workload, run.backend, run.cfg.batch_size,
                                        run.cfg.seed, run.cfg.robustness_samples, run.say.info)
    except Exception as exc:  # keep what the earlier passes measured
        _failed(run, "robustness", exc)
        return
    run.doc["robustness"] = section
    run.files["robustness.json"] = full


def drift(run: Run) -> None:
    """A soak's windows and trend tests: throughput, latency and, where the accuracy pass gave
    answers to compare with, the top-1 agreement of the soak's answers with them."""
    cols = run.samples.get("samples.npz")
    if run.cfg.soak_minutes is None or cols is None:
        return
    cols = dict(cols)
    note = None
    acc = run.accuracy_outputs
    if "top1" not in cols:
        note = "top-1 agreement not measured: the workload's answers are not classes"
    elif not run.backend.info().computes:
        note = (f"top-1 agreement not measured: backend {run.cfg.backend} computes nothing")
    elif not acc:
        note = "top-1 agreement not measured: it needs the accuracy pass's answers (--mode both)"
    else:
        ref = np.full(int(cols["sample_index"].max()) + 1 if len(cols["sample_index"]) else 0,
                      -1, dtype=np.int64)
        for i, out in acc.items():
            if i < len(ref):
                ref[i] = int(np.asarray(out).argmax())
        want = ref[cols["sample_index"].astype(np.int64)] if len(ref) else np.zeros(0, np.int64)
        got = cols["top1"].astype(np.int64)
        cols["agrees"] = np.where((want < 0) | (got < 0), -1, (want == got).astype(np.int64))
    offline = run.loadgen_settings().scenario == Scenario.Offline
    section = _drift.analyse(cols, run.cfg.window_s, offline, note)
    run.doc["drift"] = section
    for line in _drift.describe(section):
        run.say.info(line)


def explain_missing(run: Run) -> None:
    """Notes for the sections still null when the run is written."""
    doc = run.doc
    if doc["fidelity"] is None and doc["fidelity_note"] is None:
        doc["fidelity_note"] = "fidelity not checked: the run stopped before its check"
    if doc["robustness"] is None and doc["robustness_note"] is None:
        doc["robustness_note"] = ("robustness not measured: the run stopped before its pass"
                                  if run.cfg.robustness else "robustness not run: use --robustness")


def _computes_nothing(run: Run, check: str) -> bool:
    info = run.backend.info()
    if not info.computes:
        run.doc[f"{check}_note"] = (f"{check} not checked: backend {info.name} computes "
                                    "nothing, so its outputs mean nothing")
    return not info.computes


def _failed(run: Run, check: str, exc: Exception) -> None:
    reason = f"{check} check failed: {type(exc).__name__}: {exc}"
    run.doc[f"{check}_note"] = reason
    run.doc["invalid_reasons"].append(reason)
