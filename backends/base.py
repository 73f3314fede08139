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

import dataclasses
import typing
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


def option(default: Any, help: str, *, choices: tuple[Any, ...] = (),
           minimum: float | None = None) -> Any:
    """One field of a backend's ``Options`` dataclass: its default, one line of help for
    ``hwbench list``, and the values it may take."""
    return field(default=default, metadata={"help": help, "choices": tuple(choices),
                                            "minimum": minimum})


@dataclass(frozen=True)
class NoOptions:
    """The options of a backend that has none."""


def _declared(options_class: type) -> tuple[Option, ...]:
    """The Option parser of each field of an ``Options`` dataclass, in declaration order."""
    kinds = typing.get_type_hints(options_class)
    return tuple(Option(f.name, kinds[f.name], f.default, f.metadata.get("help", ""),
                        f.metadata.get("choices", ()), f.metadata.get("minimum"))
                 for f in dataclasses.fields(options_class))


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
    """Base class of every backend. Subclasses set ``name``, ``description`` and, when they take
    options, ``Options``: a frozen dataclass whose fields are declared with ``option()``.
    ``options`` (the parsers ``hwbench list`` shows) is derived from it."""

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    options: ClassVar[tuple[Option, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Options" in cls.__dict__:
            cls.options = _declared(cls.Options)

    def __init__(self, options: Any) -> None:
        self.opts = options  # an instance of Options, validated by parse_options

    @classmethod
    def parse_options(cls, pairs: tuple[tuple[str, str], ...]) -> Any:
        """Validates ``(name, text)`` pairs, once, into an ``Options`` instance; fields not given
        keep their defaults."""
        known = {o.name: o for o in cls.options}
        values: dict[str, Any] = {}
        for key, text in pairs:
            if key not in known:
                valid = ", ".join(known) or "none"
                raise UsageError(f"backend {cls.name}: unknown option {key!r} (valid: {valid})")
            values[key] = known[key].parse(cls.name, text)
        return cls.Options(**values)

    def option_values(self) -> dict[str, Any]:
        """The options as plain values, in declaration order (``info().options``)."""
        return dataclasses.asdict(self.opts)

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

    def request_errors(self) -> dict[str, int] | None:
        """Failed requests by kind (``timeout``, ``refused``, ...) for a backend that computes
        remotely, or None. Each failure also raised from ``run``; recorded in the result."""
        return None

    def close(self) -> None:
        """Releases the model and device; called once, also after a failure."""
