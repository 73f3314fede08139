"""``tiny``: a small perceptron on 64-value inputs, for fast tests of the whole pipeline."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import onnx

from hwbench.workloads.base import Workload, synthetic_samples
from hwbench.workloads.graphs import mlp


class Tiny(Workload):
    name: ClassVar[str] = "tiny"
    description: ClassVar[str] = "64-256-256-10 perceptron, synthetic weights and inputs"
    server_latency_bound_ms: ClassVar[float] = 10.0
    mlperf_performance_sample_count: ClassVar[int] = 1024
    sample_shape: ClassVar[tuple[int, ...]] = (64,)

    @property
    def generator_version(self) -> str:
        return "v1"

    def synthetic_model(self) -> onnx.ModelProto:
        return mlp(self.seed, 64, 256, 10)

    def sample_count(self) -> int:
        return 1024

    def load_samples(self, indices: np.ndarray) -> np.ndarray:
        return synthetic_samples(self.seed, indices, self.sample_shape)

    def accuracy_unavailable(self) -> str | None:
        return "synthetic inputs have no labels: accuracy not validated"
