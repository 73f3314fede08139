"""Workload registry: built-ins listed here, imported when chosen; a name ending in ``.toml`` is
a workload file (``workfile.py``, ``described.py``)."""
from __future__ import annotations

import importlib
from pathlib import Path

from hwbench.errors import UsageError
from hwbench.workloads.base import AccuracyReference, AccuracyReport, Workload

__all__ = ["AccuracyReference", "AccuracyReport", "Workload", "FILE_WORKLOAD", "names",
           "workload_class", "is_workload_file", "run_name", "create"]

_BUILTIN = {
    "resnet50": "hwbench.workloads.resnet50:ResNet50",
    "digits": "hwbench.workloads.digits:Digits",
    "tiny": "hwbench.workloads.tiny:Tiny",
    "llm": "hwbench.workloads.llm:Llm",
    "onnx": "hwbench.workloads.onnxmodel:OnnxModel",
}


def names() -> list[str]:
    return list(_BUILTIN)


def workload_class(name: str) -> type[Workload]:
    target = _BUILTIN.get(name)
    if target is None:
        raise UsageError(f"unknown workload {name!r}: use one of {', '.join(names())} "
                         "(see 'hwbench list')")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


FILE_WORKLOAD = "FILE.toml"  # how 'hwbench list' and --help name a workload file


def is_workload_file(name: str) -> bool:
    return name.lower().endswith(".toml")


def run_name(name: str) -> str:
    """The name runs of ``--workload name`` carry in results: a workload file's ``name`` key,
    else the name itself (``compare`` and ``history`` accept either)."""
    if is_workload_file(name):
        return importlib.import_module("hwbench.workloads.workfile").load(Path(name)).name
    return name


def create(name: str, model: str | None = None, dataset: str | None = None,
           seed: int = 1, input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = (),
           inputs: str | None = None) -> Workload:
    """The workload `name`; `input_shapes` and `inputs` (``--input-shape``, ``--inputs``) only
    for a workload that feeds a model's own tensors (``feeds_tensors``)."""
    tensors = {"input_shapes": input_shapes, "inputs": inputs} if input_shapes or inputs else {}
    if is_workload_file(name):
        cls: type[Workload] = importlib.import_module("hwbench.workloads.described").Described
    else:
        cls = workload_class(name)
    if tensors and not cls.feeds_tensors:
        flag = "--input-shape" if input_shapes else "--inputs"
        raise UsageError(f"{flag} applies to --workload onnx (any ONNX model); workload {name} "
                         f"makes its own inputs: drop {flag}")
    if is_workload_file(name):
        return cls.from_file(Path(name), model=model, dataset=dataset, seed=seed)
    return cls(model=model, dataset=dataset, seed=seed, **tensors)
