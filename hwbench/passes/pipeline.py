"""``--pipeline``: which timed path a run's passes measure, and the comparison of the two.

* ``model`` (MLPerf's definition): the passes run as they always have; no pipeline section.
* ``full``: every pass (calibration, accuracy, performance, find-peak steps) serves each sample
  from its encoded file through decode, preprocessing, batching, the backend and post-processing
  (hwbench.harness.pipeline). Accuracy is scored on that path's outputs.
* ``both``: the model-only performance pass (or find-peak in Server) first, then everything
  through the whole pipeline, on the same samples and settings. The run's metrics and
  samples.npz are the whole pipeline's; the model-only pass's figures are in the pipeline
  section and its samples in samples_model_only.npz.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hwbench.passes import peak
from hwbench.passes.run import Run
from hwbench.results import pipeline as section

MODEL_ONLY_SAMPLES = "samples_model_only.npz"


def run_passes(run: Run, mode_passes: Callable[[Run], None]) -> None:
    """The passes of the run's mode on the path(s) ``--pipeline`` names, then its section."""
    mode = run.cfg.pipeline
    if mode == "model":
        mode_passes(run)
        return
    model_only = _model_only(run) if mode == "both" else None
    run.full = True
    try:
        if not run.stopped():
            mode_passes(run)
    finally:
        run.full = False
        run.doc["pipeline"] = _section(run, model_only)


def _model_only(run: Run) -> dict[str, Any] | None:
    """The model-only path's performance (or find-peak) pass; its reasons to be invalid stay
    the run's, named as the model-only path's."""
    cfg, doc = run.cfg, run.doc
    if cfg.mode == "accuracy":
        return None  # nothing timed to compare: accuracy is scored on the whole pipeline
    before = len(doc["invalid_reasons"])
    peak_qps = None
    if cfg.mode == "find-peak":
        peak.find_peak(run)
        peak_qps = doc["find_peak"]["peak_qps"]
        found = doc["find_peak"]
    else:
        out = run.performance(target_qps=1.0)  # Server needs find-peak (config refuses it)
        doc["invalid_reasons"] += list(out["summary"].invalid_reasons)
        found = None
    doc["invalid_reasons"][before:] = [f"model-only path: {r}"
                                      for r in doc["invalid_reasons"][before:]]
    figures = section.path_figures(doc["metrics"], peak_qps)
    if figures is not None:
        figures["valid"] = bool(doc["validated"]["performance"])
        figures["find_peak"] = found
    if "samples.npz" in run.samples:
        run.samples[MODEL_ONLY_SAMPLES] = run.samples.pop("samples.npz")
    for key in ("metrics", "find_peak", "latency_windows"):
        doc[key] = None
    doc["validated"]["performance"] = None
    return figures


def _section(run: Run, model_only: dict[str, Any] | None) -> dict[str, Any]:
    doc = run.doc
    cols = run.samples.get("samples.npz")
    if not section.has_stages(cols):
        cols = run.samples.get("samples_accuracy.npz")  # --mode accuracy: its one pass
    peak_qps = (doc.get("find_peak") or {}).get("peak_qps")
    end_to_end = section.path_figures(doc["metrics"], peak_qps)
    if end_to_end is not None:
        end_to_end["valid"] = bool(doc["validated"]["performance"])
    workers = {"preprocess_workers": run.cfg.preprocess_workers,
               "instances": run.cfg.instances}
    out = section.section(run.cfg.pipeline, cols, workers, end_to_end, model_only)
    out["answers_top1"] = _answers_top1(run)
    return out


def _answers_top1(run: Run) -> float | None:
    """Top-1 of the post-processed answers the accuracy pass's timed path returned (each
    sample's first class), against the labels: the figure a user of the pipeline gets, which
    must equal the scored top-1."""
    answers, labels = run.accuracy_answers, run.workload.labels()
    if not answers or labels is None or len(answers) != len(labels):
        return None
    first = [int(np.asarray(answers[i]).reshape(-1)[0]) for i in range(len(labels))]
    return float(np.mean(np.array(first) == labels))
