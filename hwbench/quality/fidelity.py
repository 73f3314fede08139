"""Fidelity: does the backend compute what the FP32 reference computes, at the precision it says?

A fixed, seeded subset of the performance samples goes through the backend under test and through
a fresh onnxruntime CPU session (the ``cpu`` backend, FP32) on the same model artifact, outside any
timing. Their outputs are compared: top-1 agreement, the largest absolute error, the largest error
relative to the output's scale, and cosine similarity. The relative error also tells which
precision the backend really computed in; a backend whose outputs are coarser than the precision
it declares is caught and named. The model's weights do not matter (synthetic ones work).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hwbench import backends
from hwbench.backends import Backend, ModelArtifact

REFERENCE_BACKEND = "cpu"
REFERENCE_LABEL = "cpu (onnxruntime fp32)"
FIDELITY_SAMPLES = 32

# Observed precision from the largest error relative to the output's scale (max |b - r| / max |r|
# per sample). Rounding alone gives at most the format's unit roundoff u: fp32 6e-8, fp16 and tf32
# 4.9e-4, bf16 3.9e-3, int8 about 1/254 of the range per tensor; a whole network accumulates a few
# times that (fp32 1e-7..1e-6, fp16 ~1e-3, bf16 ~1e-2, int8 ~1e-1). Each bound sits between two
# neighbouring levels, with room for a different summation order at the same precision.
PRECISION_BANDS = (("fp32", 1e-5), ("fp16", 1.5e-3), ("bf16", 2e-2), ("int8", 2e-1))
BELOW_INT8 = "worse than int8"
# How fine each declared precision is, for comparison with the observed band (higher: finer).
_RANK = {"fp64": 5, "fp32": 4, "tf32": 3, "fp16": 3, "bf16": 2, "int8": 1, "fp8": 1,
         BELOW_INT8: 0}


def subset(population: int, seed: int, count: int = FIDELITY_SAMPLES) -> np.ndarray:
    """A fixed, seeded, sorted choice of sample indices from the first `population` samples."""
    rng = np.random.default_rng([seed, 0xF1DE])
    n = min(count, population)
    return np.sort(rng.choice(population, size=n, replace=False))


def run_in_batches(backend: Backend, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The backend's outputs for `inputs`, computed `batch_size` samples per call (not timed)."""
    parts = [np.asarray(backend.run(np.ascontiguousarray(inputs[i:i + batch_size])))
             for i in range(0, len(inputs), batch_size)]
    return np.concatenate(parts).reshape(len(inputs), -1)


def reference_outputs(artifact: ModelArtifact, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """Outputs of a fresh FP32 onnxruntime CPU session on the same artifact."""
    ref = backends.create(REFERENCE_BACKEND)
    try:
        ref.load(artifact)
        return run_in_batches(ref, inputs, batch_size)
    finally:
        ref.close()


def observed_precision(scaled_error: float) -> str:
    for name, bound in PRECISION_BANDS:
        if scaled_error <= bound:
            return name
    return BELOW_INT8


def compare(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Agreement figures of `outputs` against `reference`, both ``(n, d)``."""
    b = outputs.astype(np.float64)
    r = reference.astype(np.float64)
    err = np.abs(b - r)
    scale = np.maximum(np.abs(r).max(axis=1), np.finfo(np.float32).tiny)
    scaled = err.max(axis=1) / scale
    norms = np.linalg.norm(b, axis=1) * np.linalg.norm(r, axis=1)
    # Two all-zero outputs agree perfectly; one zero output against a non-zero one does not.
    cos = np.where(norms > 0, (b * r).sum(axis=1) / np.where(norms > 0, norms, 1.0),
                   np.where(np.abs(b).max(axis=1) == np.abs(r).max(axis=1), 1.0, 0.0))
    return {"samples": len(r),
            "top1_agreement": float((b.argmax(axis=1) == r.argmax(axis=1)).mean()),
            "max_abs_error": float(err.max()), "max_rel_error": float(scaled.max()),
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            "observed_precision": observed_precision(float(scaled.max()))}


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


def judge(figures: dict[str, Any], backend_name: str, declared: str, is_reference: bool,
          artifact_precision: str = "fp32") -> tuple[dict[str, Any], str | None]:
    """The fidelity section (figures, declared precision, findings, verdict), and why the run
    is invalid when the backend computes coarser than it declares (else None)."""
    observed = figures["observed_precision"]
    findings: list[str] = []
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
        failure = (f"backend {backend_name} declares {expected}{model} but its outputs match "
                   f"{observed} (largest error {figures['max_rel_error']:.2g} of the output "
                   "scale against the FP32 reference)")
        findings.append(failure)
    if figures["top1_agreement"] < 1.0:
        findings.append(f"top-1 differs from the reference on "
                        f"{1 - figures['top1_agreement']:.1%} of {figures['samples']} samples")
    section = {"reference": REFERENCE_LABEL, **figures, "declared_precision": declared,
               "artifact_precision": artifact_precision, "expected_precision": expected,
               "passed": failure is None, "findings": findings}
    return section, failure


def check(backend: Backend, artifact: ModelArtifact, inputs: np.ndarray, batch_size: int,
          artifact_precision: str = "fp32") -> tuple[dict[str, Any], str | None]:
    """Runs `inputs` through `backend` (which runs a model of `artifact_precision`) and the FP32
    reference on `artifact`: the section and any failure (judge)."""
    info = backend.info()
    batch = min(batch_size, info.max_batch_size or batch_size)
    outputs = run_in_batches(backend, inputs, batch)
    reference = reference_outputs(artifact, inputs, batch)
    # Only the reference backend on the very model the reference runs checks determinism.
    is_reference = (type(backend) is backends.backend_class(REFERENCE_BACKEND)
                    and artifact_precision == "fp32")
    return judge(compare(outputs, reference), info.name, info.precision, is_reference,
                 artifact_precision)
