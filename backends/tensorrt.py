"""The ``tensorrt`` backend: a TensorRT engine built from the same ONNX artifact as every other
backend, run with ``execute_async_v3`` on a CUDA stream.

Not run here: TensorRT cannot be installed on this project's machines (no NVIDIA GPU). It is
written against TensorRT's documented Python API for 10.x and 11.x and kept small; its tests
check the engine cache key and the error paths only.

Precision lives in the artifact, not in builder flags: the network is strongly typed (the flag
TensorRT 10 needs; TensorRT 11 is always strongly typed), so an fp32, fp16 or int8 (Q/DQ) ONNX
file from ``--precision`` builds exactly that, and TF32 is off unless asked for. Engines are cached
under the cache directory, keyed by the model's sha256, the TensorRT version, the GPU's name and
compute capability, and the build options.
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib
import json
from typing import Any, ClassVar

import numpy as np

from hwbench.artifacts import cache_dir
from hwbench.atomic import write_atomically
from hwbench.backends import cudart
from hwbench.backends.base import (Availability, Backend, BackendInfo, ModelArtifact, option,
                                  require_single_tensor)
from hwbench.errors import BackendUnavailable, HwbenchError, ModelError

INSTALL = ("install it with: pip install 'hwbench[tensorrt]' (NVIDIA's tensorrt wheels and "
           "cuda-python; needs an NVIDIA GPU and driver)")


def _trt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(f"tensorrt cannot be imported ({exc}); {INSTALL}") from None
    return trt


def engine_key(model_sha256: str, trt_version: str, gpu: str, capability: str,
               build: dict[str, Any]) -> str:
    """The engine cache key: an engine is only valid for this model, TensorRT, GPU and build."""
    text = json.dumps({"model": model_sha256, "tensorrt": trt_version, "gpu": gpu,
                       "compute_capability": capability, "build": build}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class TensorRtBackend(Backend):
    name: ClassVar[str] = "tensorrt"
    description: ClassVar[str] = "NVIDIA TensorRT engine built from the ONNX artifact"

    @dataclass(frozen=True)
    class Options:
        device_id: int = option(0, "CUDA device index", minimum=0)
        max_batch: int = option(64, "largest batch the engine accepts", minimum=1)
        workspace_mb: int = option(1024, "builder workspace limit, MiB", minimum=1)
        tf32: bool = option(False, "allow TF32 in fp32 layers (Ampere+)")

    @classmethod
    def availability(cls) -> Availability:
        try:
            trt = _trt()
            gpu, cc = cudart.device_name(0)
        except HwbenchError as exc:
            return Availability(False, str(exc).split(";")[0], INSTALL,
                                precisions=cudart.PRECISIONS)
        device = f"cuda:0 {gpu} (sm {cc}), TensorRT {trt.__version__}"
        return Availability(True, devices=(device,),
                            precisions=cudart.PRECISIONS)

    def _build_options(self) -> dict[str, Any]:
        return {k: getattr(self.opts, k) for k in ("max_batch", "workspace_mb", "tf32")}

    def load(self, model: ModelArtifact) -> None:
        require_single_tensor(self.name, model, "run it with --backend cpu, openvino or torch")
        trt = _trt()
        self._model = model
        self._gpu, self._cc = cudart.device_name(self.opts.device_id)
        key = engine_key(model.sha256, trt.__version__, self._gpu, self._cc, self._build_options())
        path = cache_dir() / "engines" / f"{key}.engine"
        if not path.is_file():
            engine = self._build(trt, model)
            write_atomically(path, lambda tmp: tmp.write_bytes(engine))
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(self._logger).deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise ModelError(f"TensorRT could not deserialize the cached engine {path}; delete it")
        self._context = self._engine.create_execution_context()
        self._allocate(model)

    def _build(self, trt: Any, model: ModelArtifact) -> bytes:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(model.path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(f"TensorRT's ONNX parser rejected {model.path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.opts.workspace_mb << 20)
        if not self.opts.tf32 and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)
        profile = builder.create_optimization_profile()
        shape, top = model.sample_shape, self.opts.max_batch
        profile.set_shape(model.input_name, (1, *shape), (top, *shape), (top, *shape))
        config.add_optimization_profile(profile)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise ModelError(f"TensorRT could not build an engine from {model.path}")
        return bytes(blob)

    def _allocate(self, model: ModelArtifact) -> None:
        top, dt = self.opts.max_batch, np.dtype(model.dtype)
        self._stream = cudart.Stream()
        self._in = cudart.PinnedArray((top, *model.sample_shape), dt)
        self._out = cudart.PinnedArray((top, *model.output_shape), dt)
        self._dev_in = cudart.DeviceBuffer(self._in.nbytes)
        self._dev_out = cudart.DeviceBuffer(self._out.nbytes)
        self._context.set_tensor_address(model.input_name, self._dev_in.ptr)
        self._context.set_tensor_address(model.output_name, self._dev_out.ptr)
        self._times: list[float] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        n, m, s = len(batch), self._model, self._stream
        self._context.set_input_shape(m.input_name, (n, *m.sample_shape))
        np.copyto(self._in.array[:n], batch)
        s.to_device(self._dev_in.ptr, self._in.ptr, self._in.array[:n].nbytes)
        s.mark(0)
        if not self._context.execute_async_v3(s.address):
            raise HwbenchError("TensorRT execute_async_v3 failed")
        s.mark(1)
        s.to_host(self._out.ptr, self._dev_out.ptr, self._out.array[:n].nbytes)
        s.synchronize()
        self._times.append(s.compute_ms())
        return self._out.array[:n]  # reused: the SUT copies outputs it keeps

    def info(self) -> BackendInfo:
        precision = "tf32" if self._model.precision == "fp32" and self.opts.tf32 else \
            self._model.precision
        return BackendInfo(self.name, device=f"cuda:{self.opts.device_id} {self._gpu}",
                           precision=precision, max_batch_size=self.opts.max_batch,
                           versions={"tensorrt": _trt().__version__,
                                     "compute_capability": self._cc}, options=self.option_values())

    def device_compute_ms(self) -> list[float] | None:
        return self._times

    def close(self) -> None:
        for name in ("_in", "_out", "_dev_in", "_dev_out"):
            if getattr(self, name, None) is not None:
                getattr(self, name).free()
        if getattr(self, "_stream", None) is not None:
            self._stream.destroy()
            self._stream = None
        self._context = self._engine = None
