"""Fidelity: does the backend compute what the FP32 reference computes, at the precision it says?

A fixed, seeded subset of the performance samples goes through the backend under test and through
a fresh onnxruntime CPU session (the ``cpu`` backend, FP32) on the same model artifact, outside any
timing. Their outputs are compared: top-1 agreement, the largest absolute error, the largest error
relative to the output's scale, and cosine similarity.

The relative error also tells which precision the backend really computed in, judged against the
model's own envelope: how far an honest computation of *this* model at each precision lands from
FP32. Fixed error bands cannot do it: a deep network accumulates rounding through its layers, so an
honest fp16 conversion of EfficientNet-Lite0 lands at 0.0049 of the output scale, past a band that
still tells fp16 from bf16 on a shallow model. So the envelope is measured on the model at hand,
on the same samples: fp16 through a trusted implementation (onnxruntime's fp16 conversion of the
artifact, run by the ``cpu`` backend), int8 through onnxruntime's QDQ conversion when a run is
judged at int8 or a backend lands past bf16. The other levels follow from fp16's by their unit
roundoff (tf32 keeps fp16's 11 significant bits; bf16 8, so 8 times fp16's error; fp32 24, so
1/8192 of it), and the bound between two neighbouring levels sits at the geometric mean of their
envelopes. A backend passes when its error is within the bound of the precision expected of it.
Where no envelope can be measured (the fp16 conversion fails, or rounds nothing), fixed bands are
used and the result says so. The model's weights do not matter (synthetic ones work).

A model of several outputs (``--workload onnx``) is compared output by output (the section's
``outputs``): a floating-point output by the figures above, an integer or bool output (an argmax,
a mask) by its exact-match rate, the share of samples whose output equals the reference's in
every element. The section's own figures, and the precision judged, are those of the float
output farthest from the reference; a model without a float output has no precision to judge,
and an integer output that differs is a finding, not a failure (a lower precision may flip an
argmax honestly).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hwbench import backends
from hwbench.artifacts import fields
from hwbench.backends import Backend, ModelArtifact

REFERENCE_BACKEND = "cpu"
REFERENCE_LABEL = "cpu (onnxruntime fp32)"
FIDELITY_SAMPLES = 32

# Outputs this close to the reference (largest error / output scale) are FP32 whatever the model:
# rounding to fp16 anywhere leaves at least ~1e-4 at the output, so no envelope is needed.
FP32_FLOOR = 1e-5
# Fixed bands, used only when the model's own envelope cannot be measured. Rounding alone gives at
# most the format's unit roundoff u: fp32 6e-8, fp16 and tf32 4.9e-4, bf16 3.9e-3, int8 about
# 1/254 of the range per tensor; a shallow network accumulates a few times that.
PRECISION_BANDS = (("fp32", 1e-5), ("fp16", 1.5e-3), ("bf16", 2e-2), ("int8", 2e-1))
BELOW_INT8 = "worse than int8"
BELOW_BF16 = "coarser than bf16"
# How fine each declared precision is, for comparison with the observed level (higher: finer).
_RANK = {"fp64": 5, "fp32": 4, "tf32": 3, "fp16": 3, "bf16": 2, "int8": 1, "fp8": 1,
         BELOW_BF16: 0, BELOW_INT8: 0}
# Error relative to fp16's, from each format's unit roundoff (significant bits 24, 11, 11, 8).
_FROM_FP16 = {"fp32": 2.0 ** -13, "tf32": 1.0, "fp16": 1.0, "bf16": 8.0}
# A converted artifact, by precision: the trusted implementation of the model at that precision.
Converter = Callable[[str], ModelArtifact]


@dataclass(frozen=True)
class Envelope:
    """Upper bounds of the error (of the output scale) of an honest computation, per level."""

    bounds: dict[str, float]
    method: str
    measured: dict[str, float] = field(default_factory=dict)

    def level(self, scaled_error: float) -> str:
        """The finest level whose bound holds the error."""
        for name, bound in self.bounds.items():
            if scaled_error <= bound:
                return name
        return BELOW_INT8 if "int8" in self.bounds else BELOW_BF16

    def bound(self, precision: str) -> float | None:
        return self.bounds.get("fp16" if precision == "tf32" else precision)

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "measured_error": dict(self.measured),
                "bounds": dict(self.bounds)}


FIXED = Envelope(dict(PRECISION_BANDS), "fixed bands")


def model_envelope(fp16_error: float, int8_error: float | None, source: str) -> Envelope:
    """Bounds from the model's own fp16 error (and int8 error, when measured)."""
    env = {name: fp16_error * k for name, k in _FROM_FP16.items() if name != "tf32"}
    bounds = {"fp32": math.sqrt(env["fp32"] * env["fp16"]),
              "fp16": math.sqrt(env["fp16"] * env["bf16"]),
              "bf16": math.sqrt(env["bf16"] * max(8 * env["bf16"], int8_error or 0.0))}
    measured = {"fp16": fp16_error}
    if int8_error is not None:
        bounds["int8"] = max(bounds["bf16"], int8_error * math.sqrt(8))
        measured["int8"] = int8_error
    return Envelope(bounds, source, measured)


