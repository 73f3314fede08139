"""The ``torch`` backend: PyTorch running the same ONNX artifact as every other backend, converted
once into a ``torch.nn.Module`` by ``torch_convert`` (this module is not named ``torch.py``, which
would shadow the package inside ``hwbench.backends``).

``dtype`` is the compute type of an fp32 artifact: weights and inputs are cast to it and the
outputs cast back to fp32; the result records it as the precision, and fidelity judges it against
the FP32 reference. An fp16 artifact (``--precision fp16``) runs as the file says, in fp16; an int8
(QDQ) artifact is refused (exit 2): the converter has no QuantizeLinear/DequantizeLinear, and
emulating them in float would declare int8 without int8 kernels.

On the CPU a batch becomes a tensor without a copy (``torch.from_numpy``). On CUDA each instance
has its own stream: the batch is copied into a pinned host buffer, to the device, computed and
copied back on that stream, all inside the latency the load generator measures; CUDA events
around the compute alone give ``device_compute_ms``. The CUDA path is written to torch's
documented API and not run here (this project's machines have no NVIDIA GPU).

``mode=compile`` (``torch.compile``) and ``mode=cudagraphs`` (``torch.compile`` with
``mode="reduce-overhead"``, CUDA only) compile in ``load`` with one warm-up batch, outside the
measured window; a batch size seen first during the run compiles then, in the run's warm-up.
The backend never reads a clock.

The ``llm`` workload is served, not run: loaded with its artifact, the backend streams
(``info().streams``) through ``torch_llm``'s engine, iteration-level (continuous) batching over a
paged KV cache, bounded by ``max_seqs`` concurrent sequences and ``kv_cache_mb`` of cache
(requests wait when it is full), prefilling at most ``prefill_chunk`` prompt tokens per
iteration. ``dtype`` is the precision the model computes in; ``logits`` gives teacher-forced
logits at that precision for fidelity.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hwbench.artifacts import named_tensors, pack
from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, option
from hwbench.errors import BackendUnavailable, ModelError, UsageError

INSTALL = ("install it with: pip install 'hwbench[torch]' (the CPU build where that is what the "
           "registry serves; a CUDA build of torch for NVIDIA GPUs)")
_DTYPES = ("fp32", "tf32", "bf16", "fp16")


class TorchBackend(Backend):
    name: ClassVar[str] = "torch"
    description: ClassVar[str] = ("PyTorch: the ONNX artifact converted to a torch module; "
                                  "serves the llm workload with continuous batching")
    streams: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options:
        device: str = option("cpu", "cpu, cuda or cuda:N")
        mode: str = option("eager", "eager, compile (torch.compile), cudagraphs (CUDA only)",
                           choices=("eager", "compile", "cudagraphs"))
        dtype: str = option("fp32", "compute type of an fp32 artifact", choices=_DTYPES)
        channels_last: bool = option(False, "channels-last memory format for 4-D tensors")
        threads: int = option(0, "intra-op threads (0: torch's default)", minimum=0)
        max_seqs: int = option(64, "llm: most sequences in the running batch", minimum=1)
        kv_cache_mb: int = option(512, "llm: KV-cache memory in MiB; requests wait when it is "
                                  "full", minimum=1)
        prefill_chunk: int = option(256, "llm: most prompt tokens prefilled per iteration",
                                    minimum=1)

    @classmethod
    def availability(cls) -> Availability:
        try:
            import torch
        except ImportError as exc:
            return Availability(False, f"torch cannot be imported ({exc})", INSTALL)
        devices = ["cpu"]
        if torch.cuda.is_available():
            devices += [f"cuda:{i} {torch.cuda.get_device_name(i)}"
                        for i in range(torch.cuda.device_count())]
        precisions = _DTYPES if len(devices) > 1 else ("fp32", "bf16", "fp16")
        return Availability(True, devices=tuple(devices), precisions=precisions)

    def load(self, model: ModelArtifact) -> None:
        import onnx
        import torch

        from hwbench.backends import torch_convert

        self._device = _device(self.opts.device)
        self._engine = None
        if callable(getattr(model, "build", None)):  # a model that builds itself in torch: llm
            return self._load_llm(model)
        self._precision, compute = _precision(self.opts, model.precision, self._device)
        if self.opts.mode == "cudagraphs" and self._device.type != "cuda":
            raise UsageError("backend torch: mode=cudagraphs needs a CUDA device; use "
                             "--backend-opt mode=compile on the CPU")
        if self.opts.threads:
            torch.set_num_threads(self.opts.threads)  # process-wide, as torch has it
        if self._device.type == "cuda":
            tf32 = self.opts.dtype == "tf32"  # otherwise fp32 means fp32 (cuDNN defaults to TF32)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
        self._dtype = getattr(torch, compute)
        self._model = model
        module = torch_convert.convert(onnx.load(str(model.path)), self._dtype).eval()
        module = module.to(self._device)
        self._channels_last = self.opts.channels_last
        if self._channels_last:
            module = module.to(memory_format=torch.channels_last)
        # Several inputs or outputs: named tensors in, records out (module docstring of base).
        self._named = len(model.inputs) > 1 or len(model.outputs) > 1
        self._module = self._compiled(module)
        self._times: list[float] = []
        self._pinned: dict[int, tuple[Any, Any]] = {}
        self._stream = torch.cuda.Stream(self._device) if self._device.type == "cuda" else None

    def _load_llm(self, artifact: Any) -> None:
        import torch

        from hwbench.backends import torch_llm

        if self.opts.mode != "eager":
            raise UsageError(f"backend torch: mode={self.opts.mode} applies to the ONNX "
                             "workloads; the llm workload is served eager: drop mode")
        self._precision, compute = _precision(self.opts, "fp32", self._device)
        if self.opts.threads:
            torch.set_num_threads(self.opts.threads)
        if self._device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.opts.dtype == "tf32"
        self._engine = torch_llm.load(
            artifact, device=self._device, dtype=getattr(torch, compute),
            max_seqs=self.opts.max_seqs, kv_cache_mb=self.opts.kv_cache_mb,
            prefill_chunk=self.opts.prefill_chunk)
        self._times = []
        self._stream = None

    # -- streaming (the llm workload; the contract is backends.base's) ----------------------
    def serve(self, sink: Any, keep_outputs: bool) -> None:
        self._served().serve(sink, keep_outputs)

    def submit(self, ids: np.ndarray, requests: list) -> None:
        self._served().submit(ids, requests)

    def drain(self) -> None:
        self._served().drain()

    def outputs(self) -> dict[int, np.ndarray]:
        return self._served().outputs()

    def stop(self) -> None:
        if getattr(self, "_engine", None) is not None:
            self._engine.stop()

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        return self._served().logits(tokens)

    def _served(self) -> Any:
        if getattr(self, "_engine", None) is None:
            raise ModelError("backend torch: streaming needs the llm workload's model; this "
                             "one is an ONNX artifact")
        return self._engine

    def _compiled(self, module: Any) -> Any:
        """The module, compiled and warmed once when the mode asks for it."""
        import torch

        if self.opts.mode == "eager":
            return module
        kw = {"mode": "reduce-overhead"} if self.opts.mode == "cudagraphs" else {}
        compiled = torch.compile(module, **kw)
        warm = [torch.zeros((1, *t.shape), dtype=getattr(torch, t.dtype))
                for t in self._model.inputs]
        try:
            with torch.inference_mode():
                compiled(*[self._prepared(w.to(self._device)) for w in warm])
        except Exception as exc:  # inductor raises many types (a missing C++ compiler, ...)
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ModelError(f"backend torch: torch.compile failed ({type(exc).__name__}: "
                             f"{first}); use --backend-opt mode=eager") from None
        return compiled

    def _prepared(self, x: Any) -> Any:
        import torch

        if x.is_floating_point() and x.dtype != self._dtype:
            x = x.to(self._dtype)
        if self._channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if self._engine is not None:
            raise ModelError("backend torch: the llm workload is served (serve/submit), not "
                             "run in batches")

        if self._named:
            return self._run_named(batch)
        if self._stream is not None:
            return self._run_cuda(batch)
        with torch.inference_mode():
            y = self._module(self._prepared(torch.from_numpy(batch)))
            return y.float().numpy()

    def _run_cuda(self, batch: np.ndarray) -> np.ndarray:
        """Pinned host buffer -> device -> compute -> pinned host buffer, on this instance's
        stream; CUDA events around the compute only (not run here: no NVIDIA GPU)."""
        import torch

        host_in, host_out = self._buffers(len(batch))
        np.copyto(host_in.numpy(), batch)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            x = self._prepared(host_in.to(self._device, non_blocking=True))
            start.record(self._stream)
            y = self._module(x)
            end.record(self._stream)
            host_out.copy_(y.float(), non_blocking=True)
        self._stream.synchronize()
        self._times.append(start.elapsed_time(end))
        return host_out.numpy()  # reused: the SUT copies outputs it keeps

    def _run_named(self, batch: np.ndarray) -> np.ndarray:
        """Several inputs or outputs: each input to the device, the graph's outputs back as
        records; float outputs as float32, integer and bool ones as computed. On a GPU, pageable
        copies on this instance's stream, CUDA events around the compute only."""
        import torch

        m = self._model
        tensors = named_tensors(batch, m.input_names)
        with torch.inference_mode(), _on(self._stream):
            xs = [self._prepared(torch.from_numpy(tensors[n]).to(self._device))
                  for n in m.input_names]
            if self._stream is not None:
                start, end = (torch.cuda.Event(enable_timing=True),
                              torch.cuda.Event(enable_timing=True))
                start.record(self._stream)
            ys = self._module(*xs)
            if self._stream is not None:
                end.record(self._stream)
            ys = ys if isinstance(ys, tuple) else (ys,)
            out = [(y.float() if y.is_floating_point() else y).cpu().numpy() for y in ys]
        if self._stream is not None:
            self._stream.synchronize()
            self._times.append(start.elapsed_time(end))
        return pack(out, m.output_names)

    def _buffers(self, n: int) -> tuple[Any, Any]:
        import torch

        if n not in self._pinned:
            m = self._model
            self._pinned[n] = (
                torch.empty((n, *m.sample_shape), dtype=getattr(torch, m.dtype)).pin_memory(),
                torch.empty((n, *m.output_shape), dtype=torch.float32).pin_memory())
        return self._pinned[n]

    def info(self) -> BackendInfo:
        import torch

        device = str(self._device)
        if self._device.type == "cuda":
            device += f" {torch.cuda.get_device_name(self._device)}"
        opts: dict[str, Any] = self.option_values()
        opts["threads_used"] = torch.get_num_threads()
        if self._engine is not None:
            cache = self._engine.cache
            opts["kv_cache_tokens"] = cache.n_blocks * cache.block_size
        return BackendInfo(self.name, device=device, precision=self._precision,
                           thread_safe=False, streams=self._engine is not None,
                           versions={"torch": torch.__version__}, options=opts)

    def device_compute_ms(self) -> list[float] | None:
        return self._times if getattr(self, "_stream", None) is not None else None

    def close(self) -> None:
        self.stop()
        self._engine = None
        self._module = None
        self._pinned = {}
        self._stream = None


