"""The machine and software that produced a result, recorded beside every figure."""
from __future__ import annotations

import hashlib
import os
import platform
import socket
from importlib import metadata
from typing import Any

import psutil

_PACKAGES = ("hwbench", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino", "torch",
             "tensorrt", "nvidia-ml-py", "psutil")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> dict[str, Any]:
    try:
        import pynvml
    except ImportError:
        return {"devices": [], "reason": "nvidia-ml-py is not installed"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"devices": [], "reason": f"NVML unavailable: {exc}"}
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h).total
            devices.append({"index": i, "name": name if isinstance(name, str) else name.decode(),
                            "memory_bytes": int(mem)})
        return {"devices": devices, "driver": str(pynvml.nvmlSystemGetDriverVersion())}
    finally:
        pynvml.nvmlShutdown()


def describe() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python, package versions and GPUs of this machine."""
    packages = {}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    info = {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_logical_cores": psutil.cpu_count(logical=True),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "packages": packages,
        "gpu": _gpus(),
        # The cluster node a fleet run ran on ({"name", "ray_node_id", "labels"}; hwbench.fleet
        # fills it): simulated nodes share one machine's description, so only this tells them
        # apart. Null for a run started on this machine by hwbench run.
        "node": None,
    }
    info["fingerprint"] = fingerprint(info)
    return info


def fingerprint(info: dict[str, Any]) -> str:
    """A short id of the hardware (not the software): equal on the same machine."""
    key = "|".join(str(info.get(k)) for k in ("cpu_model", "cpu_logical_cores", "memory_bytes",
                                               "machine"))
    gpus = ",".join(d["name"] for d in info.get("gpu", {}).get("devices", []))
    return hashlib.sha256(f"{key}|{gpus}".encode()).hexdigest()[:12]
