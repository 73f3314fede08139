"""The ``cuda`` backend: onnxruntime's CUDA execution provider on an NVIDIA GPU, from the same ONNX
artifact as every other backend (``--precision fp16|int8`` converts that artifact).

Each ``run`` copies the batch into a pinned host buffer, copies it to the device, computes, and
copies the outputs back, all on one CUDA stream that onnxruntime computes on too
(``user_compute_stream``): the copies are inside the latency the load generator measures, as
users get them. CUDA events around the compute alone give the GPU compute time, reported beside
the latency (``device_compute_ms``), never feeding it. With ``cuda_graph=1`` onnxruntime captures
one CUDA graph per batch size (``gpu_graph_id``) over fixed device buffers.

Not run here: this project's machines have no NVIDIA GPU; the option parsing, the provider
options and the reasons it is unusable are tested.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hwbench.backends import cudart
from hwbench.backends.base import (Availability, Backend, BackendInfo, ModelArtifact, option,
                                  require_single_tensor)
from hwbench.errors import BackendUnavailable, HwbenchError, ModelError

INSTALL = ("install it with: pip install 'hwbench[gpu]' (onnxruntime-gpu, which replaces "
           "onnxruntime, and cuda-python; needs an NVIDIA GPU and driver)")


def provider_options(opts: CudaBackend.Options, stream: int | None = None) -> dict[str, str]:
    """The CUDA execution provider's options for these backend options (all strings)."""
    out = {"device_id": str(opts.device_id),
           "cudnn_conv_algo_search": opts.conv_algo.upper(),
           "use_tf32": "1" if opts.tf32 else "0",
           "enable_cuda_graph": "1" if opts.cuda_graph else "0"}
    if stream is not None:
        out.update(has_user_compute_stream="1", user_compute_stream=str(stream))
    return out


class _Buffers:
    """Pinned host and device buffers for one batch size (fixed addresses, for CUDA graphs)."""

    def __init__(self, n: int, model: ModelArtifact) -> None:
        dt = np.dtype(model.dtype)
        self.host_in = cudart.PinnedArray((n, *model.sample_shape), dt)
        self.host_out = cudart.PinnedArray((n, *model.output_shape), dt)
        self.dev_in = cudart.DeviceBuffer(self.host_in.nbytes)
        self.dev_out = cudart.DeviceBuffer(self.host_out.nbytes)

    def free(self) -> None:
        for b in (self.host_in, self.host_out, self.dev_in, self.dev_out):
            b.free()


class CudaBackend(Backend):
    name: ClassVar[str] = "cuda"
    description: ClassVar[str] = "onnxruntime, CUDA execution provider (NVIDIA GPU)"

    @dataclass(frozen=True)
    class Options:
        device_id: int = option(0, "CUDA device index", minimum=0)
        cuda_graph: bool = option(False, "capture a CUDA graph per batch size")
        tf32: bool = option(False, "allow TF32 for fp32 convolutions and matmuls (Ampere+)")
        conv_algo: str = option("exhaustive", "cuDNN convolution algorithm search",
                                choices=("exhaustive", "heuristic", "default"))

    @classmethod
    def availability(cls) -> Availability:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return Availability(False, "this onnxruntime build has no CUDA execution provider",
                                INSTALL,
                                precisions=cudart.PRECISIONS)
        try:
            name, cc = cudart.device_name(0)
        except HwbenchError as exc:
            return Availability(False, f"no usable NVIDIA GPU ({exc})", INSTALL,
                                precisions=cudart.PRECISIONS)
        return Availability(True, devices=(f"cuda:0 {name} (sm {cc})",),
                            precisions=cudart.PRECISIONS)

    def load(self, model: ModelArtifact) -> None:
        require_single_tensor(self.name, model, "run it with --backend cpu, openvino or torch")
        import onnxruntime as ort

        self._model = model
        self._stream = cudart.Stream()
        self._buffers: dict[int, _Buffers] = {}
        self._times: list[float] = []
        providers = [("CUDAExecutionProvider", provider_options(self.opts, self._stream.address))]
        try:
            self._session = ort.InferenceSession(str(model.path), providers=providers)
        except Exception as exc:  # onnxruntime raises several unrelated types here
            raise ModelError(f"onnxruntime-gpu could not load {model.path}: "
                             f"{str(exc).splitlines()[0]}") from None
        if "CUDAExecutionProvider" not in self._session.get_providers():
            raise BackendUnavailable(f"onnxruntime fell back to the CPU; {INSTALL}")
        self._binding = self._session.io_binding()
        self._gpu, self._cc = cudart.device_name(self.opts.device_id)

    def _run_options(self, n: int) -> Any:
        import onnxruntime as ort

        ro = ort.RunOptions()
        if self.opts.cuda_graph:  # one graph per batch size: shapes differ between them
            ro.add_run_config_entry("gpu_graph_id", str(n))
        return ro

    def run(self, batch: np.ndarray) -> np.ndarray:
        n, m, s = len(batch), self._model, self._stream
        b = self._buffers.get(n) or self._buffers.setdefault(n, _Buffers(n, m))
        np.copyto(b.host_in.array, batch)
        s.to_device(b.dev_in.ptr, b.host_in.ptr, b.host_in.nbytes)
        dev = self.opts.device_id
        self._binding.bind_input(m.input_name, "cuda", dev, np.dtype(m.dtype),
                                 b.host_in.array.shape, b.dev_in.ptr)
        self._binding.bind_output(m.output_name, "cuda", dev, np.dtype(m.dtype),
                                  b.host_out.array.shape, b.dev_out.ptr)
        s.mark(0)
        self._session.run_with_iobinding(self._binding, self._run_options(n))
        s.mark(1)
        s.to_host(b.host_out.ptr, b.dev_out.ptr, b.host_out.nbytes)
        s.synchronize()
        self._times.append(s.compute_ms())
        return b.host_out.array  # reused: the SUT copies outputs it keeps

    def info(self) -> BackendInfo:
        import onnxruntime as ort

        precision = "tf32" if self._model.precision == "fp32" and self.opts.tf32 else \
            self._model.precision
        return BackendInfo(self.name, device=f"cuda:{self.opts.device_id} {self._gpu}",
                           precision=precision,
                           versions={"onnxruntime-gpu": ort.__version__, "compute_capability":
                                     self._cc}, options=self.option_values())

    def device_compute_ms(self) -> list[float] | None:
        return self._times

    def close(self) -> None:
        for b in getattr(self, "_buffers", {}).values():
            b.free()
        self._buffers = {}
        self._session = None
        if getattr(self, "_stream", None) is not None:
            self._stream.destroy()
            self._stream = None
