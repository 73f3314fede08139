"""A sweep file (TOML), parsed at the edge into frozen runs: a base configuration, a matrix over
any ``hwbench run`` setting, and the systems the runs go to.

    name = "two-threads"
    [base]                      # hwbench run settings, by RunConfig's field names (as in a
    workload = "digits"         # qualification profile's runs): one source of defaults
    [[matrix]]                  # each table: the product of its lists; several tables: their union
    backend = ["cpu"]
    backend_options = [{threads = "1"}, {threads = "2"}]
    [[systems]]                 # optional; none: every hwbench node of the cluster is one system
    name = "big"
    labels = {"hwbench-system" = "big"}   # Ray node labels the node must carry
    resources = {GPU = 1}                 # Ray resources the node must advertise

Every run of the matrix goes to every system: runs = matrix x systems.
"""
from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwbench.config import RunConfig, from_table
from hwbench.errors import UsageError

ANY_SYSTEM = "any"


@dataclass(frozen=True)
class System:
    """Which cluster nodes may run a run: those carrying every label and advertising at least
    every resource named here."""

    name: str = ANY_SYSTEM
    labels: tuple[tuple[str, str], ...] = ()
    resources: tuple[tuple[str, float], ...] = ()

    def matches(self, labels: dict[str, str], resources: dict[str, float]) -> bool:
        return (all(labels.get(k) == v for k, v in self.labels)
                and all(resources.get(k, 0.0) >= v for k, v in self.resources))

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.labels] + [f"{k}>={v:g}" for k, v in self.resources]
        return f"{self.name} ({', '.join(parts)})" if parts else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "labels": dict(self.labels), "resources": dict(self.resources)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "System":
        return cls(d["name"], tuple(sorted(d["labels"].items())),
                   tuple(sorted((k, float(v)) for k, v in d["resources"].items())))


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: its settings and the system it must run on."""

    key: str            # r01, r02, ...: stable across resume
    config: RunConfig
    system: System

    @property
    def label(self) -> str:
        c = self.config
        opts = ",".join(f"{k}={v}" for k, v in c.backend_options)
        return (f"{c.workload} {c.scenario} {c.backend}{f'[{opts}]' if opts else ''}"
                f" on {self.system.name}")


@dataclass(frozen=True)
class Sweep:
    name: str
    runs: tuple[PlannedRun, ...]
    systems: tuple[System, ...]


def load(path: str | Path) -> tuple[Sweep, str]:
    """The sweep in the file at `path`, and the file's text (kept in the manifest)."""
    p = Path(path)
    try:
        text = p.read_text()
        data = tomllib.loads(text)
    except OSError as exc:
        raise UsageError(f"sweep {path}: {exc.strerror}; give an existing .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"sweep {path}: invalid TOML ({exc}); fix the file") from None
    try:
        return parse(data), text
    except UsageError as exc:
        raise UsageError(f"sweep {path}: {exc}") from None


def parse(data: dict[str, Any]) -> Sweep:
    unknown = set(data) - {"name", "description", "base", "matrix", "systems"}
    if unknown:
        raise UsageError(f"unknown keys {sorted(unknown)}; a sweep has name, description, "
                         "[base], [[matrix]] and [[systems]] (docs/fleet.md)")
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise UsageError("base must be a table of hwbench run settings")
    matrix = data.get("matrix") or [{}]
    if isinstance(matrix, dict):
        matrix = [matrix]
    systems = tuple(_system(i, s) for i, s in enumerate(data.get("systems") or [{}]))
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise UsageError(f"systems must have distinct names (got {names})")
    configs = [c for i, table in enumerate(matrix) for c in _expand(i, base, table)]
    runs = tuple(PlannedRun(f"r{n + 1:02d}", cfg, system) for n, (cfg, system)
                 in enumerate(itertools.product(configs, systems)))
    return Sweep(str(data.get("name", "sweep")), runs, systems)


def _expand(i: int, base: dict[str, Any], table: Any) -> list[RunConfig]:
    if not isinstance(table, dict):
        raise UsageError(f"matrix {i + 1}: give a table of setting = [values]")
    axes = [(k, v if isinstance(v, list) else [v]) for k, v in table.items()]
    empty = [k for k, vs in axes if not vs]
    if empty:
        raise UsageError(f"matrix {i + 1}: {empty[0]} = []: give at least one value")
    out = []
    for values in itertools.product(*(vs for _, vs in axes)):
        point = dict(zip((k for k, _ in axes), values))
        where = f"matrix {i + 1} ({', '.join(f'{k}={v}' for k, v in point.items()) or 'base'})"
        out.append(from_table({**base, **point}, where))
    return out


def _system(i: int, spec: Any) -> System:
    if not isinstance(spec, dict) or set(spec) - {"name", "labels", "resources"}:
        raise UsageError(f"systems {i + 1}: give name, labels = {{KEY = \"VALUE\"}} and "
                         "resources = {NAME = AMOUNT}")
    labels, resources = spec.get("labels") or {}, spec.get("resources") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise UsageError(f"systems {i + 1}: labels must be a table of strings")
    if not isinstance(resources, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            for v in resources.values()):
        raise UsageError(f"systems {i + 1}: resources must be a table of positive numbers")
    name = spec.get("name", ANY_SYSTEM if not labels and not resources else f"system{i + 1}")
    return System(str(name), tuple(sorted((str(k), v) for k, v in labels.items())),
                  tuple(sorted((str(k), float(v)) for k, v in resources.items())))
