"""The backend interface every backend follows.

A backend owns computation only: it loads a model artifact and turns a batch of preprocessed
samples into a batch of outputs. It never reads a clock, counts samples or decides validity; the
load generator does all of that around it.

Threading contract: ``load`` and ``close`` are called once, on the thread that runs hwbench.
``run`` is called on the load generator's issue thread when one worker computes without a batch
timeout, and otherwise on the harness's worker threads (``--instances N``,
``--batch-timeout-us``): one instance per worker, each called one call
at a time, unless the backend's ``info().thread_safe`` is true, when the N workers share one
instance and call ``run`` concurrently.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from hwbench.artifacts import ModelArtifact
from hwbench.errors import UsageError


@dataclass(frozen=True)
class Option:
    """One backend option, given on the command line as ``--backend-opt NAME=VALUE``."""

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    minimum: float | None = None

    def parse(self, backend: str, text: str) -> Any:
        try:
            if self.kind is bool:
                low = text.lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(text)
                value: Any = low in ("1", "true", "yes", "on")
            else:
                value = self.kind(text)
        except ValueError:
            raise UsageError(f"backend {backend}: option {self.name}={text!r} is not a valid "
                             f"{self.kind.__name__}") from None
        if self.choices and value not in self.choices:
            raise UsageError(f"backend {backend}: option {self.name} must be one of "
                             f"{', '.join(map(str, self.choices))} (got {text!r})")
        if self.minimum is not None and value < self.minimum:
            raise UsageError(f"backend {backend}: option {self.name} must be >= {self.minimum} "
                             f"(got {text!r})")
        return value


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, why and how to install what it needs."""

    usable: bool
    reason: str = ""
    install: str = ""
    devices: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackendInfo:
    """What a loaded backend declares about itself; recorded in every result.

    ``computes`` is false for a backend whose outputs are not computed from its inputs (``null``):
    checks of its outputs against the reference (fidelity) are then skipped, with that reason.
    """

    name: str
    device: str
    precision: str
    max_batch_size: int | None = None
    thread_safe: bool = False
    computes: bool = True
    versions: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """Base class of every backend. Subclasses set ``name``, ``description`` and ``options``."""

    name: ClassVar[str]
    description: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.opts = options

    @classmethod
    def parse_options(cls, pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
        """Validates ``(name, text)`` pairs into typed values, with defaults for the rest."""
        known = {o.name: o for o in cls.options}
        values = {o.name: o.default for o in cls.options}
        for key, text in pairs:
            if key not in known:
                valid = ", ".join(known) or "none"
                raise UsageError(f"backend {cls.name}: unknown option {key!r} (valid: {valid})")
            values[key] = known[key].parse(cls.name, text)
        return values

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Can this backend run here? Cheap; imports its SDK lazily."""

    @abstractmethod
    def load(self, model: ModelArtifact) -> None:
        """Prepares the model for ``run``. Raises ModelError for an unusable artifact."""

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Computes one batch: ``(n, *sample_shape)`` in, ``(n, *output_shape)`` out."""

    @abstractmethod
    def info(self) -> BackendInfo:
        """Device, precision and limits of the loaded backend."""

    def device_compute_ms(self) -> list[float] | None:
        """Per-call compute time measured by the device's own events (a GPU's CUDA events), or
        None. Reported beside the load generator's latency, never part of it."""
        return None

    def close(self) -> None:
        """Releases the model and device; called once, also after a failure."""
