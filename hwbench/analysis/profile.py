"""Qualification profiles (TOML), parsed at the edge into frozen objects.

A profile names a workload and a backend, the runs that measure the device (each a set of
``hwbench run`` settings) and the requirements each run must meet. docs/decisions.md has the schema.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwbench.config import RunConfig
from hwbench.errors import UsageError

# Each requirement kind and the one bound it takes (None: no bound, a yes/no requirement).
KINDS: dict[str, str | None] = {
    "valid": None, "latency": "max_ms", "throughput": "min_samples_per_s",
    "accuracy": "min_fraction_of_reference", "robustness": "max_relative_drop",
    "power": "max_watts", "memory": "max_peak_mb", "no_throttling": None,
    "no_drift": None,
    # generative workloads (llm): token latencies (with a percentile, as latency) and throughput
    "ttft": "max_ms", "tpot": "max_ms", "tokens": "min_tokens_per_s"}
_RUN_KEYS = {f.name for f in dataclasses.fields(RunConfig)} - {
    "workload", "backend", "backend_options", "output"}


@dataclass(frozen=True)
class Requirement:
    kind: str
    run: str
    bound: float | None = None
    percentile: float | None = None  # latency only

    @property
    def name(self) -> str:
        return f"{self.run}: " + _NAMES[self.kind].format(b=self.bound, p=self.percentile)


_NAMES = {"valid": "valid run", "latency": "p{p:g} latency <= {b:g} ms",
          "throughput": "throughput >= {b:g} samples/s", "accuracy": "accuracy >= {b:.1%} of reference",
          "robustness": "robustness drop <= {b:g}", "power": "power <= {b:g} W",
          "memory": "peak memory <= {b:g} MB", "no_throttling": "no throttling",
          "no_drift": "no drift over the soak",
          "ttft": "p{p:g} TTFT <= {b:g} ms", "tpot": "p{p:g} TPOT <= {b:g} ms",
          "tokens": "throughput >= {b:g} tokens/s"}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    runs: dict[str, RunConfig]
    requirements: tuple[Requirement, ...]


def load(path: str | Path, output: str | None = None) -> Profile:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as exc:
        raise UsageError(f"profile {path}: {exc.strerror}; give an existing .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"profile {path}: invalid TOML ({exc}); fix the file") from None
    try:
        return _parse(data, output)
    except UsageError as exc:
        raise UsageError(f"profile {path}: {exc}") from None


def _parse(data: dict[str, Any], output: str | None) -> Profile:
    unknown = set(data) - {"name", "description", "workload", "backend", "backend_options",
                           "runs", "requirements"}
    if unknown:
        raise UsageError(f"unknown keys {sorted(unknown)}; see docs/decisions.md")
    if not data.get("runs") or not data.get("requirements"):
        raise UsageError("a profile needs [runs.NAME] tables and [[requirements]]")
    opts = tuple((str(k), str(v)) for k, v in (data.get("backend_options") or {}).items())
    common = {"workload": data.get("workload", "resnet50"), "backend": data.get("backend", "cpu"),
              "backend_options": opts, "output": output}
    runs = {name: _run(name, spec, common) for name, spec in data["runs"].items()}
    reqs = tuple(_requirement(r, runs) for r in data["requirements"])
    # A robustness requirement needs its run's robustness pass: turned on here, not left for the
    # verdict to find unmeasured after the runs.
    for req in reqs:
        if req.kind == "robustness":
            runs[req.run] = dataclasses.replace(runs[req.run], robustness=True)
    return Profile(str(data.get("name", "profile")), str(data.get("description", "")), runs, reqs)


def _run(name: str, spec: dict[str, Any], common: dict[str, Any]) -> RunConfig:
    spec = dict(spec)
    if "soak_minutes" in spec:  # a soak: its measured window lasts that long, drift judged
        spec["soak_minutes"] = float(spec["soak_minutes"])
    bad = set(spec) - _RUN_KEYS
    if bad:
        raise UsageError(f"run {name}: unknown keys {sorted(bad)}; valid: {sorted(_RUN_KEYS)}")
    try:
        return RunConfig(**common, **spec)
    except TypeError as exc:
        raise UsageError(f"run {name}: {exc}") from None


def _requirement(r: dict[str, Any], runs: dict[str, RunConfig]) -> Requirement:
    kind, run = r.get("kind"), r.get("run")
    if kind not in KINDS:
        raise UsageError(f"requirement kind {kind!r}: use one of {', '.join(KINDS)}")
    if run not in runs:
        raise UsageError(f"requirement {kind} names run {run!r}: use one of {', '.join(runs)}")
    key = KINDS[kind]
    timed = kind in ("latency", "ttft", "tpot")
    allowed = {"kind", "run", key} | ({"percentile"} if timed else set())
    if set(r) - allowed:
        raise UsageError(f"requirement {kind}: unknown keys {sorted(set(r) - allowed)}; "
                         f"it takes {sorted(allowed - {None})}")
    bound = r.get(key) if key else None
    if key and not (isinstance(bound, (int, float)) and math.isfinite(bound) and bound >= 0):
        raise UsageError(f"requirement {kind} on {run}: give {key} as a number >= 0")
    pct = r.get("percentile", 99) if timed else None
    if pct is not None and pct not in (50, 90, 95, 97, 99, 99.9):
        raise UsageError(f"latency percentile {pct}: use 50, 90, 95, 97, 99 or 99.9")
    return Requirement(kind, run, None if bound is None else float(bound), pct)
