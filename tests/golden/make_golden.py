"""The shape of ``hwbench run``'s output, recorded so that a refactoring can be held to it.

Runs ``hwbench run`` in-process for the matrix in ``MATRIX`` (null and cpu backends x the four
scenarios x performance and accuracy modes; accuracy also with the digits workload, whose accuracy
is scored) and records, per combination, the exit status, the sorted recursive key paths of
result.json and the field names of summary.txt. Values are not recorded: only the schema.

Key paths: ``a.b.c``; the elements of a list of objects are ``a[]`` (their keys merged); a list of
scalars is its own path. Subtrees under ``OPAQUE`` are recorded but not descended into: their keys
are data that depend on the machine (installed packages, GPUs, power meters), not schema. Paths
under ``OPTIONAL`` appear or not with timing, and are left out.

Regenerate (only on purpose, when the schema changes; the test then fails until you do)::

    python tests/golden/make_golden.py        # writes tests/golden/run_shape.json
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).with_name("run_shape.json")
FAST = ["--duration", "0.3", "--warmup", "0.1", "--min-queries", "20"]
SCENARIO_ARGS = {
    "single-stream": [],
    "multi-stream": ["--min-queries", "700"],
    "server": ["--target-qps", "300", "--latency-bound-ms", "50", "--min-queries", "700"],
    "offline": [],
}
BACKENDS = ("null", "cpu")
# (workload, mode): tiny has no labels (accuracy is noted, not scored); digits is scored.
RUNS = (("tiny", "performance"), ("tiny", "accuracy"), ("digits", "accuracy"))
OPAQUE = ("system.packages", "system.gpu.devices", "backend_info.versions",
          "backend_info.device_compute_ms", "power.total", "telemetry.gpus",
          "telemetry.throttled",
          # keyed by precision level: which levels appear depends on the model and the backend
          "fidelity.envelope.bounds", "fidelity.envelope.measured_error")
# Written only when timing makes it so (the Offline query was sized again): not part of the shape.
OPTIONAL = ("settings.offline_resized",)


def matrix() -> list[tuple[str, str, str, str]]:
    return [(w, b, s, m) for w, m in RUNS for b in BACKENDS for s in SCENARIO_ARGS]


def key_of(workload: str, backend: str, scenario: str, mode: str) -> str:
    return f"{workload}/{backend}/{scenario}/{mode}"


def key_paths(node: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if prefix in OPAQUE:
        return paths
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            if p in OPTIONAL:
                continue
            paths.add(p)
            paths |= key_paths(v, p)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                paths.add(f"{prefix}[]")
                paths |= key_paths(item, f"{prefix}[]")
    return paths


def summary_fields(text: str) -> list[str]:
    """The names before the first ':' of summary.txt's lines (reasons listed as ' * ' excluded)."""
    names = []
    for line in text.splitlines():
        if ":" in line and not line.lstrip().startswith("*"):
            names.append(line.split(":", 1)[0].strip())
    return sorted(set(names))


def run_one(out: Path, workload: str, backend: str, scenario: str, mode: str) -> dict[str, Any]:
    from hwbench.cli import main

    args = ["run", "--json", "--quiet", "--output", str(out), "--workload", workload,
            "--backend", backend, "--scenario", scenario, "--mode", mode, *FAST,
            *SCENARIO_ARGS[scenario]]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(args)
    if not stdout.getvalue().strip():
        return {"exit": code, "result": None, "summary": None}
    doc = json.loads(stdout.getvalue())
    summary = (out / doc["run_id"] / "summary.txt").read_text()
    return {"exit": code, "result": sorted(key_paths(doc)), "summary": summary_fields(summary)}


def shapes(combos: list[tuple[str, str, str, str]] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return {key_of(*c): run_one(Path(tmp) / "runs", *c) for c in (combos or matrix())}


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(shapes(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
