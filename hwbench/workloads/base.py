"""What a workload is: a model artifact, a sample set, and what a correct answer is.

Shared code never asks which workload runs; it asks the workload.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import onnx

from hwbench.artifacts import ModelArtifact, cache_dir, sha256_of
from hwbench.atomic import write_atomically
from hwbench.errors import ModelError


@dataclass(frozen=True)
class AccuracyReference:
    """The accuracy a model is judged against, and where it comes from (said in the result)."""

    value: float
    source: str


@dataclass(frozen=True)
class AccuracyReport:
    """Accuracy of one mode-accuracy pass against the reference set."""

    metric: str
    value: float
    reference: float
    target: float
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)


class Workload(ABC):
    """Base class of every workload. Subclasses set the class attributes and the methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    # A generative workload's samples are requests answered token by token (hwbench.workloads.llm):
    # the harness serves them through a streaming backend and the load generator times tokens.
    generative: ClassVar[bool] = False
    # A workload that feeds a model its own tensors (``onnx``) takes --input-shape and --inputs.
    feeds_tensors: ClassVar[bool] = False
    server_latency_bound_ms: ClassVar[float]
    mlperf_performance_sample_count: ClassVar[int]

    def __init__(self, model: str | None = None, dataset: str | None = None,
                 seed: int = 1) -> None:
        self.model_path = Path(model) if model else None
        self.dataset = Path(dataset) if dataset else None
        self.seed = seed
        self._artifact: ModelArtifact | None = None

    # --- the model -------------------------------------------------------------------------
    def synthetic_model(self) -> onnx.ModelProto:
        """The reference graph with seeded synthetic weights (workloads without an embedded
        model implement this and ``generator_version``)."""
        raise NotImplementedError(f"{self.name} has no synthetic model")

    @property
    def generator_version(self) -> str:
        """Bumped whenever synthetic_model would produce other bytes (keys the cache)."""
        raise NotImplementedError(f"{self.name} has no synthetic model")

    def default_model(self, progress: Callable[[str], None] | None = None) -> Path:
        """The model used without --model: by default the synthetic graph, built once into the
        cache. A workload that embeds a trained model returns its checked path instead."""
        path = cache_dir() / "models" / f"{self.name}-{self.generator_version}-seed{self.seed}.onnx"
        if not path.is_file():
            if progress:
                progress(f"building the synthetic {self.name} model (once) in {path}")
            _atomic_save(self.synthetic_model(), path)
        return path

    @property
    def synthetic_weights(self) -> bool:
        """True when the model in use has seeded synthetic weights (its outputs mean nothing)."""
        return self.model_path is None

    def artifact(self, progress: Callable[[str], None] | None = None) -> ModelArtifact:
        """The model to run: the user's file, checked, or the workload's default model."""
        if self._artifact is None:
            if self.model_path is not None:
                path = self.model_path
                if not path.is_file():
                    raise ModelError(f"model file {path} not found: give --model an existing "
                                     "ONNX file")
            else:
                path = self.default_model(progress)
            self._artifact = self._describe(path)
        return self._artifact

    def _describe(self, path: Path) -> ModelArtifact:
        proto, inputs = read_model(path)
        if len(inputs) != 1 or not proto.graph.output:
            raise ModelError(f"{path}: expected one input and at least one output, found "
                             f"{len(inputs)} input(s); give a model for the {self.name} workload")
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim][1:]
        self.check_input(path, inputs[0], dims)
        out = self.model_output(path, proto)
        out_dims = tuple(d.dim_value for d in out.type.tensor_type.shape.dim[1:])
        return ModelArtifact(path=path, sha256=sha256_of(path), input_name=inputs[0].name,
                             output_name=out.name, sample_shape=self.sample_shape,
                             output_shape=out_dims)

    def check_input(self, path: Path, graph_input: onnx.ValueInfoProto, dims: list[int]) -> None:
        """Raises ModelError when the model's input (`dims` without the batch) does not take
        this workload's samples."""
        if tuple(dims) != self.sample_shape:
            raise ModelError(f"{path}: input shape {dims} does not match the {self.name} "
                             f"workload's {list(self.sample_shape)}")

    def model_output(self, path: Path, model: onnx.ModelProto) -> onnx.ValueInfoProto:
        """The graph output to run and score (by default the first); a workload whose models
        carry several outputs chooses here, and may raise ModelError."""
        return model.graph.output[0]

    def batch_limit(self) -> int | None:
        """The largest batch the model takes (a graph exported with a fixed batch), or None."""
        return None

    # --- the samples -----------------------------------------------------------------------
    sample_shape: ClassVar[tuple[int, ...]]

    def prepare(self, progress: Callable[[str], None] | None = None) -> None:
        """Readies the reference set before anything is measured (decoding and preprocessing
        it into a cache, say), reporting long work through ``progress``. Bad files raise a
        DatasetError here, before a run begins."""

    @abstractmethod
    def sample_count(self) -> int:
        """Size of the sample set (the reference set, or the synthetic one)."""

    def performance_sample_count(self) -> int:
        return min(self.sample_count(), self.mlperf_performance_sample_count)

    @abstractmethod
    def load_samples(self, indices: np.ndarray) -> np.ndarray:
        """Preprocessed samples, ``(len(indices), *sample_shape)`` float32, in that order; for
        a model with several inputs, ``len(indices)`` records with one field per input
        (``hwbench.artifacts.record_dtype``)."""

    # --- reference images (robustness corrupts these) ----------------------------------------
    def labels(self) -> np.ndarray | None:
        """Reference labels by sample index (int64), or None when the sample set has none."""
        return None

    def raw_images(self, indices: np.ndarray) -> np.ndarray:
        """Reference images as the camera would give them, in the geometry the model sees
        (decoded, resized, cropped) but not yet normalised: float32 in [0, 1], ``(N, H, W, C)``.

        Contract: ``preprocess_images(raw_images(i))`` equals ``load_samples(i)``.
        """
        raise NotImplementedError(f"{self.name} has no reference images")

    def preprocess_images(self, images: np.ndarray) -> np.ndarray:
        """Images from ``raw_images`` (possibly corrupted) to model inputs, float32
        ``(N, *sample_shape)``."""
        raise NotImplementedError(f"{self.name} has no reference images")

    def images_unavailable(self) -> str | None:
        """Why ``raw_images`` has nothing to give here (robustness then is not measured), or
        None when it has."""
        if type(self).raw_images is Workload.raw_images:
            return (f"{self.name} does not expose its reference images (raw_images): "
                    "robustness not measured")
        return None

    def class_scores(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs ``(N, ...)`` as one score per class, what top-1 is read from (as given
        unless the workload's model adds columns, as MLPerf's 1001-class ResNet50 does)."""
        return outputs

    # --- the whole pipeline (--pipeline full) ------------------------------------------------
    # The stages of one sample's timed path when it starts from its encoded file: the harness's
    # workers call them and take their timestamps; a stage never reads a clock.
    def encoded_unavailable(self) -> str | None:
        """Why this workload's samples have no encoded file to start the whole pipeline from
        (``--pipeline full`` is then refused), or None when they have."""
        return (f"{self.name} has no encoded image files: --pipeline full and both need "
                "resnet50 with --dataset, digits, or a workload file with images")

    def encoded_samples(self, indices: np.ndarray) -> list[bytes]:
        """Each sample's encoded file (JPEG, PNG, ...) as its bytes, in the order of
        ``indices``; the sample library holds these in memory for ``--pipeline full``."""
        raise NotImplementedError(self.encoded_unavailable())

    def decode_sample(self, data: bytes) -> np.ndarray:
        """Stage 1: one encoded file -> its decoded pixels (uint8)."""
        raise NotImplementedError(self.encoded_unavailable())

    def preprocess_sample(self, image: np.ndarray) -> np.ndarray:
        """Stage 2: decoded pixels -> one model input, float32 ``sample_shape``.

        Contract: ``preprocess_sample(decode_sample(encoded_samples([i])[0]))`` equals
        ``load_samples([i])[0]``."""
        raise NotImplementedError(self.encoded_unavailable())

    def postprocess(self, outputs: np.ndarray) -> np.ndarray:
        """Stage 4 (after the backend's batch): model outputs -> the answer a user gets. By
        default the outputs as they are."""
        return outputs

    # --- correctness -----------------------------------------------------------------------
    def accuracy_unavailable(self) -> str | None:
        """Why accuracy cannot be validated here, or None if it can."""
        return None

    def accuracy_reference(self) -> AccuracyReference | None:
        """The accuracy this model is judged against when it is known without computing it (the
        official model's published FP32 figure, or one the user declared); None: the same
        model's FP32 accuracy on the same samples, which the run computes through the FP32
        reference session (``hwbench.quality.reference``)."""
        return None

    def accuracy_value(self, outputs: dict[int, np.ndarray]) -> float:
        """The workload's accuracy metric of `outputs` (by sample index), alone."""
        raise NotImplementedError(self.accuracy_unavailable() or "no scoring for this workload")

    def score(self, outputs: dict[int, np.ndarray],
              reference: AccuracyReference | None = None) -> AccuracyReport:
        """Scores outputs by sample index against the reference labels, judged against
        `reference` (by default ``accuracy_reference()``)."""
        raise NotImplementedError(self.accuracy_unavailable() or "no scoring for this workload")

    def describe(self) -> dict[str, Any]:
        a = self._artifact
        return {"name": self.name, "description": self.description,
                "model": str(a.path) if a else None, "model_sha256": a.sha256 if a else None,
                "synthetic_model": self.synthetic_weights, "sample_count": self.sample_count(),
                "dataset": str(self.dataset) if self.dataset else None,
                "generative": self.generative}


def read_model(path: Path) -> tuple[onnx.ModelProto, list[onnx.ValueInfoProto]]:
    """The model at ``path`` (without external weights) and its inputs that are not
    initializers; ModelError naming the fix when the file is not a readable ONNX model."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and others for corrupt files
        raise ModelError(f"{path} is not a readable ONNX model ({type(exc).__name__}); "
                         "give --model a valid .onnx file") from None
    init = {i.name for i in proto.graph.initializer}
    return proto, [i for i in proto.graph.input if i.name not in init]


def synthetic_samples(seed: int, indices: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Seeded standard-normal samples; sample i is the same whichever others are loaded."""
    out = np.empty((len(indices), *shape), np.float32)
    for row, i in enumerate(indices):
        out[row] = np.random.default_rng([seed, int(i)]).standard_normal(shape, np.float32)
    return out


def _atomic_save(model: onnx.ModelProto, path: Path) -> None:
    write_atomically(path, lambda tmp: onnx.save(model, str(tmp)))
