"""Robustness: the reference set re-scored under camera corruptions, five severities each.

Reference images (``Workload.raw_images``) are corrupted (hwbench.quality.corruptions), made
8-bit images again as ImageNet-C's are (``eight_bit``: what a camera or a file would hold),
preprocessed as the workload does (``preprocess_images``) and computed by the backend in
batches. This pass is about correctness, so nothing is timed. Accuracy is top-1 against the
workload's labels.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hwbench.backends import Backend
from hwbench.quality.corruptions import CORRUPTIONS, SEVERITIES, corrupt, eight_bit
from hwbench.quality.fidelity import run_in_batches
from hwbench.tables import table
from hwbench.workloads import Workload
from hwbench.workloads.scoring import MIN_SUPPORT

CHUNK = 256  # reference images held at once: bounds memory for large images
MIN_BATCH = 32  # the pass is not timed, so small configured batches are raised to this


def missing_labels(workload: Workload) -> str | None:
    """Why robustness cannot be scored on this workload (no labels), or None."""
    if workload.labels() is None:
        if workload.images_unavailable():  # no labels to give it: another workload is the fix
            return (f"--robustness needs a labelled reference set: {workload.name} has none "
                    "(use --workload digits, resnet50 with --dataset, or a workload file of "
                    "labelled images)")
        return (f"--robustness needs a labelled reference set: {workload.name} has none here "
                "(use --workload digits, or give the workload its --dataset)")
    return None


def missing_images(workload: Workload) -> str | None:
    """Why there is nothing to corrupt (the workload does not expose raw images), or None."""
    return workload.images_unavailable()


def sample_indices(total: int, limit: int | None, seed: int) -> np.ndarray:
    """Every sample, or a fixed seeded subset of `limit` of them, in index order."""
    if limit is None or limit >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng([seed, 0xC0]).choice(total, size=limit, replace=False))


def run(workload: Workload, backend: Backend, batch_size: int, seed: int, limit: int | None,
        progress: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scores clean and corrupted reference images; returns (result section, full report)."""
    idx = sample_indices(len(workload.labels()), limit, seed)
    labels = workload.labels()[idx]
    cap = backend.info().max_batch_size
    batch = min(max(batch_size, MIN_BATCH), cap) if cap else max(batch_size, MIN_BATCH)
    names = list(CORRUPTIONS)
    clean = np.empty(len(idx), np.int64)
    preds = np.empty((len(names), len(SEVERITIES), len(idx)), np.int64)

    def predict(images: np.ndarray) -> np.ndarray:
        outputs = run_in_batches(backend, workload.preprocess_images(images), batch)
        # The workload's own reading of the outputs (MLPerf's 1001-class model: background dropped).
        return workload.class_scores(outputs).argmax(axis=1)

    for start in range(0, len(idx), CHUNK):
        chunk = idx[start:start + CHUNK]
        raw = workload.raw_images(chunk)
        stop = start + len(chunk)
        clean[start:stop] = predict(raw)
        for c, name in enumerate(names):
            for s in SEVERITIES:
                preds[c, s - 1, start:stop] = predict(corrupted(raw, name, s, seed, chunk))
        progress(f"robustness: {stop:,} / {len(idx):,} samples x {preds.shape[0] * preds.shape[1]}"
                 " corruptions scored")
    section, full = report(labels, clean, preds, names, seed)
    full["definitions"] = {n: {"params": list(CORRUPTIONS[n].params),
                               "source": CORRUPTIONS[n].source} for n in names}
    return section, full


def corrupted(raw: np.ndarray, name: str, severity: int, seed: int,
              indices: np.ndarray) -> np.ndarray:
    """Reference images under one corruption, as the 8-bit images the model would be given."""
    return eight_bit(corrupt(raw, name, severity, seed, indices))


