"""Fidelity against the FP32 reference: the real cpu backend agrees exactly; a backend that
rounds or perturbs its outputs while declaring fp32 is caught, named, and makes the run invalid."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from cli_helpers import FAST, register_backend, run_json
from deep_model import deep_classifier
from hwbench import backends
from hwbench.backends import Backend, BackendInfo
from hwbench.backends.cpu import CpuBackend
from hwbench.passes import precision
from hwbench.quality.fidelity import (BELOW_BF16, BELOW_INT8, FIXED, PRECISION_BANDS, check,
                                      compare, measure_envelope, model_envelope, subset)
from hwbench.workloads.digits import Digits
from hwbench.workloads.tiny import Tiny
from test_imagenet import make_dataset


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
    """Fidelity of `backend` on the workload's model, judged against that model's envelope."""
    w = workload or Digits()
    art = w.artifact()
    backend.load(art)
    try:
        return check(backend, art, w.load_samples(subset(w.sample_count(), 1)), batch_size=4,
                     convert=lambda p: precision.convert(art, p, w))
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
    """On digits (fp16 envelope 2.6e-4 of scale, int8 0.18): outputs rounded to fp16 or bf16
    are named so; 2% Gaussian noise (0.087 of scale) is within the model's own int8 error."""
    section, failure = _check(cls())
    assert section["envelope"]["method"].startswith("model: fp16 measured")
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
    assert zeros["cosine_min"] == 1.0 and zeros["max_rel_error"] == 0.0
    # The fixed bands, used where a model's envelope cannot be measured.
    assert [FIXED.level(e) for e in (0, 1e-6, 4.9e-4, 3.9e-3, 0.05, 0.5)] == \
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


class RoundsEveryTensor(Backend):
    """Runs the model in onnxruntime with every weight and every intermediate tensor rounded to
    `dtype` (a Cast there and back after each node), as a device that stores tensors in that
    format computes; declares `declares`. (A real fp16 or bf16 device cannot run here.)"""

    name: ClassVar[str] = "rounding"
    description: ClassVar[str] = "cpu, every tensor rounded"
    dtype = onnx.TensorProto.BFLOAT16
    declares = "fp16"

    @classmethod
    def availability(cls):
        return CpuBackend.availability()

    def load(self, model) -> None:
        import onnxruntime as ort

        m = onnx.load(str(model.path))
        g = m.graph
        for init in g.initializer:
            if init.data_type == onnx.TensorProto.FLOAT:
                init.CopyFrom(numpy_helper.from_array(_rounded(numpy_helper.to_array(init),
                                                               self.dtype), init.name))
        nodes = []
        for node in g.node:
            nodes.append(node)
            for i, out in enumerate(node.output):
                node.output[i] = f"{out}.exact"
                nodes += [onnx.helper.make_node("Cast", [f"{out}.exact"], [f"{out}.narrow"],
                                                to=self.dtype),
                          onnx.helper.make_node("Cast", [f"{out}.narrow"], [out],
                                                to=onnx.TensorProto.FLOAT)]
        del g.node[:]
        g.node.extend(nodes)
        self._session = ort.InferenceSession(m.SerializeToString(),
                                             providers=["CPUExecutionProvider"])
        self._input = model.input_name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, device="cpu", precision=self.declares)

    def close(self) -> None:
        self._session = None


def _rounded(a: np.ndarray, dtype: int) -> np.ndarray:
    if dtype == onnx.TensorProto.FLOAT16:
        return a.astype(np.float16).astype(np.float32)
    return Bf16.degrade(None, a)


@pytest.fixture(scope="module")
def deep(tmp_path_factory) -> tuple[Path, Path]:
    """The deep classifier (tests/deep_model.py) and a folder of photo-like images of real sizes
    in ImageNet's layout (tests/test_imagenet.py)."""
    root = tmp_path_factory.mktemp("deep")
    make_dataset(root / "images")
    return deep_classifier(root / "deep.onnx"), root / "images"