def subset(population: int, seed: int, count: int = FIDELITY_SAMPLES) -> np.ndarray:
    """A fixed, seeded, sorted choice of sample indices from the first `population` samples."""
    rng = np.random.default_rng([seed, 0xF1DE])
    n = min(count, population)
    return np.sort(rng.choice(population, size=n, replace=False))


def run_in_batches(backend: Backend, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The backend's outputs for `inputs`, computed `batch_size` samples per call (not timed)."""
    parts = [np.array(backend.run(np.ascontiguousarray(inputs[i:i + batch_size])))
             for i in range(0, len(inputs), batch_size)]
    out = np.concatenate(parts)
    return out if out.dtype.names else out.reshape(len(inputs), -1)


def reference_outputs(artifact: ModelArtifact, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """Outputs of a fresh onnxruntime CPU session on `artifact` (FP32 on an FP32 artifact)."""
    ref = backends.create(REFERENCE_BACKEND)
    try:
        ref.load(artifact)
        return run_in_batches(ref, inputs, batch_size)
    finally:
        ref.close()


def scaled_errors(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per sample: the largest absolute error over the largest absolute reference output."""
    b, r = outputs.astype(np.float64), reference.astype(np.float64)
    scale = np.maximum(np.abs(r).max(axis=1), np.finfo(np.float32).tiny)
    return np.abs(b - r).max(axis=1) / scale


def compare(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Agreement figures of `outputs` against `reference`, both ``(n, d)``."""
    b = outputs.astype(np.float64)
    r = reference.astype(np.float64)
    scaled = scaled_errors(outputs, reference)
    norms = np.linalg.norm(b, axis=1) * np.linalg.norm(r, axis=1)
    # Two all-zero outputs agree perfectly; one zero output against a non-zero one does not.
    cos = np.where(norms > 0, (b * r).sum(axis=1) / np.where(norms > 0, norms, 1.0),
                   np.where(np.abs(b).max(axis=1) == np.abs(r).max(axis=1), 1.0, 0.0))
    return {"samples": len(r),
            "top1_agreement": float((b.argmax(axis=1) == r.argmax(axis=1)).mean()),
            "max_abs_error": float(np.abs(b - r).max()), "max_rel_error": float(scaled.max()),
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean())}


def exact(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Agreement of integer or bool outputs, both ``(n, d)``: exact equality per sample."""
    same = outputs == reference
    return {"samples": len(reference), "exact_match": float(same.all(axis=1).mean()),
            "element_match": float(same.mean())}


def _rows(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).reshape(len(a), -1)


def compare_outputs(outputs: np.ndarray, reference: np.ndarray,
                    names: list[str]) -> dict[str, dict[str, Any]]:
    """Every output's agreement, by name: float outputs by ``compare``, integer and bool ones by
    ``exact`` (the kind is the reference's)."""
    got, ref = fields(outputs), fields(reference)
    if list(ref) == [""]:
        got, ref = {names[0]: got[""]}, {names[0]: ref[""]}
    per: dict[str, dict[str, Any]] = {}
    for name, r in ref.items():
        g, r = _rows(got[name]), _rows(r)
        if r.dtype.kind == "f":
            per[name] = {"kind": "float", **compare(g.astype(np.float64), r)}
        else:
            per[name] = {"kind": "exact", **exact(g, r)}
    return per


def worst_float(per: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The figures of the float output farthest from the reference, or None without one."""
    floats = [f for f in per.values() if f["kind"] == "float"]
    if not floats:
        return None
    worst = max(floats, key=lambda f: f["max_rel_error"])
    return {k: v for k, v in worst.items() if k != "kind"}


def _worst_scaled(outputs: np.ndarray, reference: np.ndarray) -> float:
    """The largest scaled error over every float output."""
    got, ref = fields(outputs), fields(reference)
    errors = [float(scaled_errors(_rows(got[k]), _rows(r)).max())
              for k, r in ref.items() if np.asarray(r).dtype.kind == "f"]
    return max(errors) if errors else 0.0


def expected_precision(declared: str, artifact_precision: str = "fp32") -> str:
    """What the outputs should match: the precision the backend declares (its first word, as in
    "fp16 (fp32 where ... no fp16 kernel)"), or the model artifact's when that is coarser (a
    model converted with --precision is lowered on purpose, not silently)."""
    word = declared.split()[0] if declared.strip() else declared
    if word not in _RANK:
        return declared
    if _RANK.get(artifact_precision, _RANK[word]) < _RANK[word]:
        return artifact_precision
    return word


def measure_envelope(error: float, expected: str, convert: Converter | None,
                     inputs: np.ndarray, reference: np.ndarray, batch_size: int) -> Envelope:
    """The model's own envelope, measured only as far as the judgement needs it."""
    if error <= FP32_FLOOR:
        return Envelope({"fp32": FP32_FLOOR}, f"not measured: within {FP32_FLOOR:g} of the "
                        "FP32 reference's scale, which only an FP32 computation reaches")
    if convert is None:
        return FIXED
    try:
        fp16 = _trusted_error("fp16", convert, inputs, reference, batch_size)
    except Exception as exc:  # a converter or session that cannot handle this model
        return Envelope(FIXED.bounds, f"fixed bands: the model's fp16 envelope could not be "
                        f"measured ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
    if not (np.isfinite(fp16) and fp16 > 0):
        return Envelope(FIXED.bounds, f"fixed bands: the model's fp16 conversion gave an error "
                        f"of {fp16:g}, which bounds nothing")
    source = ("model: fp16 measured through onnxruntime's fp16 conversion of this model on the "
              "cpu backend, same samples; tf32 as fp16, bf16 8x, fp32 1/8192x; bounds at the "
              "geometric mean of neighbouring levels")
    int8 = None
    if expected == "int8" or error > model_envelope(fp16, None, source).bounds["bf16"]:
        try:
            int8 = _trusted_error("int8", convert, inputs, reference, batch_size)
            source += "; int8 measured through onnxruntime's QDQ conversion on the cpu backend"
        except Exception as exc:
            source += f"; int8 not measured ({type(exc).__name__})"
    return model_envelope(fp16, int8, source)


def _trusted_error(precision: str, convert: Converter, inputs: np.ndarray,
                   reference: np.ndarray, batch_size: int) -> float:
    outputs = reference_outputs(convert(precision), inputs, batch_size)
    return _worst_scaled(outputs, reference)


def judge(figures: dict[str, Any], envelope: Envelope, backend_name: str, declared: str,
          is_reference: bool, artifact_precision: str = "fp32",
          per_output: dict[str, dict[str, Any]] | None = None
          ) -> tuple[dict[str, Any], str | None]:
    """The fidelity section (figures, envelope, declared precision, findings, verdict), and why
    the run is invalid when the backend computes coarser than it declares (else None).
    `per_output`: every output's figures, for a model of several outputs or of no float one."""
    findings: list[str] = []
    for name, f in (per_output or {}).items():
        if f["kind"] == "exact" and f["exact_match"] < 1.0:
            findings.append(f"output {name} (integer) equals the reference on "
                            f"{f['exact_match']:.1%} of {f['samples']} samples")
    if figures.get("max_rel_error") is None:
        return _unjudged(figures, backend_name, declared, artifact_precision, per_output,
                         findings)
    observed = envelope.level(figures["max_rel_error"])
    failure = None
    expected = expected_precision(declared, artifact_precision)
    if is_reference:
        same = ("identical outputs" if figures["max_abs_error"] == 0.0 else
                f"outputs differ by up to {figures['max_abs_error']:.2g}: other session options, "
                "or a computation that is not deterministic")
        findings.append(f"the backend is the FP32 reference itself: this checks determinism "
                        f"({same})")
    if expected not in _RANK:
        findings.append(f"declared precision {declared!r} has no known error level: not judged")
    elif _RANK[observed] < _RANK[expected]:
        model = "" if artifact_precision == "fp32" else f" and runs a {artifact_precision} model"
        bound = envelope.bound(expected)
        within = f", beyond {expected}'s bound of {bound:.2g} for this model" if bound else ""
        failure = (f"backend {backend_name} declares {expected}{model} but its outputs match "
                   f"{observed} (largest error {figures['max_rel_error']:.2g} of the output "
                   f"scale against the FP32 reference{within})")
        findings.append(failure)
    if figures["top1_agreement"] < 1.0:
        findings.append(f"top-1 differs from the reference on "
                        f"{1 - figures['top1_agreement']:.1%} of {figures['samples']} samples")
    section = {"reference": REFERENCE_LABEL, **figures, "observed_precision": observed,
               "envelope": envelope.describe(), "declared_precision": declared,
               "artifact_precision": artifact_precision, "expected_precision": expected,
               "passed": failure is None, "findings": findings,
               "teacher_forced": None,  # a generative run's details (quality/llm_fidelity.py)
               "outputs": per_output}
    return section, failure


def _unjudged(figures: dict[str, Any], backend_name: str, declared: str,
              artifact_precision: str, per_output: dict[str, dict[str, Any]] | None,
              findings: list[str]) -> tuple[dict[str, Any], None]:
    """A model without a float output: compared exactly, no precision judged, never failed."""
    findings.insert(0, f"no floating-point output: backend {backend_name}'s precision is not "
                    "judged, its integer outputs are compared exactly")
    section = {"reference": REFERENCE_LABEL, **figures, "observed_precision": None,
               "envelope": None, "declared_precision": declared,
               "artifact_precision": artifact_precision,
               "expected_precision": expected_precision(declared, artifact_precision),
               "passed": True, "findings": findings, "teacher_forced": None,
               "outputs": per_output}
    return section, None


def check(backend: Backend, artifact: ModelArtifact, inputs: np.ndarray, batch_size: int,
          artifact_precision: str = "fp32", convert: Converter | None = None
          ) -> tuple[dict[str, Any], str | None]:
    """Runs `inputs` through `backend` (which runs a model of `artifact_precision`) and the FP32
    reference on `artifact`, measures the model's envelope through `convert` (the artifact
    converted to a precision) where the judgement needs it, and judges (see judge)."""
    info = backend.info()
    batch = min(batch_size, info.max_batch_size or batch_size)
    outputs = run_in_batches(backend, inputs, batch)
    reference = reference_outputs(artifact, inputs, batch)
    per_output = compare_outputs(outputs, reference, artifact.output_names)
    figures = worst_float(per_output)
    # Only the reference backend on the very model the reference runs checks determinism.
    is_reference = (type(backend) is backends.backend_class(REFERENCE_BACKEND)
                    and artifact_precision == "fp32")
    single_float = len(per_output) == 1 and figures is not None
    if figures is None:
        figures = {"samples": len(inputs), "top1_agreement": None, "max_abs_error": None,
                   "max_rel_error": None, "cosine_min": None, "cosine_mean": None}
        return judge(figures, FIXED, info.name, info.precision, is_reference,
                     artifact_precision, per_output)
    expected = expected_precision(info.precision, artifact_precision)
    envelope = measure_envelope(figures["max_rel_error"], expected, convert, inputs, reference,
                                batch)
    return judge(figures, envelope, info.name, info.precision, is_reference, artifact_precision,
                 None if single_float else per_output)
