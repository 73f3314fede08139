"""The robustness pass: digits end to end through the CLI with the real onnxruntime backend, the
report's arithmetic, a fixed seeded subset, and what happens without labels, images or a
working backend."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import FAST, cli, register_backend, run_json
from hwbench import backends, workloads
from hwbench.quality import robustness
from hwbench.backends.cpu import CpuBackend
from hwbench.quality.corruptions import CORRUPTIONS
from hwbench.workloads.base import Workload
from hwbench.workloads.digits import Digits


def test_digits_both_modes_with_robustness_end_to_end(capsys, out_dir):
    code, out, err = cli(capsys, "run", "--output", str(out_dir), "--workload", "digits",
                         "--backend", "cpu", "--mode", "both", "--robustness", *FAST)
    assert code == 0, out
    run_dir = next(p for p in out_dir.iterdir() if p.is_dir())
    doc = json.loads((run_dir / "result.json").read_text())
    assert doc["valid"] and doc["validated"] == {"performance": True, "accuracy": True,
                                              "fidelity": True}
    r = doc["robustness"]
    assert r["samples"] == 539 and r["seed"] == 1
    assert r["clean_accuracy"] == doc["accuracy"]["value"]  # same images, same model
    assert set(r["corruptions"]) == set(CORRUPTIONS)
    accs = [a for by_sev in r["corruptions"].values() for a in by_sev.values()]
    assert r["mean_corruption_accuracy"] == pytest.approx(np.mean(accs))
    assert r["relative_drop"] == pytest.approx(1 - np.mean(accs) / r["clean_accuracy"])
    assert r["worst"]["accuracy"] == min(accs) < r["clean_accuracy"]
    assert r["corruptions"]["gaussian_noise"]["5"] < r["corruptions"]["gaussian_noise"]["1"]
    full = json.loads((run_dir / "robustness.json").read_text())
    assert len(full["per_class_recall"]["contrast"]["5"]) == 10 and sum(full["support"]) == 539
    # The grid a person reads: one row per corruption, one column per severity.
    assert "Robustness: top-1 under corruption (539 samples, seed 1)" in out
    row = next(line for line in out.splitlines() if line.startswith("contrast "))
    assert len(row.split()) == 7
    assert "relative drop" in (run_dir / "summary.txt").read_text()
    assert "robustness: 539 / 539 samples" in err  # progress


def test_a_limited_subset_is_fixed_by_the_seed():
    w, cpu = Digits(), backends.create("cpu")
    cpu.load(w.artifact())
    try:
        a, full = robustness.run(w, cpu, 8, seed=3, limit=40, progress=lambda _: None)
        b, _ = robustness.run(w, cpu, 1, seed=3, limit=40, progress=lambda _: None)
    finally:
        cpu.close()
    assert a == b and a["samples"] == 40 and sum(full["support"]) == 40
    idx = robustness.sample_indices(539, 40, 3)
    assert len(set(idx)) == 40 and not np.array_equal(idx, robustness.sample_indices(539, 40, 4))


def test_report_arithmetic_on_known_predictions():
    labels = np.array([0, 0, 1, 1])
    clean = np.array([0, 0, 1, 0])  # 3 of 4
    preds = np.tile(labels, (2, 5, 1))
    preds[1, 4] = [1, 1, 1, 1]  # second corruption, severity 5: class 0 always wrong
    section, full = robustness.report(labels, clean, preds, ["a", "b"], seed=9)
    assert section["clean_accuracy"] == 0.75
    assert section["corruptions"]["b"]["5"] == 0.5 and section["corruptions"]["a"]["1"] == 1.0
    assert section["mean_corruption_accuracy"] == pytest.approx(0.95)
    assert section["relative_drop"] == pytest.approx(1 - 0.95 / 0.75)
    assert section["worst"] == {"corruption": "b", "severity": 5, "accuracy": 0.5}
    assert section["worst_class"] == {"class": 0, "recall": pytest.approx(0.9),
                                      "clean_recall": 1.0}
    assert full["per_class_recall"]["b"]["5"] == [0.0, 1.0]


def test_robustness_without_labels_is_refused_before_anything_runs(capsys, out_dir):
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--robustness",
                         "--output", str(out_dir))
    assert code == 2 and err.strip().count("\n") == 0
    assert "--robustness needs a labelled reference set: tiny has none" in err
    assert not out_dir.exists()


@pytest.mark.parametrize("args,expect", [
    (["--robustness", "--robustness-samples", "0"], "--robustness-samples must be >= 1"),
    (["--robustness-samples", "10"], "add --robustness"),
])
def test_bad_robustness_options(capsys, out_dir, args, expect):
    code, out, err = cli(capsys, "run", "--workload", "digits", "--output", str(out_dir), *args)
    assert code == 2 and expect in err and not out_dir.exists()


class DigitsWithoutImages(Digits):
    """Digits as a workload that has labels but does not expose its images."""

    raw_images = Workload.raw_images


def test_a_workload_without_images_gets_a_null_section_and_a_note(capsys, out_dir, monkeypatch):
    real = workloads.workload_class
    monkeypatch.setattr(workloads, "workload_class",
                        lambda name: DigitsWithoutImages if name == "digits" else real(name))
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--robustness",
                         "--scenario", "single-stream", *FAST)
    assert code == 0 and doc["robustness"] is None
    assert "does not expose its reference images" in doc["robustness_note"]


class BatchShy(CpuBackend):
    """The real onnxruntime backend, which faults on any batch of more than one sample."""

    name = "batch-shy"

    def run(self, batch):
        if len(batch) > 1:
            raise RuntimeError("simulated fault on a large batch")
        return super().run(batch)


def test_a_robustness_failure_keeps_the_performance_results(capsys, out_dir, monkeypatch):
    register_backend(monkeypatch, BatchShy)
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "batch-shy",
                         "--robustness", "--scenario", "single-stream", *FAST)
    assert code == 3 and not doc["valid"] and doc["validated"]["performance"] is True
    assert doc["metrics"]["completed_samples"] > 0 and doc["fidelity"]["passed"]
    assert doc["robustness"] is None
    assert "simulated fault on a large batch" in doc["robustness_note"]
    assert any(r.startswith("robustness check failed: RuntimeError")
               for r in doc["invalid_reasons"])
    assert (out_dir / doc["run_id"] / "samples.npz").is_file()