def _deep_run(capsys, out_dir, deep, *args: str) -> tuple[int, dict]:
    model, images = deep
    return run_json(capsys, out_dir, "--workload", "resnet50", "--model", str(model),
                    "--dataset", str(images), "--scenario", "single-stream", *FAST, *args)


def test_an_honest_fp16_conversion_of_a_deep_model_passes(capsys, out_dir, deep):
    """The false alarm fixed bands raised: a deep model's honest fp16 conversion lands past the
    old fp16 band (1.5e-3 of scale), as EfficientNet-Lite0's did, and is judged against the
    model's own fp16 envelope instead."""
    code, doc = _deep_run(capsys, out_dir, deep, "--precision", "fp16")
    f = doc["fidelity"]
    assert f["max_rel_error"] > 1.5e-3  # beyond the fixed band: this model exercises the defect
    assert f["passed"] and f["observed_precision"] == "fp16", f["findings"]
    assert not any(r.startswith("fidelity") for r in doc["invalid_reasons"])
    env = f["envelope"]
    assert env["method"].startswith("model: fp16 measured")
    # The cpu backend on the converted artifact is the trusted fp16 implementation itself.
    assert env["measured_error"]["fp16"] == pytest.approx(f["max_rel_error"], rel=1e-6)
    assert f["max_rel_error"] <= env["bounds"]["fp16"] < env["bounds"]["bf16"]


@pytest.mark.parametrize("dtype,observed", [(onnx.TensorProto.FLOAT16, "fp16"),
                                            (onnx.TensorProto.BFLOAT16, "bf16")])
def test_a_deep_model_computed_in_a_precision_is_observed_as_that_precision(
        capsys, out_dir, deep, monkeypatch, dtype, observed):
    """Every tensor of the deep model rounded to fp16 passes as the fp16 it declares; rounded to
    bf16 while declaring fp16, it is caught and named."""
    class Backend_(RoundsEveryTensor):
        pass
    Backend_.dtype = dtype
    register_backend(monkeypatch, Backend_)
    code, doc = _deep_run(capsys, out_dir, deep, "--backend", "rounding")
    f = doc["fidelity"]
    assert f["observed_precision"] == observed and f["expected_precision"] == "fp16"
    assert f["passed"] == (observed == "fp16"), f["findings"]
    assert any(r.startswith("fidelity: backend rounding declares fp16 but its outputs match "
                            "bf16") for r in doc["invalid_reasons"]) == (observed == "bf16")


def test_model_envelope_bounds_from_unit_roundoff():
    env = model_envelope(1e-3, None, "model")
    assert env.bounds["fp32"] == pytest.approx(1e-3 * 2 ** -6.5)
    assert env.bounds["fp16"] == pytest.approx(1e-3 * 8 ** 0.5)
    assert env.bounds["bf16"] == pytest.approx(8e-3 * 8 ** 0.5)
    assert "int8" not in env.bounds and env.level(0.5) == BELOW_BF16
    assert env.bound("tf32") == env.bound("fp16")
    with_int8 = model_envelope(1e-3, 0.05, "model")
    assert with_int8.bounds["int8"] == pytest.approx(0.05 * 8 ** 0.5)
    assert with_int8.level(0.1) == "int8" and with_int8.level(0.5) == BELOW_INT8


def test_an_envelope_that_cannot_be_measured_falls_back_to_fixed_bands_and_says_why():
    def broken(precision):
        raise RuntimeError("converter cannot handle this graph")
    ref = np.ones((2, 3))
    env = measure_envelope(0.01, "fp16", broken, np.zeros((2, 1)), ref, 2)
    assert env.bounds == dict(PRECISION_BANDS)
    assert env.method.startswith("fixed bands") and "converter cannot handle" in env.method
    tiny = measure_envelope(1e-6, "fp16", broken, np.zeros((2, 1)), ref, 2)
    assert tiny.level(1e-6) == "fp32" and tiny.method.startswith("not measured")
