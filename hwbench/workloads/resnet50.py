"""``resnet50``: MLPerf's ResNet50-v1.5 image classifier, 224x224, on ImageNet 2012 validation.

With the user's files (``--model`` the official ONNX model, ``--dataset`` the validation folder in
MLPerf's layout) accuracy is scored against ``val_map.txt``. With ``--model`` alone, performance
runs on synthetic inputs of the model's geometry. Without either, the reference graph runs with
seeded synthetic weights. Without a dataset accuracy is not validated, and the result says why.
"""
from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import onnx

from hwbench.errors import DatasetError, ModelError
from hwbench.workloads import image_cache, imagenet, labelled
from hwbench.workloads.base import AccuracyReference, Workload, synthetic_samples
from hwbench.workloads.classification import Classifier
from hwbench.workloads.graphs import resnet50_v15

# md5 of MLPerf's resnet50_v1.onnx as MLCommons' CM automation downloads it
# (mlcommons/cm4mlops, script/get-ml-model-resnet50): opset-11 is zenodo record 4735647,
# opset-8 zenodo record 2592612. No sha256 is published for these files.
OFFICIAL_MD5 = {"f6a4da60cd5f084d97efc2c1ddb10beb": "opset-11 (zenodo.org/record/4735647)",
                "a638cf028b5870da29e09ccc2f7182e7": "opset-8 (zenodo.org/record/2592612)"}
FP32_TOP1 = 0.76456  # MLPerf's FP32 reference top-1 for ResNet50-v1.5
SYNSET_WORDS = "synset_words.txt"  # class names, optional, beside val_map.txt
_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
           onnx.TensorProto.BFLOAT16}


