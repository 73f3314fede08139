"""Server's arrival processes, as ``--arrivals`` names them: parsed into a typed, frozen spec that
the load generator's settings are built from (the schedules themselves are drawn in ``ext/``).

    poisson                          MLPerf's: Poisson at --target-qps (the default)
    gamma:cv=X                       bursty renewal process: gaps with coefficient of variation X,
                                     mean rate --target-qps
    onoff:on_s=A,off_s=B,ratio=R     two-state Markov-modulated Poisson: on and off periods of mean
                                     A and B seconds, the on rate R times the off rate, mean rate
                                     --target-qps
    ramp:from=Q1,to=Q2,over_s=S      Poisson whose rate goes linearly from Q1 to Q2 over S seconds,
                                     then stays at Q2
    FILE.csv                         a recorded trace: a header with ``t`` (arrival times, seconds)
                                     or ``gap`` (seconds between arrivals); replayed once, as
                                     recorded, or scaled to --target-qps when that is given

Poisson and gamma arrivals are stationary; on-off, ramp and trace arrivals are not, and their
verdict is per window (see docs/loadgen.md, "Arrival processes").
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwbench.errors import UsageError

KINDS = ("poisson", "gamma", "onoff", "ramp", "trace")
STATIONARY = ("poisson", "gamma")
_PARAMS = {"poisson": {}, "gamma": {"cv": None},
           "onoff": {"on_s": None, "off_s": None, "ratio": None},
           "ramp": {"from": None, "to": None, "over_s": None}}


@dataclass(frozen=True)
class Trace:
    """A recorded trace: arrival offsets from its first arrival, in ns, ascending."""

    path: str
    sha256: str
    offsets_ns: tuple[int, ...] = field(repr=False)

    @property
    def rate(self) -> float:
        """Arrivals per second over the trace's span (its mean rate)."""
        span = (self.offsets_ns[-1] - self.offsets_ns[0]) / 1e9
        return (len(self.offsets_ns) - 1) / span if span > 0 else 0.0


@dataclass(frozen=True)
class ArrivalSpec:
    kind: str = "poisson"
    params: tuple[tuple[str, float], ...] = ()
    trace: Trace | None = None

    @property
    def stationary(self) -> bool:
        return self.kind in STATIONARY

    def param(self, name: str) -> float:
        return dict(self.params)[name]

    def describe(self) -> dict:
        """What the result records of the arrivals (a trace by path, hash and length)."""
        d: dict = {"kind": self.kind, **dict(self.params), "stationary": self.stationary}
        if self.trace is not None:
            d.update(trace=self.trace.path, trace_sha256=self.trace.sha256,
                     trace_arrivals=len(self.trace.offsets_ns), trace_rate=self.trace.rate)
        return d


def parse(text: str) -> ArrivalSpec:
    """``--arrivals`` as a spec, or a one-line UsageError naming the fix."""
    kind, _, rest = text.partition(":")
    if kind in ("poisson", "gamma", "onoff", "ramp"):
        want = _PARAMS[kind]
        got: dict[str, float] = {}
        for item in filter(None, rest.split(",")):
            key, eq, value = item.partition("=")
            if key not in want or not eq:
                raise UsageError(f"--arrivals {kind}: unknown or malformed {item!r}; write "
                                 f"{_form(kind)}")
            try:
                got[key] = float(value)
            except ValueError:
                raise UsageError(f"--arrivals {kind}: {key}={value!r} is not a number") from None
        missing = [k for k in want if k not in got]
        if missing:
            raise UsageError(f"--arrivals {kind} needs {', '.join(missing)}: write {_form(kind)}")
        _check(kind, got)
        return ArrivalSpec(kind, tuple((k, got[k]) for k in want))
    if text.endswith(".csv") or Path(text).is_file():
        return ArrivalSpec("trace", trace=read_trace(Path(text)))
    raise UsageError(f"unknown --arrivals {text!r}: use poisson, gamma:cv=X, "
                     "onoff:on_s=A,off_s=B,ratio=R, ramp:from=Q1,to=Q2,over_s=S or a trace .csv")


def _form(kind: str) -> str:
    return f"{kind}:" + ",".join(f"{k}=N" for k in _PARAMS[kind]) if _PARAMS[kind] else kind


def _check(kind: str, p: dict[str, float]) -> None:
    bad = None
    if kind == "gamma" and not 0.01 < p["cv"] <= 100:
        bad = "cv must be in (0.01, 100]"
    elif kind == "onoff" and (p["on_s"] <= 0 or p["off_s"] <= 0):
        bad = "on_s and off_s must be > 0"
    elif kind == "onoff" and p["ratio"] < 1:
        bad = "ratio (the on rate over the off rate) must be >= 1"
    elif kind == "ramp" and (p["from"] < 0 or p["to"] < 0 or p["from"] + p["to"] <= 0):
        bad = "from and to must be >= 0 and not both 0"
    elif kind == "ramp" and p["over_s"] <= 0:
        bad = "over_s must be > 0"
    if bad:
        raise UsageError(f"--arrivals {kind}: {bad}")


def read_trace(path: Path) -> Trace:
    """A trace CSV: a header naming ``t`` (arrival times, s) or ``gap`` (s between arrivals);
    other columns (``sample``, ``length``) are allowed and not read."""
    if not path.is_file():
        raise UsageError(f"--arrivals {path}: no such trace file; give a CSV with a 't' or "
                         "'gap' column")
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--arrivals {path}: not a readable CSV ({exc}); give a CSV with a "
                         "header row") from None
    cols = set(rows[0]) if rows else set()
    col = "t" if "t" in cols else "gap" if "gap" in cols else None
    if col is None:
        raise UsageError(f"--arrivals {path}: no 't' or 'gap' column (found "
                         f"{', '.join(sorted(c for c in cols if c)) or 'no rows'}); name the "
                         "arrival times 't' or the gaps 'gap' in the header")
    try:
        values = np.array([float(r[col]) for r in rows], dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"--arrivals {path}: column {col!r} holds a value that is not a "
                         "number") from None
    if not np.isfinite(values).all() or (values < 0).any():
        raise UsageError(f"--arrivals {path}: column {col!r} must hold numbers >= 0")
    times = np.cumsum(values) if col == "gap" else values
    if col == "t" and (np.diff(times) < 0).any():
        raise UsageError(f"--arrivals {path}: arrival times must not go backwards; sort the "
                         "trace by 't'")
    ns = np.rint((times - times[0]) * 1e9).astype(np.int64)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Trace(str(path), digest, tuple(int(x) for x in ns))


def trace_offsets(trace: Trace, target_qps: float | None) -> list[int]:
    """The trace as recorded, or scaled in time so that its mean rate is ``target_qps``."""
    if target_qps is None or trace.rate <= 0:
        return list(trace.offsets_ns)
    k = trace.rate / target_qps
    return [int(round(x * k)) for x in trace.offsets_ns]
