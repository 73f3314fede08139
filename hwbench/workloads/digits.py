"""``digits``: a small CNN on scikit-learn's handwritten digits, fully embedded.

Everything ships inside hwbench (``data/digits/``, with sha256 checksums in its manifest): the
trained ONNX model and the held-out reference set (real, labelled 8x8 digits). Accuracy is
therefore validated on any machine, without downloads. ``digits_train.py`` reproduces the files.
"""
from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from hwbench.errors import ModelError, UsageError
from hwbench.workloads.base import AccuracyReference, Workload, sha256_of
from hwbench.workloads.classification import Classifier

DATA = Path(__file__).parent / "data" / "digits"


class Digits(Classifier, Workload):
    name: ClassVar[str] = "digits"
    description: ClassVar[str] = ("handwritten digits 8x8, small CNN; embedded model and "
                                  "reference set (validates accuracy anywhere)")
    server_latency_bound_ms: ClassVar[float] = 10.0
    mlperf_performance_sample_count: ClassVar[int] = 1024
    sample_shape: ClassVar[tuple[int, ...]] = (1, 8, 8)
    num_classes: ClassVar[int] = 10

    def __init__(self, model: str | None = None, dataset: str | None = None,
                 seed: int = 1) -> None:
        if dataset:
            raise UsageError("the digits workload embeds its reference set: drop --dataset")
        super().__init__(model=model, dataset=None, seed=seed)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return json.loads((DATA / "manifest.json").read_text())

    def _checked(self, entry: str) -> Path:
        meta = self.manifest[entry]
        path = DATA / meta["file"]
        if not path.is_file() or sha256_of(path) != meta["sha256"]:
            raise ModelError(f"{path} is missing or does not match its sha256 in the manifest: "
                             "reinstall hwbench (pip install --force-reinstall hwbench)")
        return path

    def default_model(self, progress: Callable[[str], None] | None = None) -> Path:
        return self._checked("model")

    @property
    def synthetic_weights(self) -> bool:
        return False

    @cached_property
    def _reference(self) -> tuple[np.ndarray, np.ndarray]:
        table = np.load(self._checked("reference_set"), allow_pickle=False)
        labels = table[:, 1].astype(np.int64)
        images = table[:, 2:].astype(np.uint8).reshape(-1, 8, 8)
        return images, labels

    def sample_count(self) -> int:
        return int(self.manifest["reference_set"]["count"])

    def load_samples(self, indices: np.ndarray) -> np.ndarray:
        images, _ = self._reference
        return preprocess(images[np.asarray(indices, dtype=np.int64)])

    def labels(self) -> np.ndarray:
        return self._reference[1]

    def raw_images(self, indices: np.ndarray) -> np.ndarray:
        images, _ = self._reference
        raw = images[np.asarray(indices, dtype=np.int64)].astype(np.float32) / np.float32(16.0)
        return raw[..., np.newaxis]  # (N, 8, 8, 1)

    def preprocess_images(self, images: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(images, dtype=np.float32).reshape(-1, 1, 8, 8)

    # --- the whole pipeline: the embedded digits as PNG files held in memory -------------------
    def encoded_unavailable(self) -> str | None:
        return None

    @cached_property
    def _png(self) -> list[bytes]:
        """Each reference digit as a PNG file (8-bit grayscale, lossless: it decodes to the
        embedded intensities 0..16). The set ships as one table, so the files are made here."""
        import io

        from PIL import Image

        files = []
        for image in self._reference[0]:
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="PNG")
            files.append(buf.getvalue())
        return files

    def encoded_samples(self, indices: np.ndarray) -> list[bytes]:
        return [self._png[i] for i in np.asarray(indices, dtype=np.int64).tolist()]

    def decode_sample(self, data: bytes) -> np.ndarray:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img)

    def preprocess_sample(self, image: np.ndarray) -> np.ndarray:
        return preprocess(image[None])[0]

    def accuracy_reference(self) -> AccuracyReference | None:
        """The embedded model's FP32 top-1 (its manifest); another model's is measured."""
        if self.model_path is not None:
            return None
        return AccuracyReference(float(self.manifest["fp32_reference"]["value"]),
                                 "the embedded model's FP32 top-1 (data/digits/manifest.json)")


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 intensities 0..16 -> float32 in [0, 1], (N, 1, 8, 8): as the model was trained."""
    return (images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
