"""Model artifacts and where generated ones are kept: the floor that workloads (which make
artifacts) and backends (which load them) both stand on, so that neither imports the other.

A batch is one numpy array whatever the model takes. A model with one input is fed a plain array
``(n, *sample_shape)``; a model with several is fed a numpy *structured* array of ``n`` records,
one field per input in the model's order (``record_dtype``), so that the harness gathers,
concatenates and slices it as it does a plain one. A backend splits a batch into named tensors
(``named_tensors``) and answers the same way: a plain array for one output, a record per sample
with one field per output for several (``pack``).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model: its name, numpy dtype name and per-sample shape (the
    dimensions after the batch; -1 where an output's dimension is not known before it runs)."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelArtifact:
    """A model file and what a backend needs to feed it.

    ``inputs`` and ``outputs`` list every tensor a backend feeds and returns, in the model's
    order; a workload with one input and one output gives only the single-tensor fields and they
    are derived from them. ``input_name``, ``sample_shape`` and the rest describe the first
    input and output."""

    path: Path
    sha256: str
    input_name: str
    output_name: str
    sample_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dtype: str = "float32"  # of the input and output tensors
    precision: str = "fp32"  # that the graph carries (hwbench.passes.precision converts it)
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def __post_init__(self) -> None:
        if not self.inputs:
            object.__setattr__(self, "inputs", (TensorSpec(self.input_name, self.dtype,
                                                           tuple(self.sample_shape)),))
        if not self.outputs:
            object.__setattr__(self, "outputs", (TensorSpec(self.output_name, self.dtype,
                                                            tuple(self.output_shape)),))

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def record_dtype(inputs: tuple[TensorSpec, ...]) -> np.dtype:
    """The dtype of one sample: the input's own for one input, else a structured record with
    one field per input (its dtype and per-sample shape), in the model's order."""
    if len(inputs) == 1:
        return np.dtype(inputs[0].dtype)
    return np.dtype([(t.name, t.dtype, t.shape) for t in inputs])


def named_tensors(batch: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """A batch as the model's named input tensors, each C-contiguous ``(n, *shape)``."""
    if batch.dtype.names is None:
        return {names[0]: batch}
    return {n: np.ascontiguousarray(batch[n]) for n in batch.dtype.names}


def pack(arrays: list[np.ndarray], names: list[str]) -> np.ndarray:
    """A model's outputs ``(n, ...)`` each, as one batch: the array itself for one output, else
    ``n`` records with one field per output."""
    if len(arrays) == 1:
        return arrays[0]
    n = len(arrays[0])
    out = np.empty(n, dtype=[(k, a.dtype, a.shape[1:]) for k, a in zip(names, arrays)])
    for k, a in zip(names, arrays):
        out[k] = a
    return out


def fields(batch: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs in a batch by name (``""`` for a plain array), each ``(n, ...)``."""
    if batch.dtype.names is None:
        return {"": batch}
    return {n: batch[n] for n in batch.dtype.names}


def flat_values(sample: np.ndarray) -> np.ndarray:
    """One sample's outputs as one float64 vector: a record's fields in order, or the array."""
    x = np.asarray(sample)
    if x.dtype.names is None:
        return x.astype(np.float64).ravel()
    return np.concatenate([np.asarray(x[n], np.float64).ravel() for n in x.dtype.names])


def primary(batch: np.ndarray) -> np.ndarray:
    """The first output of a batch (a plain array's self): what a class is read from."""
    return batch if batch.dtype.names is None else batch[batch.dtype.names[0]]


def cache_dir() -> Path:
    """Where generated artifacts are kept: $HWBENCH_CACHE, else ~/.cache/hwbench."""
    root = os.environ.get("HWBENCH_CACHE") or Path.home() / ".cache" / "hwbench"
    return Path(root)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
