"""The GPU backends (``cuda``, ``tensorrt``) where no GPU exists: their runs are skipped with the
reason; what can be checked without a GPU is checked for real (availability and its advice, the
CLI's error, option parsing, the provider options, the engine cache key)."""
from __future__ import annotations

import sys
import types

import pytest

from cli_helpers import cli
from hwbench import backends
from hwbench.backends import cuda, tensorrt
from hwbench.errors import UsageError


@pytest.mark.parametrize("name", ["cuda", "tensorrt"])
def test_end_to_end_on_a_gpu(capsys, out_dir, name):
    avail = backends.backend_class(name).availability()
    if not avail.usable:
        pytest.skip(f"{name} needs an NVIDIA GPU: {avail.reason}")
    code, out, err = cli(capsys, "run", "--workload", "digits", "--backend", name, "--mode",
                         "both", "--output", str(out_dir), "--quiet")
    assert code == 0, err


@pytest.mark.parametrize("name", ["cuda", "tensorrt"])
def test_unusable_here_says_why_and_how_to_install(capsys, out_dir, name):
    avail = backends.backend_class(name).availability()
    if avail.usable:
        pytest.skip(f"{name} is usable here: this test covers machines without it")
    assert avail.reason and "pip install" in avail.install and "NVIDIA" in avail.install
    code, _, err = cli(capsys, "run", "--workload", "tiny", "--backend", name,
                       "--output", str(out_dir))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"backend {name} is not usable here: {avail.reason}" in err and "pip install" in err


def test_cuda_provider_options_follow_the_backend_options():
    opts = cuda.CudaBackend.parse_options((("cuda_graph", "yes"), ("conv_algo", "heuristic")))
    got = cuda.provider_options(opts, stream=1234)
    assert got == {"device_id": "0", "cudnn_conv_algo_search": "HEURISTIC", "use_tf32": "0",
                   "enable_cuda_graph": "1", "has_user_compute_stream": "1",
                   "user_compute_stream": "1234"}
    assert all(isinstance(v, str) for v in got.values())
    with pytest.raises(UsageError, match="conv_algo must be one of"):
        cuda.CudaBackend.parse_options((("conv_algo", "fastest"),))


def test_engine_key_changes_with_every_part_of_it():
    base = ("a" * 64, "10.12.0", "NVIDIA H100", "9.0", {"max_batch": 64, "tf32": False})
    key = tensorrt.engine_key(*base)
    assert key == tensorrt.engine_key(*base) and len(key) == 32
    for i, other in enumerate(("b" * 64, "11.0.0", "NVIDIA L4", "8.9",
                               {"max_batch": 32, "tf32": False})):
        changed = list(base)
        changed[i] = other
        assert tensorrt.engine_key(*changed) != key


def test_tensorrt_without_cuda_python_names_what_is_missing(monkeypatch):
    """A stand-in ``tensorrt`` module (TensorRT cannot be installed here) with cuda-python absent:
    availability points at the missing CUDA runtime bindings, not at TensorRT."""
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.12.0"))
    monkeypatch.setitem(sys.modules, "cuda", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    avail = tensorrt.TensorRtBackend.availability()
    assert not avail.usable and "cuda-python cannot be imported" in avail.reason
    assert "pip install" in avail.install
