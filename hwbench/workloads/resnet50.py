"""``resnet50``: MLPerf's ResNet50-v1.5 image classifier, 224x224.

Without user files it runs performance mode on the reference graph with seeded synthetic weights
and inputs; accuracy is then not validated, and the result says so.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import onnx

from hwbench.workloads.base import Workload, synthetic_samples
from hwbench.workloads.graphs import resnet50_v15


class ResNet50(Workload):
    name: ClassVar[str] = "resnet50"
    description: ClassVar[str] = "ResNet50-v1.5 image classification, 224x224 (MLPerf)"
    server_latency_bound_ms: ClassVar[float] = 15.0  # MLPerf Inference's Server bound
    mlperf_performance_sample_count: ClassVar[int] = 1024
    sample_shape: ClassVar[tuple[int, ...]] = (3, 224, 224)
    synthetic_sample_count: ClassVar[int] = 256

    @property
    def generator_version(self) -> str:
        return "v1"

    def synthetic_model(self) -> onnx.ModelProto:
        return resnet50_v15(self.seed)

    def sample_count(self) -> int:
        return self.synthetic_sample_count

    def load_samples(self, indices: np.ndarray) -> np.ndarray:
        return synthetic_samples(self.seed, indices, self.sample_shape)

    def accuracy_unavailable(self) -> str | None:
        return ("synthetic inputs have no labels: accuracy not validated (the ImageNet "
                "reference set comes with the workloads work; 'digits' validates accuracy)")
