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
