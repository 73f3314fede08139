"""``python -m hwbench.fleet.process SPEC.json OUTPUT``: one fleet run in a process of its own,
on its node, through ``passes.runner.execute`` (what ``hwbench run`` calls).

SPEC.json holds the run's settings and the node's description (which enters the result as
``system.node``). The run is written under OUTPUT; the last line on stdout says how it went, as
JSON: {"run_id", "exit_code", "valid"}, or {"error", "exit_code"} for a run that never began
(bad input on this node, Ctrl-C before measuring). Ctrl-C (SIGINT) during the passes ends the
run as it ends ``hwbench run``: written, marked interrupted, exit 130.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwbench.config import from_table
from hwbench.errors import EXIT_INTERRUPTED, HwbenchError
from hwbench.harness.progress import Reporter
from hwbench.passes.runner import execute


def main(argv: list[str]) -> int:
    try:
        # Started from a Ray worker, this process inherits how the worker treats SIGINT
        # (ignored, blocked): Ctrl-C must reach the run as it reaches hwbench run.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        return _run(json.loads(Path(argv[0]).read_text()), argv[1])
    except KeyboardInterrupt:  # before the passes began: nothing measured, nothing written
        return _say({"error": "interrupted before measuring began", "exit_code": EXIT_INTERRUPTED})


def _run(spec: dict[str, Any], output: str) -> int:
    node = spec["node"]

    def annotate(doc: dict[str, Any]) -> None:
        doc["system"]["node"] = node

    try:
        cfg = replace(from_table(spec["config"], "fleet run"), output=output)
        outcome = execute(cfg, Reporter(enabled=False), annotate=annotate)
    except HwbenchError as exc:
        return _say({"error": str(exc), "exit_code": exc.exit_code})
    code = _say({"run_id": outcome.result["run_id"], "exit_code": outcome.exit_code,
                 "valid": outcome.result["valid"]})
    if outcome.abandoned:  # a thread is still inside a backend call: as hwbench's console does
        os._exit(code)
    return code


def _say(outcome: dict[str, Any]) -> int:
    print(json.dumps(outcome), flush=True)
    return int(outcome["exit_code"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
