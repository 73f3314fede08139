"""The ``torch`` backend, for real: digits accuracy through the CLI against the converted module
called directly, every scenario on tiny, the compute dtype recorded and judged by fidelity,
``--instances`` and dynamic batching, torch.compile, and one-line errors (exit 2) for what cannot
run here. The runs pin ``threads=1``: this project's machines are small and shared, and torch's
thread pool on a busy core slows a tiny model a hundredfold."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import test_cli_run
from cli_helpers import FAST, cli, run_json
from hwbench.backends.pytorch import TorchBackend
from hwbench.workloads.digits import Digits

_AVAIL = TorchBackend.availability()
pytestmark = pytest.mark.skipif(not _AVAIL.usable, reason=f"torch is not usable here: "
                                f"{_AVAIL.reason} ({_AVAIL.install})")
ONE = ("--backend-opt", "threads=1")


def _direct_top1() -> float:
    """Digits top-1 from the converted module called directly, one sample per call."""
    import torch

    from hwbench.backends import torch_convert

    w = Digits()
    module = torch_convert.convert(onnx.load(str(w.artifact().path))).eval()
    x = torch.from_numpy(w.load_samples(np.arange(w.sample_count())))
    with torch.inference_mode():
        pred = [int(module(x[i:i + 1]).argmax()) for i in range(len(x))]
    return float(np.mean(np.array(pred) == w.labels()))


def test_digits_accuracy_passes_at_fp32(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "torch",
                         "--mode", "accuracy", *ONE)
    assert code == 0, doc["invalid_reasons"]
    assert doc["validated"]["accuracy"] is True and doc["accuracy"]["passed"]
    assert doc["accuracy"]["value"] == pytest.approx(_direct_top1(), abs=1e-12)
    info = doc["backend_info"]
    assert info["name"] == "torch" and info["device"] == "cpu" and info["precision"] == "fp32"
    assert info["versions"]["torch"] and info["options"]["threads_used"] == 1
    assert info["device_compute_ms"] is None  # CUDA events only
    f = doc["fidelity"]
    assert f["passed"] and f["observed_precision"] == "fp32" and f["top1_agreement"] == 1.0


@pytest.mark.parametrize("scenario", list(test_cli_run.SCENARIO_ARGS))
def test_every_scenario_end_to_end(capsys, out_dir, scenario):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--scenario", scenario,
                         "--backend", "torch", *FAST, *test_cli_run.SCENARIO_ARGS[scenario], *ONE)
    assert code == 0, doc["invalid_reasons"]
    assert doc["valid"] and doc["validated"] == {"performance": True, "accuracy": None,
                                              "fidelity": True}
    m = doc["metrics"]
    assert m["completed_samples"] == m["issued_samples"] > 0
    assert doc["fidelity"]["passed"] and doc["fidelity"]["observed_precision"] == "fp32"


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_reduced_compute_dtype_is_declared_and_observed(capsys, out_dir, dtype):
    """dtype=bf16 casts weights and inputs: the result says bf16, and fidelity, measuring the
    model's own envelope, sees outputs as coarse as bf16's (not fp32's, not fp16's)."""
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "torch",
                         "--mode", "accuracy", *ONE, "--backend-opt", f"dtype={dtype}")
    assert code == 0, doc["invalid_reasons"]
    assert doc["backend_info"]["precision"] == dtype
    f = doc["fidelity"]
    assert f["declared_precision"] == dtype and f["observed_precision"] == dtype, f
    assert f["passed"] and f["envelope"]["method"].startswith("model: fp16 measured")
    assert doc["accuracy"]["passed"]


def test_fp16_artifact_runs_in_fp16(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "torch",
                         "--mode", "accuracy", "--precision", "fp16", *ONE)
    assert code == 0, doc["invalid_reasons"]
    assert doc["workload_info"]["artifact"]["precision"] == "fp16"
    assert doc["backend_info"]["precision"] == "fp16"
    assert doc["fidelity"]["observed_precision"] == "fp16" and doc["fidelity"]["passed"]


def test_instances_and_dynamic_batching(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "torch",
                         "--mode", "accuracy", "--instances", "2", "--batch-size", "4",
                         "--batch-timeout-us", "500", *ONE)
    assert code == 0, doc["invalid_reasons"]
    # Not thread-safe: one module per worker.
    assert doc["backend_info"]["concurrency"] == {"workers": 2, "backend_instances": 2}
    assert doc["accuracy"]["passed"] and doc["fidelity"]["passed"]


def test_channels_last_computes_the_same(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "torch",
                         "--mode", "accuracy", *ONE, "--backend-opt", "channels_last=1")
    assert code == 0, doc["invalid_reasons"]
    assert doc["backend_info"]["options"]["channels_last"] is True
    assert doc["accuracy"]["value"] == pytest.approx(_direct_top1(), abs=1e-12)
    assert doc["fidelity"]["observed_precision"] == "fp32"


def test_torch_compile_runs_compiled(capsys, out_dir):
    """Compiles with inductor (needs a C++ compiler, present here) in load, before the run."""
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "torch",
                         "--scenario", "single-stream", *FAST, *ONE,
                         "--backend-opt", "mode=compile")
    assert code == 0, doc["invalid_reasons"]
    assert doc["backend_info"]["options"]["mode"] == "compile"
    assert doc["fidelity"]["passed"] and doc["fidelity"]["observed_precision"] == "fp32"


def _einsum_model(path) -> str:
    """tiny's shapes (N, 64) -> (N, 10), computed by an op the converter does not know."""
    w = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    node = helper.make_node("Einsum", ["input", "w"], ["logits"], equation="ni,ij->nj")
    graph = helper.make_graph(
        [node], "einsum", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def _one_line(code: int, err: str) -> str:
    assert code == 2 and "Traceback" not in err, err
    # The one progress line before it, when --precision converts the artifact first, is allowed.
    lines = [ln for ln in err.strip().splitlines() if "converting the model to" not in ln]
    assert len(lines) == 1, lines
    return lines[0]


def test_an_unsupported_op_exits_2_naming_it(capsys, out_dir, tmp_path):
    code, _, err = cli(capsys, "run", "--workload", "tiny", "--backend", "torch",
                       "--model", _einsum_model(tmp_path / "einsum.onnx"),
                       "--output", str(out_dir))
    line = _one_line(code, err)
    assert "ONNX op Einsum" in line and "Gemm" in line and "--backend cpu" in line
    assert not out_dir.exists() or not any(out_dir.glob("*/result.json"))


@pytest.mark.parametrize("args,says", [
    (["--backend-opt", "device=tpu"], "not cpu, cuda or cuda:N"),
    (["--backend-opt", "mode=cudagraphs"], "mode=cudagraphs needs a CUDA device"),
    (["--backend-opt", "dtype=tf32"], "dtype=tf32 is a format of NVIDIA GPUs"),
    (["--backend-opt", "dtype=int4"], "dtype must be one of fp32, tf32, bf16, fp16"),
    (["--precision", "int8"], "does not run int8 (QDQ) artifacts"),
    (["--precision", "fp16", "--backend-opt", "dtype=bf16"], "applies to an fp32 artifact"),
])
def test_what_cannot_run_exits_2_with_one_line(capsys, out_dir, args, says):
    import torch

    if torch.cuda.is_available() and {"mode=cudagraphs", "dtype=tf32"} & set(args):
        pytest.skip("a GPU is present: cudagraphs and tf32 run")
    code, _, err = cli(capsys, "run", "--workload", "digits", "--backend", "torch",
                       "--mode", "accuracy", *args, "--output", str(out_dir))
    assert says in _one_line(code, err)


@pytest.mark.skipif(TorchBackend.availability().devices[1:] != (),
                    reason="a CUDA device is present")
def test_cuda_without_a_gpu_names_the_fix(capsys, out_dir):
    code, _, err = cli(capsys, "run", "--workload", "tiny", "--backend", "torch",
                       "--backend-opt", "device=cuda", "--output", str(out_dir))
    line = _one_line(code, err)
    assert "needs a CUDA build of torch and an NVIDIA GPU" in line
    assert "device=cpu" in line


@pytest.mark.skipif(len(TorchBackend.availability().devices) < 2, reason="no CUDA device here")
@pytest.mark.parametrize("mode", ["eager", "cudagraphs"])
def test_cuda_runs_with_device_compute_time(capsys, out_dir, mode):
    """Needs an NVIDIA GPU and a CUDA build of torch; skipped on this project's machines."""
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "torch",
                         "--mode", "both", "--duration", "0.5", "--warmup", "0.2",
                         "--backend-opt", "device=cuda", "--backend-opt", f"mode={mode}")
    assert code == 0, doc["invalid_reasons"]
    info = doc["backend_info"]
    assert info["device"].startswith("cuda:0") and info["precision"] == "fp32"
    assert info["device_compute_ms"] is not None
    assert doc["fidelity"]["observed_precision"] == "fp32"