def _recall(pred: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    support = np.bincount(labels, minlength=classes)
    hits = np.bincount(labels[pred == labels], minlength=classes)
    return np.where(support > 0, hits / np.maximum(support, 1), np.nan)


def _floats(a: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in a]


def report(labels: np.ndarray, clean: np.ndarray, preds: np.ndarray, names: list[str],
           seed: int, min_support: int = MIN_SUPPORT) -> tuple[dict[str, Any], dict[str, Any]]:
    """The contract's section (result.json) and the full per-class tables (robustness.json).
    The worst class is named only among classes with at least `min_support` samples."""
    classes = int(max(labels.max(), clean.max(), preds.max())) + 1
    acc = (preds == labels).mean(axis=2)  # (corruption, severity)
    clean_acc = float((clean == labels).mean())
    mean_acc = float(acc.mean())
    c, s = np.unravel_index(np.argmin(acc), acc.shape)
    support = np.bincount(labels, minlength=classes)
    recall = np.stack([[_recall(p, labels, classes) for p in row] for row in preds])
    under = np.full(classes, np.nan)  # mean recall over every corruption and severity
    under[support > 0] = recall[..., support > 0].reshape(-1, int((support > 0).sum())).mean(0)
    clean_recall = _recall(clean, labels, classes)
    judged = np.where(support >= max(min_support, 1), under, np.nan)
    worst_cls = None if np.isnan(judged).all() else int(np.nanargmin(judged))
    section = {
        "samples": len(labels), "seed": seed, "clean_accuracy": clean_acc,
        "corruptions": {n: {str(k): float(acc[i, k - 1]) for k in SEVERITIES}
                        for i, n in enumerate(names)},
        "mean_corruption_accuracy": mean_acc,
        "relative_drop": 1 - mean_acc / clean_acc if clean_acc > 0 else None,
        "worst": {"corruption": names[c], "severity": int(s) + 1, "accuracy": float(acc[c, s])},
        "worst_class": None if worst_cls is None else {
            "class": worst_cls, "recall": float(under[worst_cls]),
            "clean_recall": float(clean_recall[worst_cls]), "support": int(support[worst_cls])},
        "worst_class_min_support": min_support,
    }
    per_class = {n: {str(k): _floats(recall[i, k - 1]) for k in SEVERITIES}
                 for i, n in enumerate(names)}
    full = {**section, "support": support.tolist(),
            "per_class_recall": {"clean": _floats(clean_recall), **per_class},
            "per_class_recall_under_corruption": _floats(under)}
    return section, full


def grid(section: dict[str, Any]) -> str:
    """Top-1 per corruption and severity as a grid, then the headline figures."""
    rows = [(name, *[by_sev[str(k)] for k in SEVERITIES], float(np.mean(list(by_sev.values()))))
            for name, by_sev in section["corruptions"].items()]
    head = ("corruption", *[f"sev {k}" for k in SEVERITIES], "mean")
    title = (f"Robustness: top-1 under corruption ({section['samples']:,} samples, "
             f"seed {section['seed']})")
    w = section["worst"]
    drop = section["relative_drop"]
    lines = [table(head, rows, title=title),
             f"clean {section['clean_accuracy']:.4f} · mean under corruption "
             f"{section['mean_corruption_accuracy']:.4f} · relative drop "
             f"{'-' if drop is None else f'{drop:.1%}'}",
             f"worst: {w['corruption']} severity {w['severity']} ({w['accuracy']:.4f}) · "
             + worst_class_words(section)]
    return "\n".join(lines)


def worst_class_words(section: dict[str, Any]) -> str:
    """The worst class under corruption, or why none is named (too few samples per class)."""
    wc = section.get("worst_class")
    least = section.get("worst_class_min_support") or 1
    if wc is None:
        return (f"no worst class named: no class has {least} or more samples (a recall on fewer "
                "moves by a tenth with one sample; per-class recall is in robustness.json)")
    return (f"worst class under corruption (of those with {least}+ samples): {wc['class']} "
            f"(recall {wc['recall']:.4f}, clean {wc['clean_recall']:.4f})")
