"""Reduced-precision model artifacts, made once from the workload's FP32 ONNX model and cached.

The artifact carries the precision, not a backend flag: ``--precision fp16`` converts the graph
with onnxruntime's float16 converter (inputs and outputs stay fp32, so every backend is fed the
same samples), and ``--precision int8`` inserts quantize/dequantize pairs with onnxruntime's static
quantizer, calibrated on samples drawn from the workload's own sample set. Every backend then runs
the same file, so precision is compared like for like, and strongly typed runtimes (TensorRT 10.12
and later) build exactly what the file says.

Cache key: the source model's sha256, the conversion, the converter's version, this module's
recipe version and, for int8, the sha256 of the calibration samples, so a new onnxruntime, a
changed recipe or other calibration data (synthetic inputs, then the user's reference set) never
reuses a stale file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from hwbench.artifacts import named_tensors
from hwbench.atomic import write_atomically
from hwbench.backends.base import ModelArtifact
from hwbench.errors import ModelError
from hwbench.workloads import Workload
from hwbench.workloads.base import cache_dir, sha256_of

RECIPE_VERSION = 1  # bump when a conversion below would produce other bytes
CALIBRATION_SAMPLES = 64


def convert(model: ModelArtifact, precision: str, workload: Workload,
            progress: Callable[[str], None] | None = None) -> ModelArtifact:
    """The artifact at ``precision``: ``model`` itself for fp32, else a cached conversion. A
    generative workload's model is torch's, not a file to convert: the artifact only names the
    precision, and the backend casts the weights as it loads them."""
    if precision == "fp32":
        return model
    if workload.generative:
        return dataclasses.replace(model, precision=precision)
    import onnxruntime as ort

    calibration = _calibration_samples(workload) if precision == "int8" else None
    tag = "" if calibration is None else f"-cal{_digest(calibration)}"
    path = cache_dir() / "artifacts" / (f"{model.sha256[:24]}-{precision}-"
                                        f"ort{ort.__version__}-r{RECIPE_VERSION}{tag}.onnx")
    if not path.is_file():
        if progress:
            progress(f"converting the model to {precision} (once) in {path}")
        if calibration is None:
            write_atomically(path, lambda tmp: _fp16(model, tmp), suffix=".onnx")
        else:
            write_atomically(path, lambda tmp: _int8(model, calibration, tmp), suffix=".onnx")
    return dataclasses.replace(model, path=path, sha256=sha256_of(path), precision=precision)


def describe(model: ModelArtifact, source: ModelArtifact) -> dict | None:
    """What the result records about a converted artifact (None when the source ran)."""
    if model is source:
        return None
    if not hasattr(model, "sha256"):  # a generative workload's torch model: cast, not converted
        return {"precision": model.precision, "converter": "the backend casts the weights as it "
                "loads them", "path": None, "sha256": None, "source_sha256": None}
    import onnxruntime as ort

    converter = {"fp16": "onnxruntime.transformers.float16 (keep_io_types)",
                 "int8": f"onnxruntime.quantization.quantize_static (QDQ, int8, MinMax, "
                         f"{CALIBRATION_SAMPLES} calibration samples)"}[model.precision]
    return {"precision": model.precision, "path": str(model.path), "sha256": model.sha256,
            "source_sha256": source.sha256, "converter": converter,
            "converter_version": ort.__version__, "recipe_version": RECIPE_VERSION}


def _calibration_samples(workload: Workload) -> np.ndarray:
    count = workload.sample_count()
    # Evenly spread over the sample set, so that every class of a sorted reference set is seen.
    picks = np.unique(np.linspace(0, count - 1, min(count, CALIBRATION_SAMPLES)).astype(np.int64))
    return np.ascontiguousarray(workload.load_samples(picks))


def _digest(data: np.ndarray) -> str:
    return hashlib.sha256(data.tobytes()).hexdigest()[:12]


def _fp16(model: ModelArtifact, out: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load(str(model.path))
    onnx.save(convert_float_to_float16(proto, keep_io_types=True), str(out))


def _int8(model: ModelArtifact, data: np.ndarray, out: Path) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._rows = iter(data)

        def get_next(self) -> dict | None:
            row = next(self._rows, None)
            return None if row is None else named_tensors(row[None], model.input_names)

    # The quantizer logs advice to the root logger; hwbench's output stays its own.
    logging.disable(logging.WARNING)
    try:
        quantize_static(str(model.path), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
    except Exception as exc:  # the quantizer raises many types for graphs it cannot handle
        raise ModelError(f"int8 quantization of {model.path} failed ({type(exc).__name__}: "
                         f"{exc}); run this model with --precision fp32 or fp16") from None
    finally:
        logging.disable(logging.NOTSET)