def _on(stream: Any) -> Any:
    """torch's stream context on a GPU stream; nothing on the CPU."""
    if stream is None:
        return contextlib.nullcontext()
    import torch

    return torch.cuda.stream(stream)


def _device(text: str) -> Any:
    """The torch device for the ``device`` option, or a one-line error naming the fix."""
    import torch

    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise UsageError(f"backend torch: device {text!r} is not cpu, cuda or cuda:N")
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"backend torch: device {text} needs a CUDA build of torch and "
                                 f"an NVIDIA GPU (torch {torch.__version__} sees none); use "
                                 "--backend-opt device=cpu")
    dev = torch.device(text if ":" in text else "cuda:0")
    if dev.index >= torch.cuda.device_count():
        raise BackendUnavailable(f"backend torch: there is no {dev} (GPUs: "
                                 f"{torch.cuda.device_count()}); use --backend-opt device=cuda:0")
    return dev


def _precision(opts: TorchBackend.Options, artifact: str, device: Any) -> tuple[str, str]:
    """(the precision recorded, the torch dtype name that ONNX FLOAT computes in)."""
    if artifact == "int8":
        raise ModelError("backend torch does not run int8 (QDQ) artifacts: its converter has no "
                         "QuantizeLinear/DequantizeLinear; use --precision fp32 or fp16, or "
                         "--backend cpu for int8")
    if artifact == "fp16":
        if opts.dtype not in ("fp32", "fp16"):
            raise UsageError(f"backend torch: dtype={opts.dtype} applies to an fp32 artifact; "
                             "this one is fp16 (--precision fp16) and runs in fp16: drop dtype "
                             "or use --precision fp32")
        return "fp16", "float32"  # the artifact's own casts put fp16 where it says
    if opts.dtype == "tf32" and device.type != "cuda":
        raise UsageError("backend torch: dtype=tf32 is a format of NVIDIA GPUs; on the cpu use "
                         "dtype=fp32 or dtype=bf16")
    compute = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16"}
    return opts.dtype, compute[opts.dtype]
