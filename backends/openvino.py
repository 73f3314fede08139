"""The ``openvino`` backend: the OpenVINO runtime on CPU, GPU, NPU or AUTO, from the ONNX artifact.

OpenVINO may compute in a lower precision than the model's (bf16 on CPUs that support it, by
default): the precision recorded is the one the compiled model reports, never the one asked for.
``run`` is thread-safe: each call borrows one of the compiled model's infer requests, so the
harness's workers (``--instances N``) keep that many requests in flight on the device's streams.
"""
from __future__ import annotations

from dataclasses import dataclass
import queue
from typing import Any, ClassVar

import numpy as np

from hwbench.artifacts import named_tensors, pack
from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, option
from hwbench.errors import BackendUnavailable, ModelError, UsageError

_INSTALL = "install it with: pip install 'hwbench[openvino]' (or pip install openvino)"
_DEVICES = ("CPU", "GPU", "NPU", "AUTO")
_HINTS = ("latency", "throughput", "cumulative_throughput")
# OpenVINO's element type names to hwbench's precision names.
_PRECISION = {"f32": "fp32", "bf16": "bf16", "f16": "fp16", "i8": "int8", "u8": "int8"}


class OpenVinoBackend(Backend):
    name: ClassVar[str] = "openvino"
    description: ClassVar[str] = "OpenVINO runtime (CPU, GPU, NPU, AUTO)"

    @dataclass(frozen=True)
    class Options:
        device: str = option("CPU", "OpenVINO device", choices=_DEVICES)
        hint: str = option("latency", "performance hint", choices=_HINTS)
        precision: str = option("auto", "inference precision (auto: OpenVINO's choice)",
                                choices=("auto", "f32", "bf16", "f16"))
        streams: int = option(0, "execution streams (0: the hint's choice)", minimum=0)
        requests: int = option(0, "infer requests (0: the device's optimal number)", minimum=0)
        threads: int = option(0, "inference threads (0: OpenVINO's default)", minimum=0)

    @classmethod
    def availability(cls) -> Availability:
        try:
            import openvino as ov
        except ImportError as exc:
            return Availability(False, f"openvino cannot be imported ({exc})", _INSTALL)
        core = ov.Core()
        devices = tuple(core.available_devices)
        if not devices:
            return Availability(False, "OpenVINO finds no device", _INSTALL)
        caps = {c for d in devices for c in core.get_property(d, "OPTIMIZATION_CAPABILITIES")}
        precisions = tuple(p for c, p in (("FP32", "fp32"), ("BF16", "bf16"), ("FP16", "fp16"),
                                          ("INT8", "int8")) if c in caps)
        return Availability(True, devices=(*devices, "AUTO"), precisions=precisions)

    def load(self, model: ModelArtifact) -> None:
        import openvino as ov

        core = ov.Core()
        device = self.opts.device
        present = core.available_devices
        if device != "AUTO" and not any(d.split(".")[0] == device for d in present):
            raise BackendUnavailable(f"openvino device {device} is not present here (devices: "
                                     f"{', '.join(present)}); use --backend-opt device=CPU")
        if device == "AUTO" and self.opts.precision != "auto":
            raise UsageError("openvino: precision= needs an explicit device (AUTO picks one per "
                             "device); add --backend-opt device=CPU")
        try:
            self._compiled = core.compile_model(core.read_model(str(model.path)), device,
                                                self._properties())
        except RuntimeError as exc:
            raise ModelError(f"openvino could not compile {model.path} for {device}: "
                             f"{str(exc).strip().splitlines()[-1]}") from None
        self._devices = list(self._compiled.get_property("EXECUTION_DEVICES"))
        self._precision = self._effective_precision(core)
        if model.precision == "int8":  # quantize/dequantize pairs run as int8 kernels
            self._precision = f"int8 (other ops {self._precision})"
        n = self.opts.requests or self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(max(1, int(n))):
            self._requests.put(self._compiled.create_infer_request())
        self._n_requests = max(1, int(n))
        # Several inputs or outputs are fed and read by name (the ONNX tensor names).
        self._named = len(model.inputs) > 1 or len(model.outputs) > 1
        self._input_names = model.input_names
        self._output_names = model.output_names
        self._output_ports = [self._port(model.path, name) for name in model.output_names]

    def _port(self, path: Any, name: str) -> Any:
        try:
            return self._compiled.output(name)
        except RuntimeError:
            raise ModelError(f"openvino: the compiled {path} has no output named {name!r}; run "
                             "it with --backend cpu") from None

    def _properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {"PERFORMANCE_HINT": self.opts.hint.upper()}
        if self.opts.precision != "auto":
            props["INFERENCE_PRECISION_HINT"] = self.opts.precision
        if self.opts.streams:
            props["NUM_STREAMS"] = str(self.opts.streams)
        if self.opts.threads:
            props["INFERENCE_NUM_THREADS"] = self.opts.threads
        return props

    def _effective_precision(self, core: Any) -> str:
        """What the compiled model computes in; AUTO does not report it, so its execution
        device's own default is asked instead."""
        try:
            kind = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        except RuntimeError:
            kind = core.get_property(self._devices[0].split(" ")[0], "INFERENCE_PRECISION_HINT")
        name = kind.get_type_name()
        return _PRECISION.get(name, name)

    def run(self, batch: np.ndarray) -> np.ndarray:
        request = self._requests.get()
        try:
            # infer() releases the GIL while the device computes; the output is copied because
            # the request, and its output tensor, go back to the pool for the next call.
            if self._named:
                request.infer(named_tensors(batch, self._input_names), share_inputs=True)
                return pack([request.get_tensor(p).data.copy() for p in self._output_ports],
                            self._output_names)
            request.infer({0: batch}, share_inputs=True)
            return request.get_output_tensor(0).data.copy()
        finally:
            self._requests.put(request)

    def info(self) -> BackendInfo:
        import openvino as ov

        opts: dict[str, Any] = self.option_values()
        # What OpenVINO chose, beside what was asked.
        opts.update(execution_devices=self._devices, infer_requests=self._n_requests)
        if self.opts.device != "AUTO":
            opts["num_streams"] = int(self._compiled.get_property("NUM_STREAMS"))
        return BackendInfo(self.name, device=",".join(self._devices), precision=self._precision,
                           thread_safe=True, versions={"openvino": ov.__version__}, options=opts)

    def close(self) -> None:
        self._requests = queue.SimpleQueue()
        self._compiled = None
