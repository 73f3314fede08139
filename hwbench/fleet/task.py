"""One run on a node, and its run directory's way back to the driver.

A node runs the run by calling ``passes.runner.execute``, the function ``hwbench run`` calls,
in a Ray worker process started for this one run (``max_calls=1``): a process of its own, as
``hwbench run`` would have, so a backend call left stuck or a device context leaked ends with
it, while the call (not a subprocess) lets Ray's cancel reach the run as the KeyboardInterrupt
that ``execute`` already turns into an interrupted run, written with what it measured. The run
is written into a temporary output root on the node, packed, and returned through Ray's object
store: nothing relies on a filesystem shared with the driver.
"""
from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwbench.atomic import create_dir_atomically
from hwbench.config import from_table
from hwbench.errors import HwbenchError
from hwbench.harness.progress import Reporter
from hwbench.passes.runner import execute
from hwbench.results.store import index_run, load_result


def run_here(config: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Runs `config` on this node and returns {"run_id", "exit_code", "valid", "archive"}, or
    {"error", "exit_code"} for a run refused before it began (bad input on this node)."""
    tmp = Path(tempfile.mkdtemp(prefix="hwbench-fleet-"))
    try:
        cfg = replace(from_table(config, "fleet run"), output=str(tmp))

        def annotate(doc: dict[str, Any]) -> None:
            doc["system"]["node"] = node

        try:
            outcome = execute(cfg, Reporter(enabled=False), annotate=annotate)
        except HwbenchError as exc:
            return {"error": str(exc), "exit_code": exc.exit_code}
        return {"run_id": outcome.result["run_id"], "exit_code": outcome.exit_code,
                "valid": outcome.result["valid"], "archive": pack(outcome.run_dir)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pack(run_dir: Path) -> bytes:
    """The run directory's files as an uncompressed tar (its arrays are compressed already)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(run_dir.iterdir()):
            tar.add(f, arcname=f.name, recursive=False)
    return buf.getvalue()


def unpack(archive: bytes, root: Path, run_id: str) -> Path:
    """Writes a packed run into `root` as a new run directory, atomically, and indexes it.
    Never overwrites a run (FileExistsError)."""
    def write(tmp: Path) -> None:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
            tar.extractall(tmp, filter="data")  # names and types checked: no path escapes

    final = root / run_id
    if Path(run_id).name != run_id:
        raise ValueError(f"run id {run_id!r} is not a directory name")
    create_dir_atomically(final, write)
    doc = load_result(final)
    if doc.get("run_id") != run_id:
        raise ValueError(f"{final}/result.json names run {doc.get('run_id')!r}")
    index_run(root, final, doc)
    return final
