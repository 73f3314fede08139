"""Workload registry: built-ins listed here, imported when chosen."""
from __future__ import annotations

import importlib

from hwbench.errors import UsageError
from hwbench.workloads.base import AccuracyReference, AccuracyReport, Workload

__all__ = ["AccuracyReference", "AccuracyReport", "Workload", "names", "workload_class", "create"]

_BUILTIN = {
    "resnet50": "hwbench.workloads.resnet50:ResNet50",
    "digits": "hwbench.workloads.digits:Digits",
    "tiny": "hwbench.workloads.tiny:Tiny",
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


def create(name: str, model: str | None = None, dataset: str | None = None,
           seed: int = 1) -> Workload:
    return workload_class(name)(model=model, dataset=dataset, seed=seed)
