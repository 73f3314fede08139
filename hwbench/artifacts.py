"""Model artifacts and where generated ones are kept: the floor that workloads (which make
artifacts) and backends (which load them) both stand on, so that neither imports the other."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelArtifact:
    """A model file and what a backend needs to feed it."""

    path: Path
    sha256: str
    input_name: str
    output_name: str
    sample_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dtype: str = "float32"  # of the input and output tensors
    precision: str = "fp32"  # that the graph carries (hwbench.passes.precision converts it)


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