class ResNet50(Classifier, Workload):
    name: ClassVar[str] = "resnet50"
    description: ClassVar[str] = "ResNet50-v1.5 image classification, 224x224 (MLPerf)"
    server_latency_bound_ms: ClassVar[float] = 15.0  # MLPerf Inference's Server bound
    mlperf_performance_sample_count: ClassVar[int] = 1024
    sample_shape: ClassVar[tuple[int, ...]] = (3, 224, 224)
    synthetic_sample_count: ClassVar[int] = 256
    num_classes: ClassVar[int] = imagenet.NUM_CLASSES

    def __init__(self, model: str | None = None, dataset: str | None = None,
                 seed: int = 1) -> None:
        if dataset and not model:
            raise DatasetError("--dataset needs --model: synthetic weights cannot be scored; "
                               "give --model MLPerf's resnet50_v1.onnx (see docs/resnet50.md)")
        super().__init__(model=model, dataset=dataset, seed=seed)
        # Read now, so that a malformed val_map.txt stops the run before anything starts.
        self.listing = imagenet.read_listing(self.dataset) if self.dataset else None
        self._names = _class_names(self.dataset) if self.dataset else None
        self._images: np.ndarray | None = None
        self._probabilities = False  # the scored output is a softmax, not logits

    # --- the model -------------------------------------------------------------------------
    @property
    def generator_version(self) -> str:
        return "v1"

    def synthetic_model(self) -> onnx.ModelProto:
        return resnet50_v15(self.seed)

    def model_output(self, path: Path, model: onnx.ModelProto) -> onnx.ValueInfoProto:
        """The class-score output: MLPerf's model also outputs ``ArgMax:0`` (int64, one class
        per image); scoring needs every class's score (top-5, calibration), so the float
        output of width 1000 or 1001 (``softmax_tensor:0`` there) is chosen."""
        # A declared width of 1000 or 1001 first; an output without shape information last.
        outs = sorted((o for o in model.graph.output if _is_scores(o)),
                      key=lambda o: not o.type.tensor_type.HasField("shape"))
        if not outs:
            found = ", ".join(f"{o.name} {_shape(o)}" for o in model.graph.output)
            raise ModelError(f"{path}: no output gives 1000 or 1001 float class scores per "
                             f"image (found {found}); give an ImageNet classifier")
        out = outs[0]
        self._probabilities = any(n.op_type == "Softmax" and out.name in n.output
                                  for n in model.graph.node)
        return out

    @cached_property
    def official_model(self) -> str | None:
        """Which official MLPerf file the user's model is, or None when it is none of them."""
        if self.model_path is None:
            return None
        h = hashlib.md5(usedforsecurity=False)
        with open(self.model_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return OFFICIAL_MD5.get(h.hexdigest())

    # --- the samples -----------------------------------------------------------------------
    def prepare(self, progress: Callable[[str], None] | None = None) -> None:
        if self.model_path is not None and self.official_model is None and progress:
            progress(f"warning: {self.model_path} is not the official MLPerf resnet50_v1.onnx "
                     "(md5 differs); results are not comparable with MLPerf's")
        if self.listing is not None:
            imagenet.ready()  # the resize kernel compiled (or loaded) before anything is timed
            self._cached(progress)

    def _cached(self, progress: Callable[[str], None] | None = None) -> np.ndarray:
        if self._images is None:
            self._images = image_cache.load_or_build(self.listing, progress)
        return self._images

    def sample_count(self) -> int:
        return len(self.listing.files) if self.listing else self.synthetic_sample_count

    def load_samples(self, indices: np.ndarray) -> np.ndarray:
        if self.listing is None:
            return synthetic_samples(self.seed, indices, self.sample_shape)
        return self.preprocess_images(self.raw_images(indices))

    def labels(self) -> np.ndarray | None:
        return self.listing.labels if self.listing else None

    def raw_images(self, indices: np.ndarray) -> np.ndarray:
        """Decoded, resized (shorter side 256, area) and centre-cropped 224x224 RGB, / 255."""
        if self.listing is None:
            raise DatasetError("resnet50 has reference images only with --dataset")
        rows = self._cached()[np.asarray(indices, dtype=np.int64)]
        out = np.empty(rows.shape, dtype=np.float32)
        return np.divide(rows, np.float32(255.0), out=out)

    def preprocess_images(self, images: np.ndarray) -> np.ndarray:
        """MLPerf's ``pre_process_vgg`` after the crop: RGB means subtracted on the 0..255
        scale, NCHW float32. ``x / 255 * 255`` is exact in float32 for every 8-bit value."""
        return imagenet.to_model_input(images, scale=255.0)

    # --- the whole pipeline ------------------------------------------------------------------
    def encoded_unavailable(self) -> str | None:
        if self.listing is not None:
            return None
        return ("resnet50 has encoded image files only with --dataset: --pipeline full and both "
                "need --dataset (a folder of JPEGs with val_map.txt) and --model")

    def encoded_samples(self, indices: np.ndarray) -> list[bytes]:
        paths = self.listing.paths()
        return [paths[i].read_bytes() for i in np.asarray(indices, dtype=np.int64).tolist()]

    def decode_sample(self, data: bytes) -> np.ndarray:
        return imagenet.decode(data)

    def preprocess_sample(self, image: np.ndarray) -> np.ndarray:
        """Resize (area), centre crop and MLPerf's means: ``load_samples``'s pixels exactly."""
        return imagenet.to_model_input(imagenet.resize_crop(image)[None])[0]

    # --- correctness -----------------------------------------------------------------------
    def accuracy_unavailable(self) -> str | None:
        if self.listing is not None:
            return None
        if self.model_path is not None:
            return ("no --dataset: performance was measured on synthetic inputs of the model's "
                    "geometry, which have no labels; accuracy not validated (give --dataset the "
                    "ImageNet validation folder with val_map.txt)")
        return ("synthetic weights and inputs: accuracy not validated (give --model MLPerf's "
                "resnet50_v1.onnx and --dataset the ImageNet validation folder; 'digits' "
                "validates accuracy without downloads)")

    def class_names(self) -> tuple[str, ...] | None:
        """The 1000 class names from ``synset_words.txt`` beside ``val_map.txt``, if there."""
        return self._names

    def accuracy_reference(self) -> AccuracyReference | None:
        """MLPerf's published FP32 top-1 for the official model; for any other model, None: the
        run measures that model's own FP32 accuracy on the same images."""
        if self.official_model is None:
            return None
        return AccuracyReference(FP32_TOP1, f"MLPerf's FP32 top-1 of ResNet50-v1.5 (the official "
                                 f"model, {self.official_model})")

    def class_scores(self, rows: np.ndarray) -> np.ndarray:
        """1001 outputs: MLPerf's background class 0 is dropped (labels are 0..999). A softmax
        output becomes log-probabilities, so that scoring's softmax gives them back."""
        if rows.shape[1] == self.num_classes + 1:
            rows = rows[:, 1:]
        rows = super().class_scores(rows)
        if self._probabilities:
            rows = np.log(np.maximum(rows.astype(np.float64), np.finfo(np.float64).tiny))
        return rows

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self.model_path is not None:
            d["official_mlperf_model"] = self.official_model
        if self.listing is not None:
            d["reference_set"] = {"val_map_sha256": self.listing.val_map_sha256,
                                  "preprocessing": image_cache.PREPROCESSING_VERSION,
                                  "resize": imagenet.ready(),
                                  "cache": str(image_cache.cache_path(self.listing))}
        return d


def _class_names(root: Path) -> tuple[str, ...] | None:
    """``root/synset_words.txt`` (in the same Caffe archive as ``val.txt``: 'n01440764 tench,
    Tinca tinca' per line, in label order), read and checked now; None when it is not there."""
    path = root / SYNSET_WORDS
    if not path.is_file():
        return None
    names = labelled.read_class_names(path)
    if len(names) != imagenet.NUM_CLASSES:
        raise DatasetError(f"{path} lists {len(names)} classes, not {imagenet.NUM_CLASSES}: use "
                           "the archive's synset_words.txt, or remove it")
    return names


def _is_scores(out: onnx.ValueInfoProto) -> bool:
    """A float output that is, or may be, (N, 1000) or (N, 1001); the width is checked again
    on the outputs themselves when they are scored."""
    t = out.type.tensor_type
    if t.elem_type not in _FLOATS:
        return False
    if not t.HasField("shape"):
        return True
    dims = [d.dim_value for d in t.shape.dim]
    return len(dims) == 2 and dims[1] in (0, imagenet.NUM_CLASSES, imagenet.NUM_CLASSES + 1)


def _shape(out: onnx.ValueInfoProto) -> str:
    t = out.type.tensor_type
    dims = [d.dim_value or d.dim_param or "?" for d in t.shape.dim]
    return f"{onnx.TensorProto.DataType.Name(t.elem_type).lower()}{dims}"
