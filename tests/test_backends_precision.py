"""Reduced-precision artifacts: real conversions of the digits model with onnxruntime's own tools,
cached by source hash, recorded in the result, and run by every CPU backend."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest

from cli_helpers import run_json
from hwbench.passes import precision
from hwbench.workloads.digits import Digits


def _types(path) -> set[int]:
    return {i.data_type for i in onnx.load(str(path)).graph.initializer}


def test_fp16_artifact_keeps_fp32_io_and_is_cached():
    w = Digits()
    src = w.artifact()
    got = precision.convert(src, "fp16", w)
    assert got.precision == "fp16" and got.sha256 != src.sha256
    assert src.sha256[:24] in got.path.name and "fp16" in got.path.name
    assert onnx.TensorProto.FLOAT16 in _types(got.path)
    g = onnx.load(str(got.path)).graph
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fed like fp32
    assert (g.input[0].name, g.output[0].name) == (src.input_name, src.output_name)
    stamp = got.path.stat().st_mtime_ns
    assert precision.convert(src, "fp16", w).path.stat().st_mtime_ns == stamp  # not rebuilt
    assert precision.convert(src, "fp32", w) is src


def test_int8_artifact_has_quantize_dequantize_pairs():
    w = Digits()
    got = precision.convert(w.artifact(), "int8", w)
    ops = {n.op_type for n in onnx.load(str(got.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert precision.describe(got, w.artifact())["source_sha256"] == w.artifact().sha256



def test_int8_artifact_is_keyed_by_its_calibration_data():
    """Other calibration samples (synthetic inputs, then the user's reference set) make another
    file: a cached artifact calibrated on other data is never reused."""
    class Brighter(Digits):
        def load_samples(self, indices):
            return super().load_samples(indices) * np.float32(0.5)

    a, b = Digits(), Brighter()
    first = precision.convert(a.artifact(), "int8", a)
    other = precision.convert(b.artifact(), "int8", b)
    assert first.path != other.path and first.sha256 != other.sha256
    assert precision.convert(a.artifact(), "int8", a).path == first.path  # cached

@pytest.mark.parametrize("backend", ["cpu", "openvino"])
@pytest.mark.parametrize("prec", ["fp16", "int8"])
def test_reduced_precision_runs_are_scored_and_recorded(capsys, out_dir, backend, prec):
    from hwbench import backends

    avail = backends.backend_class(backend).availability()
    if not avail.usable:
        pytest.skip(f"{backend} is not usable here: {avail.reason}")
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", backend,
                         "--mode", "accuracy", "--precision", prec)
    art = doc["workload_info"]["artifact"]
    assert art["precision"] == prec and art["sha256"] != doc["workload_info"]["model_sha256"]
    assert doc["settings"]["config"]["precision"] == prec
    # The recorded artifact is the file on disk, and its graph really is the reduced one ...
    path = Path(art["path"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == art["sha256"]
    if prec == "fp16":
        assert onnx.TensorProto.FLOAT16 in _types(path)
        assert onnx.TensorProto.FLOAT not in _types(path)
    else:
        ops = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # ... and the backend ran it: its outputs, compared with an FP32 onnxruntime session on the
    # same samples, differ as that precision's rounding does (never bit-equal to FP32).
    fid = doc["fidelity"]
    assert fid["max_abs_error"] > 0 and fid["top1_agreement"] >= 0.9
    if not (backend == "openvino" and prec == "fp16"):
        # OpenVINO's CPU plugin decompresses fp16 weights and computes in its own precision;
        # elsewhere the outputs look like the artifact's precision.
        assert fid["observed_precision"] == prec
    # A reduced-precision digits model stays within a point of FP32 here, and passes.
    assert code == 0 and doc["accuracy"]["passed"], doc["invalid_reasons"]
    assert np.isclose(doc["accuracy"]["value"], doc["accuracy"]["reference"], atol=0.01)
