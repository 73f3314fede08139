"""Backend registry. Built-in backends are listed here and imported only when chosen; third
parties register theirs under the ``hwbench.backends`` entry-point group."""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from hwbench.backends.base import Availability, Backend, BackendInfo, ModelArtifact, Option
from hwbench.errors import BackendUnavailable, UsageError

__all__ = ["Availability", "Backend", "BackendInfo", "ModelArtifact", "Option",
           "names", "backend_class", "create"]

_BUILTIN = {
    "cpu": "hwbench.backends.cpu:CpuBackend",
    "null": "hwbench.backends.null:NullBackend",
    "openvino": "hwbench.backends.openvino:OpenVinoBackend",
    "cuda": "hwbench.backends.cuda:CudaBackend",
    "tensorrt": "hwbench.backends.tensorrt:TensorRtBackend",
    "torch": "hwbench.backends.pytorch:TorchBackend",
    "kserve": "hwbench.backends.kserve:KServeBackend",
    "openai": "hwbench.backends.openai:OpenAiBackend",
}


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="hwbench.backends")}


def names() -> list[str]:
    """Every known backend name, built-ins first."""
    return list(_BUILTIN) + sorted(set(_plugins()) - set(_BUILTIN))


def backend_class(name: str) -> type[Backend]:
    """The class registered under `name`, imported now."""
    target = _BUILTIN.get(name) or _plugins().get(name)
    if target is None:
        raise UsageError(f"unknown backend {name!r}: use one of {', '.join(names())} "
                         "(see 'hwbench list')")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def create(name: str, option_pairs: tuple[tuple[str, str], ...] = ()) -> Backend:
    """A configured backend, or BackendUnavailable saying how to make it usable here."""
    cls = backend_class(name)
    options = cls.parse_options(option_pairs)
    avail = cls.availability()
    if not avail.usable:
        hint = f"; {avail.install}" if avail.install else ""
        raise BackendUnavailable(f"backend {name} is not usable here: {avail.reason}{hint}")
    return cls(options)
