"""The ``cpu`` backend: onnxruntime's CPU execution provider, the FP32 reference of every run."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hwbench.artifacts import named_tensors, pack
from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, option
from hwbench.errors import ModelError

_LEVELS = ("disable", "basic", "extended", "all")


class CpuBackend(Backend):
    name: ClassVar[str] = "cpu"
    description: ClassVar[str] = "onnxruntime, CPU execution provider"

    @dataclass(frozen=True)
    class Options:
        threads: int = option(0, "intra-op threads (0: onnxruntime's default)", minimum=0)
        inter_threads: int = option(0, "inter-op threads (0: onnxruntime's default)", minimum=0)
        graph_optimization: str = option("all", "graph optimisation level", choices=_LEVELS)

    @classmethod
    def availability(cls) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return Availability(False, f"onnxruntime cannot be imported ({exc})",
                                "install it with: pip install onnxruntime")
        if "CPUExecutionProvider" not in ort.get_available_providers():
            return Availability(False, "this onnxruntime build has no CPU execution provider",
                                "install it with: pip install onnxruntime")
        return Availability(True, devices=("cpu",), precisions=("fp32", "fp16", "int8"))

    def load(self, model: ModelArtifact) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.opts.threads
        so.inter_op_num_threads = self.opts.inter_threads
        level = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                 "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                 "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                 "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        so.graph_optimization_level = level[self.opts.graph_optimization]
        try:
            self._session = ort.InferenceSession(str(model.path), so,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types here
            raise ModelError(f"onnxruntime could not load {model.path}: "
                             f"{str(exc).splitlines()[0]}; check the file is a valid ONNX model")
        self._inputs = model.input_name
        self._outputs = model.output_names
        # One input and one output keep the single-tensor path (no records to split or pack).
        self._named = len(model.inputs) > 1 or len(model.outputs) > 1
        self._input_names = model.input_names
        floats = [i.type for i in self._session.get_inputs() if "float" in i.type]
        self._precision = _computed_precision(
            model.precision, _precision_of(floats[0] if floats else "tensor(float)"))

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._named:
            feeds = named_tensors(batch, self._input_names)
            return pack(self._session.run(self._outputs, feeds), self._outputs)
        return self._session.run(self._outputs, {self._inputs: batch})[0]

    def info(self) -> BackendInfo:
        import onnxruntime as ort

        opts: dict[str, Any] = self.option_values()
        # InferenceSession.run is thread-safe: workers share one session.
        return BackendInfo(self.name, device="cpu", precision=self._precision, thread_safe=True,
                           versions={"onnxruntime": ort.__version__}, options=opts)

    def close(self) -> None:
        self._session = None


def _computed_precision(artifact: str, io: str) -> str:
    """An int8 (QDQ) graph runs as int8 kernels; an fp16 graph keeps fp16 only where the CPU
    provider has an fp16 kernel, and onnxruntime casts the rest to fp32 around them."""
    if artifact == "fp16":
        return "fp16 (fp32 where onnxruntime's CPU provider has no fp16 kernel)"
    return "int8" if artifact == "int8" else io


def _precision_of(onnx_type: str) -> str:
    return {"tensor(float)": "fp32", "tensor(float16)": "fp16",
            "tensor(bfloat16)": "bf16", "tensor(double)": "fp64"}.get(onnx_type, onnx_type)
