"""The few CUDA runtime calls the GPU backends need, through cuda-python's ``cudart`` bindings:
pinned host buffers, device buffers, one stream, copies and events.

Not run here: this project's machines have no NVIDIA GPU. Each call follows cuda-python's
documented convention (every function returns ``(error, *values)``).
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from hwbench.errors import BackendUnavailable, HwbenchError

# What the GPU backends compute in: TF32 by option; fp16 and int8 come from the artifact.
PRECISIONS = ("fp32", "tf32", "fp16", "int8")
INSTALL = "install it with: pip install cuda-python (and an NVIDIA driver)"


def runtime() -> Any:
    """cuda-python's runtime module (12.x and 13.x name it differently)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise BackendUnavailable(f"cuda-python cannot be imported ({exc}); {INSTALL}") from None
    return cudart


def check(result: tuple) -> Any:
    """The value(s) of a cudart call, or an error naming the CUDA error."""
    err, *values = result
    if int(err) != 0:
        raise HwbenchError(f"CUDA call failed: {err}")
    return values[0] if len(values) == 1 else tuple(values) or None


def device_name(index: int = 0) -> tuple[str, str]:
    """The GPU's name and compute capability ("8.9")."""
    props = check(runtime().cudaGetDeviceProperties(index))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return name.rstrip("\x00"), f"{props.major}.{props.minor}"


class PinnedArray:
    """A page-locked host array, so that host/device copies run at full speed and async."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.ptr = int(check(runtime().cudaMallocHost(self.nbytes)))
        raw = (ctypes.c_byte * self.nbytes).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            check(runtime().cudaFreeHost(self.ptr))
            self.ptr = 0


class DeviceBuffer:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.ptr = int(check(runtime().cudaMalloc(nbytes)))

    def free(self) -> None:
        if self.ptr:
            check(runtime().cudaFree(self.ptr))
            self.ptr = 0


class Stream:
    """One CUDA stream with the copies and events the backends use on it."""

    def __init__(self) -> None:
        self._rt = runtime()
        self.handle = check(self._rt.cudaStreamCreate())
        self.address = int(self.handle)  # what onnxruntime and TensorRT take
        self._events = (check(self._rt.cudaEventCreate()), check(self._rt.cudaEventCreate()))

    def to_device(self, dst: int, src: int, nbytes: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        check(self._rt.cudaMemcpyAsync(dst, src, nbytes, kind, self.handle))

    def to_host(self, dst: int, src: int, nbytes: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check(self._rt.cudaMemcpyAsync(dst, src, nbytes, kind, self.handle))

    def mark(self, which: int) -> None:
        """Records event 0 (before compute) or 1 (after compute) on the stream."""
        check(self._rt.cudaEventRecord(self._events[which], self.handle))

    def compute_ms(self) -> float:
        """Device time between the two marks, by the GPU's own events (after synchronize)."""
        return float(check(self._rt.cudaEventElapsedTime(*self._events)))

    def synchronize(self) -> None:
        check(self._rt.cudaStreamSynchronize(self.handle))

    def destroy(self) -> None:
        for ev in self._events:
            check(self._rt.cudaEventDestroy(ev))
        check(self._rt.cudaStreamDestroy(self.handle))
