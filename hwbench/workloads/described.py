"""A labelled image classifier described by a workload file (``workfile.py``), without code.

Images are decoded (EXIF orientation applied, RGB), their shorter side resized and centre-cropped
once into the preprocessed-image cache (``image_cache.py``; uint8, keyed by the files and the
geometry); colour order, normalisation and layout are applied when samples are loaded. So
``raw_images`` are the cropped RGB images in [0, 1], and robustness corrupts them as it does
ImageNet's. An npz of model inputs has no images: it is scored, but not corrupted.
"""
from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import onnx

from hwbench.artifacts import ModelArtifact
from hwbench.errors import DatasetError, ModelError, UsageError
from hwbench.workloads import image_cache, imagenet, labelled, workfile
from hwbench.workloads.base import AccuracyReference, Workload, cache_dir
from hwbench.workloads.classification import Classifier
from hwbench.workloads.workfile import PreprocessSpec, WorkloadSpec

# Bumped whenever decoding, resizing or cropping would give other pixels.
PREPROCESSING_VERSION = "workfile-v1"
_PIL_FILTERS = {"bilinear": "BILINEAR", "bicubic": "BICUBIC", "nearest": "NEAREST"}


class Described(Classifier, Workload):
    """The workload a file describes: its name, model, reference set and scoring are the file's."""

    name: ClassVar[str] = "FILE.toml"
    description: ClassVar[str] = ("your own labelled image classifier, described in a workload "
                                  "file (README, 'Your own workload')")
    server_latency_bound_ms: ClassVar[float] = workfile.DEFAULT_LATENCY_BOUND_MS
    mlperf_performance_sample_count: ClassVar[int] = 1024

    def __init__(self, spec: WorkloadSpec, model: str | None = None, seed: int = 1) -> None:
        super().__init__(model=model or str(spec.model), dataset=str(spec.dataset.path),
                         seed=seed)
        self.spec = spec
        self.name = spec.name
        self.description = spec.description or f"described by {spec.file}"
        self.server_latency_bound_ms = spec.latency_bound_ms
        self.metric = spec.accuracy.metric
        self.target_ratio = spec.accuracy.target_ratio
        self.probabilities = spec.output.kind == "probabilities"
        names = (labelled.read_class_names(spec.output.class_names)
                 if spec.output.class_names else None)
        self._images: np.ndarray | None = None
        self._inputs: np.ndarray | None = None
        layout = spec.dataset.layout
        if layout == "npz":
            self._inputs, self._labels = labelled.read_npz(spec.dataset.path)
            if names is not None and self._labels.max() >= len(names):
                raise DatasetError(f"{spec.dataset.path}: label {self._labels.max()} has no line "
                                   f"in {spec.output.class_names}: give labels below "
                                   f"{len(names)}, or list every class there")
            self.classes = names
            self.sample_shape = tuple(self._inputs.shape[1:])
        else:
            read = labelled.read_imagefolder if layout == "imagefolder" else labelled.read_list
            found = read(spec.dataset.path, names)
            self.files, self._labels, self.classes = found.files, found.labels, found.classes
            self.sample_shape = _shape(spec.preprocess)
        if self.classes is not None:
            self.num_classes = len(self.classes)
        else:  # until the model says how many it scores
            self.num_classes = int(self._labels.max()) + 1

    @classmethod
    def from_file(cls, path: Path, model: str | None = None, dataset: str | None = None,
                  seed: int = 1) -> Described:
        if dataset:
            raise UsageError(f"{path} names its reference set ([dataset] path): drop --dataset, "
                             "or edit the file")
        return cls(workfile.load(path), model=model, seed=seed)

    # --- the model -------------------------------------------------------------------------
    @property
    def synthetic_weights(self) -> bool:
        return False

    def artifact(self, progress: Callable[[str], None] | None = None) -> ModelArtifact:
        if self._artifact is None and not self.model_path.is_file():
            raise ModelError(f"model file {self.model_path} not found: set model in "
                             f"{self.spec.file} (relative to the file), or give --model")
        return super().artifact(progress)

    def check_input(self, path: Path, graph_input: onnx.ValueInfoProto, dims: list[int]) -> None:
        elem = graph_input.type.tensor_type.elem_type
        if elem != onnx.TensorProto.FLOAT:
            kind = onnx.TensorProto.DataType.Name(elem).lower()
            raise ModelError(f"{path}: the model's input is {kind}; workload files feed float32 "
                             "([preprocess] dtype): export the model with a float32 input")
        if len(dims) != len(self.sample_shape) or any(
                d and d != s for d, s in zip(dims, self.sample_shape)):
            raise ModelError(f"{path}: the model takes {dims} per sample, but {self.spec.file} "
                             f"gives {list(self.sample_shape)} ({self._geometry()}): "
                             f"{self._geometry_fix()}")

    def _geometry(self) -> str:
        p = self.spec.preprocess
        if p is None:
            return "its npz inputs"
        return f"center_crop {p.center_crop}, layout {p.layout}"

    def _geometry_fix(self) -> str:
        if self.spec.preprocess is None:
            return "save inputs of the model's shape in the npz"
        return "set [preprocess] center_crop and layout to the model's input"

    def model_output(self, path: Path, model: onnx.ModelProto) -> onnx.ValueInfoProto:
        want = self.spec.output.name
        outs = [o for o in model.graph.output if want is None or o.name == want]
        if not outs:
            found = ", ".join(o.name for o in model.graph.output)
            raise ModelError(f"{path} has no output {want!r} (it has {found}): set [output] "
                             "name to one of them")
        out = outs[0]
        dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
        width = dims[-1] if len(dims) == 2 else 0
        offset = self.spec.output.class_offset
        if width and self.classes is not None and width - offset != self.num_classes:
            raise ModelError(f"{path}: output {out.name} gives {width} scores, {width - offset} "
                             f"after class_offset {offset}, for {self.num_classes} classes: "
                             "set [output] class_offset, or class_names to the model's classes")
        if width and self.classes is None:
            if width - offset < self.num_classes:
                raise ModelError(f"{path}: output {out.name} gives {width - offset} class scores "
                                 f"after class_offset {offset}, but labels reach "
                                 f"{self.num_classes - 1}: set [output] class_offset or fix the "
                                 "labels")
            self.num_classes = width - offset
        if self.metric == "top5" and self.num_classes <= 5:
            raise UsageError(f"{self.spec.file}: [accuracy] metric = \"top5\" needs more than 5 "
                             f"classes, this model scores {self.num_classes}: use top1")
        return out

    # --- the samples -----------------------------------------------------------------------
    def prepare(self, progress: Callable[[str], None] | None = None) -> None:
        if self._inputs is None:
            imagenet.ready()  # the resize kernel compiled (or loaded) before anything is timed
            self._cached(progress)

    @cached_property
    def cache_path(self) -> Path:
        p = self.spec.preprocess
        stats = [f.stat() for f in self.files]
        ident = {"files": [str(f) for f in self.files],
                 "stat": [(st.st_size, st.st_mtime_ns) for st in stats],
                 "resize_shorter": p.resize_shorter, "interpolation": p.interpolation,
                 "center_crop": p.center_crop, "preprocessing": PREPROCESSING_VERSION}
        key = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32]
        return cache_dir() / "workloads" / f"{key}.npy"

    def _cached(self, progress: Callable[[str], None] | None = None) -> np.ndarray:
        if self._images is None:
            crop = self.spec.preprocess.center_crop
            self._images = image_cache.cached_images(self.cache_path, list(self.files),
                                                     self._load_image, (crop, crop, 3), progress)
        return self._images

    def _load_image(self, path: Path) -> np.ndarray:
        fix = f"replace the file or remove it from {self.spec.dataset.path}"
        return load_image(imagenet.decode(path, fix=fix), self.spec.preprocess, path)

    def sample_count(self) -> int:
        return len(self._labels)

    def load_samples(self, indices: np.ndarray) -> np.ndarray:
        if self._inputs is not None:
            return self._inputs[np.asarray(indices, dtype=np.int64)]
        return self.preprocess_images(self.raw_images(indices))

    def labels(self) -> np.ndarray:
        return self._labels

    def images_unavailable(self) -> str | None:
        if self._inputs is not None:
            return (f"{self.spec.dataset.path} holds model inputs, not images: robustness needs "
                    "an image reference set (layout imagefolder or list)")
        return None

    def raw_images(self, indices: np.ndarray) -> np.ndarray:
        """The decoded, resized and cropped RGB images, / 255: float32 ``(N, crop, crop, 3)``."""
        if self._inputs is not None:
            raise DatasetError(self.images_unavailable())
        rows = self._cached()[np.asarray(indices, dtype=np.int64)]
        return np.divide(rows, np.float32(255.0), dtype=np.float32)

    def preprocess_images(self, images: np.ndarray) -> np.ndarray:
        """To the 0..255 scale (exact for 8-bit values), the file's channel order, then
        ``(pixel - mean) / std`` or ``pixel x scale``, in the file's layout, float32."""
        return to_model_input(images, self.spec.preprocess)

    # --- the whole pipeline ------------------------------------------------------------------
    def encoded_unavailable(self) -> str | None:
        if self._inputs is None:
            return None
        return (f"{self.spec.dataset.path} holds model inputs, not encoded images: --pipeline "
                "full and both need an image reference set (layout imagefolder or list)")

    def encoded_samples(self, indices: np.ndarray) -> list[bytes]:
        return [self.files[i].read_bytes() for i in np.asarray(indices, dtype=np.int64).tolist()]

    def decode_sample(self, data: bytes) -> np.ndarray:
        return imagenet.decode(data, fix=f"replace the file in {self.spec.dataset.path}")

    def preprocess_sample(self, image: np.ndarray) -> np.ndarray:
        """The file's resize and crop, then its colour order, normalisation and layout:
        ``load_samples``'s values exactly (the same operations on the same uint8 pixels)."""
        crop = load_image(image, self.spec.preprocess, self.spec.dataset.path)
        return to_model_input(np.divide(crop[None], np.float32(255.0), dtype=np.float32),
                              self.spec.preprocess)[0]

    # --- correctness -----------------------------------------------------------------------
    def class_names(self) -> tuple[str, ...] | None:
        """The class folders' names (imagefolder) or the file's class_names, in label order."""
        return self.classes

    def accuracy_reference(self) -> AccuracyReference | None:
        declared = self.spec.accuracy.reference
        if declared is None:
            return None
        return AccuracyReference(declared, f"declared in {self.spec.file} ([accuracy] reference)")

    def class_scores(self, rows: np.ndarray) -> np.ndarray:
        """The background columns (class_offset) dropped; logits or probabilities as they are
        (calibration reads probabilities as given, without a softmax)."""
        return super().class_scores(rows[:, self.spec.output.class_offset:])

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        spec = {k: v for k, v in self.spec.to_dict().items() if k not in ("file", "sha256")}
        d["workload_file"] = {"path": str(self.spec.file), "sha256": self.spec.sha256,
                              "spec": spec}
        ref = {"layout": self.spec.dataset.layout, "classes": self.num_classes,
               "class_names": list(self.classes) if self.classes else None}
        if self._inputs is None:
            ref.update(preprocessing=PREPROCESSING_VERSION, cache=str(self.cache_path))
        d["reference_set"] = ref
        return d


