"""Running the hwbench command in-process (fast) or as a real subprocess (signals, stdout)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hwbench.cli import main

FAST = ["--duration", "0.3", "--warmup", "0.1", "--min-queries", "20"]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, out_dir: Path, *args: str) -> tuple[int, dict]:
    code, out, err = cli(capsys, "run", "--json", "--quiet", "--output", str(out_dir), *args)
    return code, json.loads(out)


def hwbench_process(*args: str, **kw) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("hwbench")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def register_backend(monkeypatch, cls) -> None:
    """Makes backend class `cls` (defined in a test) selectable as ``--backend cls.name``."""
    from hwbench import backends

    real = backends.backend_class
    monkeypatch.setattr(backends, "backend_class",
                        lambda name: cls if name == cls.name else real(name))


# What a busy, shared machine alone can make a short run fail: its window, its query count, its
# latency. An accuracy miss, a fault, a fidelity finding or an interruption is never one of them.
LOAD_REASONS = ("too short:", "too few queries", "too few samples", "exceeds the bound",
                "latency bound")


def load_only(reasons: list[str]) -> list[str]:
    """The reasons in `reasons` that a busy machine cannot explain (empty: all can)."""
    return [r for r in reasons if not any(k in r for k in LOAD_REASONS)]


def assert_valid_or_load_bound(code: int, doc: dict) -> None:
    """Exit 0 with a valid result, or exit 3 for no reason but the machine's load."""
    if code == 0:
        assert doc["valid"] and not doc["invalid_reasons"], doc["invalid_reasons"]
        return
    assert code == 3 and not doc["valid"], (code, doc["invalid_reasons"])
    assert doc["invalid_reasons"] and not load_only(doc["invalid_reasons"]), doc["invalid_reasons"]
    assert not doc["interrupted"]
