"""One run on a node, and its run directory's way back to the driver.

A Ray task on the node starts the run as a process of its own (``python -m
hwbench.fleet.process``, which calls ``passes.runner.execute``, as ``hwbench run`` does), in the
environment the node was started with (``ray start``'s: the raylet's, this worker's parent), not
the worker's own: Ray sets OMP_NUM_THREADS=1 in its workers, and CUDA_VISIBLE_DEVICES to the GPUs
a task asked for, which would change what a backend computes with. A process per run also means
that a backend call left stuck, or a device context leaked, ends with it. Ray's cancel reaches the
task as a KeyboardInterrupt, which it passes on to the run as SIGINT: the run stops as ``hwbench
run`` stops on Ctrl-C, written with what it measured. The process dies with the worker
(PR_SET_PDEATHSIG), so a run never outlives its node's Ray.

The run is written into a temporary output root on the node, packed, and returned through Ray's
object store: nothing relies on a filesystem shared with the driver.
"""
from __future__ import annotations

import ctypes
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hwbench.atomic import create_dir_atomically
from hwbench.errors import EXIT_INTERNAL, EXIT_INTERRUPTED
from hwbench.results.store import index_run, load_result

_PR_SET_PDEATHSIG = 1


def run_here(config: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Runs `config` on this node and returns {"run_id", "exit_code", "valid", "archive"}, or
    {"error", "exit_code"} for a run that never began or left no result."""
    tmp = Path(tempfile.mkdtemp(prefix="hwbench-fleet-"))
    try:
        (tmp / "spec.json").write_text(json.dumps({"config": config, "node": node}))
        cmd = [sys.executable, "-P", "-m", "hwbench.fleet.process", str(tmp / "spec.json"),
               str(tmp / "runs")]
        # A session of its own: a signal to the worker's group never reaches the run twice.
        proc = subprocess.Popen(cmd, cwd=tmp, env=node_environment(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=_die_with_parent)
        try:
            out, err = _wait(proc)
        except KeyboardInterrupt:  # ray.cancel: Ctrl-C for the run, once
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate()
        said = _last_json(out)
        if said is None and proc.returncode == -signal.SIGINT:  # before it could say so
            return {"error": "interrupted before measuring began", "exit_code": EXIT_INTERRUPTED}
        if said is None:
            tail = (err.strip().splitlines() or ["no output"])[-1][:300]
            return {"error": f"the run's process ended with status {proc.returncode} and no "
                    f"result ({tail})", "exit_code": EXIT_INTERNAL}
        if "run_id" in said:
            said["archive"] = pack(tmp / "runs" / said["run_id"])
        return said
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _wait(proc: subprocess.Popen) -> tuple[str, str]:
    """The process's output once it ends. Waits in short slices: Ray's cancel arrives as an
    exception raised between two Python instructions, never inside one long blocking wait."""
    while True:
        try:
            return proc.communicate(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue


def node_environment() -> dict[str, str]:
    """The environment the node's Ray was started with, when this worker's parent is the raylet
    and its environment can be read (Linux); else this worker's."""
    raylet = os.environ.get("RAY_RAYLET_PID", "")
    if raylet.isdigit() and int(raylet) == os.getppid():
        try:
            data = Path(f"/proc/{raylet}/environ").read_bytes().decode(errors="surrogateescape")
        except OSError:
            return dict(os.environ)
        return dict(item.split("=", 1) for item in data.split("\0") if "=" in item)
    return dict(os.environ)


def _prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: a run may outlive a killed worker
        return None


_PRCTL = _prctl()  # looked up here, not between fork and exec (the worker has threads)


def _die_with_parent() -> None:
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            said = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(said, dict) and "exit_code" in said:
            return said
    return None


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
