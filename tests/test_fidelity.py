"""Fidelity against the FP32 reference: the real cpu backend agrees exactly; a backend that
rounds or perturbs its outputs while declaring fp32 is caught, named, and makes the run invalid."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from cli_helpers import FAST, register_backend, run_json
from hwbench import backends
from hwbench.backends import Backend, BackendInfo
from hwbench.backends.cpu import CpuBackend
from hwbench.quality.fidelity import check, compare, observed_precision, subset
from hwbench.workloads.digits import Digits
from hwbench.workloads.tiny import Tiny


class Degraded(Backend):
    """The real onnxruntime CPU backend, wrapped; its outputs are coarsened by `degrade` while it
    still declares `declares`. (A real lower-precision device cannot run here.)"""

    name: ClassVar[str] = "degraded"
    description: ClassVar[str] = "cpu, outputs coarsened"
    declares = "fp32"

    def __init__(self, options=None) -> None:
        super().__init__(options or {})
        self.inner = CpuBackend(CpuBackend.parse_options(()))

    @classmethod
    def availability(cls):
        return CpuBackend.availability()

    def load(self, model) -> None:
        self.inner.load(model)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.degrade(self.inner.run(batch))

    def degrade(self, out: np.ndarray) -> np.ndarray:
        return out.astype(np.float16).astype(np.float32)

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, device="cpu", precision=self.declares)

    def close(self) -> None:
        self.inner.close()


class Bf16(Degraded):
    def degrade(self, out: np.ndarray) -> np.ndarray:
        bits = out.astype(np.float32).view(np.uint32)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000  # round to nearest even
        return rounded.view(np.float32)


class Perturbed(Degraded):
    def degrade(self, out: np.ndarray) -> np.ndarray:
        noise = np.random.default_rng(len(out)).standard_normal(out.shape)
        return (out + 0.02 * np.abs(out).max() * noise).astype(np.float32)


def _check(backend: Backend, workload=None) -> tuple[dict, str | None]:
    w = workload or Digits()
    art = w.artifact()
    backend.load(art)
    try:
        return check(backend, art, w.load_samples(subset(w.sample_count(), 1)), batch_size=4)
    finally:
        backend.close()


def test_the_real_cpu_backend_agrees_exactly_and_says_it_is_the_reference():
    section, failure = _check(backends.create("cpu"))
    assert failure is None and section["passed"]
    assert section["samples"] == 32 and section["top1_agreement"] == 1.0
    assert section["max_abs_error"] == 0.0 and section["cosine_min"] == pytest.approx(1.0)
    assert section["observed_precision"] == section["declared_precision"] == "fp32"
    assert "FP32 reference itself" in section["findings"][0]


def test_synthetic_weights_work_too():
    section, failure = _check(backends.create("cpu"), Tiny())
    assert failure is None and section["max_abs_error"] == 0.0


@pytest.mark.parametrize("cls,observed", [(Degraded, "fp16"), (Bf16, "bf16"),
                                          (Perturbed, "int8")])
def test_a_backend_computing_coarser_than_it_declares_is_flagged(cls, observed):
    section, failure = _check(cls())
    assert not section["passed"] and section["observed_precision"] == observed
    assert failure == section["findings"][0]
    assert f"declares fp32 but its outputs match {observed}" in failure
    assert "reference itself" not in " ".join(section["findings"])
    assert 0 < section["max_abs_error"] and section["cosine_min"] < 1.0


def test_a_backend_that_declares_its_lower_precision_passes():
    honest = Degraded()
    honest.declares = "fp16"
    section, failure = _check(honest)
    assert failure is None and section["passed"] and section["observed_precision"] == "fp16"


def test_comparison_figures_against_direct_computation():
    ref = np.array([[1.0, -2.0, 4.0], [0.5, 0.25, 0.0]])
    out = ref + np.array([[0.0, 0.004, 0.0], [0.0, 0.0, 0.6]])
    f = compare(out, ref)
    assert f["top1_agreement"] == 0.5  # the second sample's argmax moves to class 2
    assert f["max_abs_error"] == pytest.approx(0.6)
    assert f["max_rel_error"] == pytest.approx(0.6 / 0.5)
    cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
    assert f["cosine_min"] == pytest.approx(cos.min())
    assert f["cosine_mean"] == pytest.approx(cos.mean())
    zeros = compare(np.zeros((2, 3)), np.zeros((2, 3)))
    assert zeros["cosine_min"] == 1.0 and zeros["observed_precision"] == "fp32"
    assert [observed_precision(e) for e in (0, 1e-6, 4.9e-4, 3.9e-3, 0.05, 0.5)] == \
        ["fp32", "fp32", "fp16", "bf16", "int8", "worse than int8"]


def test_cli_run_with_a_degraded_backend_is_invalid_and_names_it(capsys, out_dir, monkeypatch):
    register_backend(monkeypatch, Degraded)
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "degraded",
                         "--scenario", "single-stream", *FAST)
    assert code == 3 and not doc["valid"] and doc["validated"]["performance"] is True
    assert doc["fidelity"]["observed_precision"] == "fp16"
    assert any(r.startswith("fidelity: backend degraded declares fp32 but its outputs match fp16")
               for r in doc["invalid_reasons"])


def test_cli_null_backend_has_no_fidelity_and_says_why(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "single-stream", *FAST)
    assert code == 0 and doc["fidelity"] is None
    assert "computes nothing" in doc["fidelity_note"]


def test_cli_cpu_run_records_fidelity(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "cpu",
                         "--scenario", "single-stream", *FAST)
    assert code == 0 and doc["fidelity"]["passed"] and doc["fidelity_note"] is None
    assert doc["fidelity"]["reference"] == "cpu (onnxruntime fp32)"


def test_expected_precision_reads_the_first_word_and_the_models_precision():
    from hwbench.quality.fidelity import expected_precision

    assert expected_precision("fp32") == "fp32"
    assert expected_precision("fp16 (fp32 where onnxruntime's CPU provider has no fp16 kernel)",
                              "fp16") == "fp16"
    assert expected_precision("int8 (other ops bf16)", "int8") == "int8"
    assert expected_precision("fp32", "int8") == "int8"  # a model lowered on purpose
    assert expected_precision("bf16", "fp16") == "bf16"  # the coarser of the two
    assert expected_precision("mystery") == "mystery"  # no known error level: not judged


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_cli_a_converted_model_is_judged_at_its_own_precision(capsys, out_dir, precision):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "cpu",
                         "--scenario", "single-stream", "--precision", precision, *FAST)
    f = doc["fidelity"]
    assert code == 0 and f["passed"], doc["invalid_reasons"]
    assert f["artifact_precision"] == precision and f["expected_precision"] == precision
    assert not any("reference itself" in x for x in f["findings"])
