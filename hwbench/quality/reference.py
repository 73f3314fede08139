"""The reference accuracy of a model that has no published one: the same model's FP32 accuracy on
the same samples, computed by the FP32 reference session (a fresh ``cpu`` backend, onnxruntime
FP32, as fidelity runs it) on the FP32 artifact, outside any timing.

It tells whether the backend under test (or a lowered precision) loses accuracy that the model
itself has; it cannot tell a wrong preprocessing, which the reference sees too. A workload file
can declare the accuracy its model is known to reach instead (``[accuracy] reference``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hwbench import backends
from hwbench.backends import ModelArtifact
from hwbench.quality.fidelity import REFERENCE_BACKEND, REFERENCE_LABEL, run_in_batches
from hwbench.workloads import AccuracyReference, Workload

CHUNK = 256  # samples preprocessed and held at once: bounds memory for large images
MIN_BATCH = 32  # not timed, so small configured batches are raised to this


def fp32_accuracy(workload: Workload, artifact: ModelArtifact, batch_size: int,
                  progress: Callable[[str], None]) -> AccuracyReference:
    """`workload`'s accuracy metric over every labelled sample, computed by the FP32 reference
    session on `artifact` (the model before any precision conversion)."""
    n = workload.sample_count()
    progress(f"accuracy reference: {n:,} samples through the FP32 reference ({REFERENCE_LABEL})")
    ref = backends.create(REFERENCE_BACKEND)
    outputs: dict[int, np.ndarray] = {}
    try:
        ref.load(artifact)
        batch = max(batch_size, MIN_BATCH)
        for start in range(0, n, CHUNK):
            idx = np.arange(start, min(start + CHUNK, n))
            rows = run_in_batches(ref, workload.load_samples(idx), batch)
            outputs.update(zip(idx.tolist(), rows))
    finally:
        ref.close()
    return AccuracyReference(workload.accuracy_value(outputs),
                             f"measured: this model's FP32 accuracy on the same {n:,} samples "
                             f"through the FP32 reference session ({REFERENCE_LABEL})")
