"""A sweep's state on disk: ``OUTPUT/fleet/<sweep-id>.json``, beside the runs it produced.

Rewritten whole (atomically) at every change, so ``hwbench fleet status`` reads a consistent
state at any time, also after the driver died. While a driver works on a sweep it holds an
advisory lock on ``<sweep-id>.lock``: the kernel drops it when the process ends, however it
ends, so status can tell a sweep being run from one whose driver is gone.

A run's states: pending (not started), running, done (it has a result: valid or invalid),
interrupted (Ctrl-C: its result is written, marked interrupted), lost (its node left the
cluster, or no node matching its system was left), failed (it ended without a result). Resume
starts again every run that is not done; each change is kept in the run's history.
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwbench.atomic import write_atomically
from hwbench.config import RunConfig, from_table
from hwbench.errors import UsageError
from hwbench.fleet.sweep import PlannedRun, Sweep, System

MANIFEST_VERSION = 1
FOLDER = "fleet"
UNFINISHED = ("pending", "running", "interrupted", "lost", "failed")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    del d["output"]  # each node writes where it may; the driver brings the run home
    return d


@dataclass
class Manifest:
    path: Path
    data: dict[str, Any]
    _lock: Any = field(default=None, repr=False)

    # -- creation and loading -------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, sweep: Sweep, sweep_file: str, text: str, address: str,
               identity: dict[str, Any]) -> "Manifest":
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        sweep_id = f"{stamp}-{_safe(sweep.name)}-{secrets.token_hex(3)}"
        data = {"manifest_version": MANIFEST_VERSION, "sweep_id": sweep_id, "name": sweep.name,
                "sweep_file": sweep_file, "sweep_text": text, "created_utc": now(),
                "ray": address, "hwbench": identity, "driver": None, "nodes": {},
                "runs": [{"key": r.key, "label": r.label, "config": config_dict(r.config),
                          "system": r.system.to_dict(), "state": "pending", "node": None,
                          "run_id": None, "valid": None, "exit_code": None, "reason": None,
                          "history": []} for r in sweep.runs]}
        m = cls(root / FOLDER / f"{sweep_id}.json", data)
        if m.path.exists():
            raise FileExistsError(m.path)
        return m

    @classmethod
    def find(cls, root: Path, sweep_id: str | None) -> "Manifest":
        """The sweep `sweep_id` under `root`, or the newest one there."""
        folder = root / FOLDER
        found = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not found:
            raise UsageError(f"no fleet sweep in {root}: start one with 'hwbench fleet run "
                             "SWEEP.toml', or give --output DIR where one ran")
        if sweep_id is None:
            path = max(found, key=lambda p: (p.stat().st_mtime, p.name))
        else:
            hits = [p for p in found if p.stem == sweep_id or p.stem.startswith(sweep_id)]
            if len(hits) != 1:
                ids = ", ".join(p.stem for p in found)
                raise UsageError(f"--sweep {sweep_id!r} matches {len(hits)} sweeps in {root}: "
                                 f"give one of {ids}")
            path = hits[0]
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path} cannot be read ({exc}): it is not a fleet manifest") from None
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise UsageError(f"{path}: manifest version {data.get('manifest_version')} is not "
                             f"{MANIFEST_VERSION}: use the hwbench that wrote it")
        return cls(path, data)

    # -- the driver's lock ------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def acquire(self) -> None:
        """Marks this process as the sweep's driver; a UsageError if another one is."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            d = self.data.get("driver") or {}
            raise UsageError(f"sweep {self.sweep_id} is being run by process {d.get('pid')} "
                             f"on {d.get('hostname')}: wait for it, or stop it (Ctrl-C) "
                             "first") from None
        self._lock = fd
        self.data["driver"] = {"hostname": socket.gethostname(), "pid": os.getpid(),
                               "since_utc": now()}
        self.save()

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def driver_running(self) -> bool:
        """Whether a process holds the sweep's lock now."""
        if self._lock is not None:
            return True
        if not self.lock_path.exists():
            return False
        fd = os.open(self.lock_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    # -- runs -------------------------------------------------------------------------------
    @property
    def sweep_id(self) -> str:
        return self.data["sweep_id"]

    @property
    def runs(self) -> list[dict[str, Any]]:
        return self.data["runs"]

    def planned(self, run: dict[str, Any]) -> PlannedRun:
        return PlannedRun(run["key"], from_table(run["config"], f"manifest run {run['key']}"),
                          System.from_dict(run["system"]))

    def record(self, run: dict[str, Any], state: str, **fields: Any) -> None:
        """Moves `run` to `state`, keeps the change in its history, and saves."""
        run.update(state=state, **fields)
        event = {"utc": now(), "state": state}
        event.update({k: v for k, v in fields.items() if v is not None and k != "valid"})
        run["history"].append(event)
        self.save()

    def save(self) -> None:
        text = json.dumps(self.data, indent=1) + "\n"
        write_atomically(self.path, lambda tmp: tmp.write_text(text))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.runs:
            out[r["state"]] = out.get(r["state"], 0) + 1
        return out


def _safe(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    return keep.strip("-")[:40] or "sweep"