def _shape(p: PreprocessSpec) -> tuple[int, ...]:
    c = p.center_crop
    return (3, c, c) if p.layout == "NCHW" else (c, c, 3)


def load_image(rgb: np.ndarray, p: PreprocessSpec, path: Path) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` -> uint8 ``(crop, crop, 3)``: the shorter side resized (area, as
    OpenCV's INTER_AREA and MLPerf; or Pillow's filter), then the centre crop."""
    crop = p.center_crop
    if p.resize_shorter is not None and p.interpolation == "area":
        return imagenet.resize_crop(rgb, p.resize_shorter, crop)
    if p.resize_shorter is not None:
        from PIL import Image

        h, w = rgb.shape[:2]
        size = imagenet.resized_size(w, h, p.resize_shorter)
        filt = getattr(Image.Resampling, _PIL_FILTERS[p.interpolation])
        rgb = np.asarray(Image.fromarray(rgb).resize(size, filt))
    h, w = rgb.shape[:2]
    if min(h, w) < crop:
        raise DatasetError(f"{path}: {w}x{h} is smaller than center_crop {crop}: set "
                           "[preprocess] resize_shorter, or use larger images")
    top, left = int((h - crop) / 2), int((w - crop) / 2)
    return np.ascontiguousarray(rgb[top:top + crop, left:left + crop])


def to_model_input(images: np.ndarray, p: PreprocessSpec) -> np.ndarray:
    """``(N, H, W, 3)`` RGB in [0, 1] -> the model's input, float32."""
    x = np.multiply(images, np.float32(255.0), dtype=np.float32)
    if p.color == "BGR":
        x = x[..., ::-1]
    if p.scale is not None:
        x *= np.float32(p.scale)
    else:
        if p.mean is not None:
            x -= np.asarray(p.mean, dtype=np.float32)
        if p.std is not None:
            x /= np.asarray(p.std, dtype=np.float32)
    if p.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)
