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

Tensors: a batch is one numpy array. For a model of one input (``ModelArtifact.inputs``) it is
that input, ``(n, *sample_shape)``; for a model of several it is a structured array of ``n``
records, one field per input in the model's order (``hwbench.artifacts.record_dtype``), which
``hwbench.artifacts.named_tensors`` splits into ``{name: (n, *shape)}``. ``run`` answers with the
artifact's ``outputs``: the output's array for one, else records of one field per output
(``hwbench.artifacts.pack``). A backend that computes only single-tensor models refuses others
in ``load`` with a ModelError naming the fix (``require_single_tensor``); inputs and outputs are
matched by name, never by position, where the runtime allows it.

Streaming (generative workloads, ``hwbench.workloads.llm``): a backend that sets the class
attribute ``streams = True`` (and ``info().streams``) serves requests instead of batches. The
harness's streaming SUT calls, all on the thread that runs hwbench or the load generator's issue
thread, never concurrently:

* ``serve(sink, keep_outputs)`` once per load-generator pass, before its timed phases: start the
  serving loop on the backend's own thread(s);
* ``submit(ids, requests)`` for newly issued requests: non-blocking; ``ids`` are the load
  generator's uint64 ids, ``requests`` the workload's ``LlmRequest`` objects, in the same order;
* ``drain()`` at the end of a phase: block until everything submitted so far is complete;
* ``outputs()`` after the pass: id -> generated token ids (int64), when ``keep_outputs``;
* ``stop()`` after the pass, and after a failure: end the loop; idempotent.

The serving loop reports progress to the ``TokenSink``: ``sink.tokens`` once per decode step for
every request that got a token in it (one call, arrays; with ``first``, each request's first
token's value), then ``sink.complete`` for the requests that finished. The load generator
timestamps each call; the backend never reads a clock.
``sink.abort(reason)`` reports a fault (the run is then invalid with that reason).
Fidelity of a streaming backend that computes uses ``logits(tokens)``: teacher-forced, a 1-D int64
sequence in, float32 ``[len, vocab]`` logits out, at the backend's precision.
"""
from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from hwbench.artifacts import ModelArtifact
from hwbench.errors import ModelError, UsageError


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


class TokenSink(Protocol):
    """Where a streaming backend reports tokens; implemented by the harness over the compiled
    load generator, which timestamps every call. Every method is thread-safe; the events
    of one request must come from one thread at a time (the serving loop's)."""

    def tokens(self, ids: np.ndarray, counts: np.ndarray,
               first: np.ndarray | None = None) -> None:
        """``ids`` (uint64) got tokens in this step; ``counts`` (uint32, >= 1) is the tokens
        generated so far for each. An id's first call is its first token. ``first`` (int64, one
        per id, optional) is the value of each id's first token: the load generator records it
        from the id's first call and ignores it on later ones, and ``hwbench audit`` checks it
        equals the first token of the request's output (MLPerf's TEST06). A backend that streams
        real tokens passes it on every call; a sink of an older backend may be called without."""

    def complete(self, ids: np.ndarray) -> None:
        """These requests are finished: their last ``tokens`` count is their output length."""

    def abort(self, reason: str) -> None:
        """A backend fault: the run is invalid with this reason."""

    def started(self, ids: np.ndarray) -> None:
        """These requests were taken up now, after waiting for a free slot of a backend that
        keeps a bounded number in flight (a network backend's connections): the wait from each
        one's arrival is client queueing. A backend that never makes requests wait need not
        call it."""

    @property
    def native(self) -> Any:
        """The compiled load generator behind the sink, for a serving loop that is itself
        compiled (the null backend's pacer calls it without the GIL), or None."""


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
    streams: bool = False  # serves generative requests (serve/submit/drain), see the module
    versions: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def require_single_tensor(backend: str, model: ModelArtifact, fix: str) -> None:
    """Refuses (ModelError, exit 2) a model that is not one input and one output of one dtype:
    for a backend whose buffers are sized and typed from the single-tensor fields."""
    one_dtype = model.inputs[0].dtype == model.outputs[0].dtype
    if len(model.inputs) == 1 and len(model.outputs) == 1 and one_dtype:
        return
    shown = ", ".join(f"{t.name} {t.dtype}" for t in model.inputs)
    outs = ", ".join(f"{t.name} {t.dtype}" for t in model.outputs)
    raise ModelError(f"backend {backend} feeds one input and reads one output of the same "
                     f"dtype; {model.path.name} takes {shown} and returns {outs}: {fix}")


class Backend(ABC):
    """Base class of every backend. Subclasses set ``name``, ``description`` and, when they take
    options, ``Options``: a frozen dataclass whose fields are declared with ``option()``.
    ``options`` (the parsers ``hwbench list`` shows) is derived from it."""

    name: ClassVar[str]
    description: ClassVar[str]
    # True for a backend that can serve generative workloads (the streaming methods below);
    # asked before anything loads, so a backend that cannot is refused with the fix.
    streams: ClassVar[bool] = False
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
        """Computes one batch: ``(n, *sample_shape)`` in, ``(n, *output_shape)`` out; for a
        model with several inputs or outputs, records (see the module's docstring)."""

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

    # --- streaming (generative workloads; see the module's docstring) --------------------------
    def serve(self, sink: TokenSink, keep_outputs: bool) -> None:
        """Starts the serving loop (its own thread), before a pass's timed phases."""
        raise NotImplementedError(f"backend {self.name} does not stream")

    def submit(self, ids: np.ndarray, requests: list) -> None:
        """Queues requests (``LlmRequest``) under the load generator's ids; non-blocking."""
        raise NotImplementedError(f"backend {self.name} does not stream")

    def drain(self) -> None:
        """Blocks until everything submitted so far is complete (the end of a phase)."""
        raise NotImplementedError(f"backend {self.name} does not stream")

    def outputs(self) -> dict[int, np.ndarray]:
        """Id -> generated token ids (int64) of the pass, when served with ``keep_outputs``."""
        return {}

    def stop(self) -> None:
        """Ends the serving loop; idempotent, also called after a failure."""

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """Teacher-forced logits: 1-D int64 tokens in, float32 ``[len, vocab]`` out."""
        raise NotImplementedError(f"backend {self.name} has no teacher-forced logits")
