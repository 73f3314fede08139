"""The driver: places a sweep's runs on the cluster's nodes, one run per node at a time, follows
them, brings their run directories home, and records every change in the manifest.

Each node is asked for its hwbench version and build before it gets its first run; a node that
differs is recorded as rejected and gets none. A run is pinned to the node it was given (hard
affinity) and Ray never retries it: a run whose node leaves the cluster is recorded as lost,
and ``hwbench fleet resume`` places it again, on a node matching its system.
"""
from __future__ import annotations

import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from hwbench.errors import (EXIT_FLEET_PARTIAL, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK,
                            UsageError)
from hwbench.fleet import cluster, task
from hwbench.fleet.cluster import Node
from hwbench.fleet.manifest import Manifest

WAIT_S = 1.0              # how often the driver looks at the cluster while runs are running
CANCEL_GRACE_S = 60.0     # after Ctrl-C: how long interrupted runs have to write their results


class Driver:
    def __init__(self, root: Path, manifest: Manifest, stream: TextIO | None = None) -> None:
        self.root = root
        self.m = manifest
        self.stream = stream or sys.stderr
        self.ray = cluster.ray()
        self.nodes: dict[str, Node] = {}        # name -> node, every hwbench node seen
        self.busy: dict[str, str] = {}          # node name -> run key
        self.checked: set[str] = set()          # ids of the nodes whose build was checked
        self.inflight: dict[Any, dict[str, Any]] = {}   # object ref -> manifest run

    def say(self, message: str) -> None:
        print(f"fleet: {message}", file=self.stream, flush=True)

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> int:
        """Runs every pending run; returns the exit status. Ctrl-C cancels what runs."""
        try:
            self._refresh_nodes(first=True)
            while self._pending() or self.inflight:
                self._place()
                self._collect(self._wait())
                self._refresh_nodes()
        except KeyboardInterrupt:
            self._cancel_all()
            self.say("interrupted: running runs were cancelled (their results, marked "
                     "interrupted, are kept); 'hwbench fleet resume' runs what is left")
            return EXIT_INTERRUPTED
        return self._exit_status()

    def _pending(self) -> list[dict[str, Any]]:
        return [r for r in self.m.runs if r["state"] == "pending"]

    def _ready_nodes(self) -> list[Node]:
        state = self.m.data["nodes"]
        return [n for name, n in self.nodes.items()
                if state.get(name, {}).get("state") == "ready" and name not in self.busy]

    def _refresh_nodes(self, first: bool = False) -> None:
        """Takes in nodes that joined (checked before they get work), marks nodes that left,
        and records as lost the pending runs no node can take any more."""
        seen = {n.name: n for n in cluster.hwbench_nodes()}
        state = self.m.data["nodes"]
        for name in set(self.nodes) - set(seen):
            state[name] = dict(state[name], state="gone", since_utc=_now())
            self.say(f"node {name}: left the cluster")
            self.m.save()
        self.nodes = seen
        new = [n for n in seen.values() if n.id not in self.checked]
        if new:
            self._check(new)
            self.checked.update(n.id for n in new)
        if first and not self.nodes:
            raise UsageError("the cluster has no hwbench node: start each node with "
                             "ray start --resources '{\"hwbench_node\": 1}' (docs/fleet.md)")
        self._unplaceable(first)

    def _check(self, nodes: list[Node]) -> None:
        reasons = cluster.probe(nodes, self.m.data["hwbench"])
        for n in nodes:
            reason = reasons[n.name]
            self.m.data["nodes"][n.name] = {"ray_node_id": n.id, "labels": dict(n.labels),
                                            "state": "ready" if reason is None else "rejected",
                                            "reason": reason, "since_utc": _now()}
            self.say(f"node {n.name}: " + ("ready" if reason is None else f"REJECTED: {reason}"))
        self.m.save()

    def _unplaceable(self, first: bool) -> None:
        usable = [n for n in self.nodes.values()
                  if self.m.data["nodes"].get(n.name, {}).get("state") == "ready"]
        for run in self._pending():
            system = self.m.planned(run).system
            if any(system.matches(dict(n.labels), dict(n.resources)) for n in usable):
                continue
            if first and not any(r["state"] != "pending" for r in self.m.runs):
                rejected = [f"{name} ({n['reason']})" for name, n in self.m.data["nodes"].items()
                            if n["state"] == "rejected"]
                also = f"; rejected: {'; '.join(rejected)}" if rejected else ""
                raise UsageError(f"no ready hwbench node matches system {system.describe()}: "
                                 "start one with those labels/resources, or change the sweep's "
                                 f"[[systems]] (docs/fleet.md){also}")
            why = f"no ready node matches system {system.describe()}"
            self.m.record(run, "lost", node=None, reason=why)
            self.say(f"{run['key']} {run['label']}: LOST: {why}")

    def _place(self) -> None:
        for run in self._pending():
            system = self.m.planned(run).system
            node = next((n for n in self._ready_nodes()
                         if system.matches(dict(n.labels), dict(n.resources))), None)
            if node is None:
                continue
            ref = cluster.on_node(task.run_here, node, max_calls=1).remote(
                run["config"], node.describe())
            self.inflight[ref] = run
            self.busy[node.name] = run["key"]
            self.m.record(run, "running", node=node.name, reason=None)
            self.say(f"{run['key']} {run['label']}: started on node {node.name}")

    def _wait(self) -> list[Any]:
        if not self.inflight:
            time.sleep(WAIT_S)
            return []
        ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=WAIT_S)
        return ready

    # -- outcomes -----------------------------------------------------------------------------
    def _collect(self, refs: list[Any]) -> None:
        for ref in refs:
            run = self.inflight.pop(ref)
            self.busy.pop(run["node"], None)
            try:
                out = self.ray.get(ref)
            except Exception as exc:  # Ray's errors: the node died, the worker crashed
                self._failed(run, exc)
                continue
            self._landed(run, out)

    def _landed(self, run: dict[str, Any], out: dict[str, Any]) -> None:
        tag = f"{run['key']} {run['label']}"
        if "error" in out and out["exit_code"] == EXIT_INTERRUPTED:
            self.m.record(run, "pending", reason="cancelled before it began")
            return
        if "error" in out:
            self.m.record(run, "failed", reason=out["error"], exit_code=out["exit_code"])
            self.say(f"{tag}: FAILED on node {run['node']}: {out['error']}")
            return
        try:
            run_dir = task.unpack(out["archive"], self.root, out["run_id"])
        except (OSError, ValueError, tarfile.TarError, UsageError) as exc:
            why = f"its run directory could not be brought home ({type(exc).__name__}: {exc})"
            self.m.record(run, "failed", reason=why, exit_code=out["exit_code"])
            self.say(f"{tag}: FAILED: {why}")
            return
        interrupted = out["exit_code"] == EXIT_INTERRUPTED
        self.m.record(run, "interrupted" if interrupted else "done", run_id=out["run_id"],
                      valid=out["valid"], exit_code=out["exit_code"])
        verdict = "INTERRUPTED" if interrupted else "VALID" if out["valid"] else "INVALID"
        self.say(f"{tag}: done on node {run['node']}, {verdict} ({run_dir})")

    def _failed(self, run: dict[str, Any], exc: Exception) -> None:
        tag = f"{run['key']} {run['label']}"
        node = self.nodes.get(run["node"])
        from ray.exceptions import NodeDiedError, TaskCancelledError

        if isinstance(exc, TaskCancelledError):
            self.m.record(run, "pending", reason="cancelled before it began")
            return
        if isinstance(exc, NodeDiedError) or node is None or not cluster.alive(node.id):
            why = f"node {run['node']} left the cluster while the run ran"
            self.m.record(run, "lost", reason=why)
            self.say(f"{tag}: LOST: {why}; 'hwbench fleet resume' runs it again")
            return
        why = f"{type(exc).__name__}: {cluster.first_line(exc)}"
        self.m.record(run, "failed", reason=why)
        self.say(f"{tag}: FAILED on node {run['node']} without a result: {why}")

    def _cancel_all(self) -> None:
        """Ctrl-C: every running run is cancelled (it writes itself as interrupted) and waited
        for a while; what never came back is recorded as lost. (From the console a second
        Ctrl-C ends the process at once: hwbench.cli.console.)"""
        for ref in self.inflight:
            self.ray.cancel(ref, force=False)
        deadline = time.monotonic() + CANCEL_GRACE_S
        try:
            while self.inflight and time.monotonic() < deadline:
                self._collect(self._wait())
        except KeyboardInterrupt:
            pass
        for ref, run in list(self.inflight.items()):
            self.ray.cancel(ref, force=True)
            self.m.record(run, "lost", reason="cancelled by Ctrl-C before its result came back")
        self.inflight.clear()

    def _exit_status(self) -> int:
        counts = self.m.counts()
        if any(counts.get(s) for s in ("lost", "failed", "interrupted", "pending")):
            return EXIT_FLEET_PARTIAL
        if any(r["valid"] is False for r in self.m.runs):
            return EXIT_INVALID
        return EXIT_OK


def _now() -> str:
    from hwbench.fleet.manifest import now

    return now()


def execute(root: Path, manifest: Manifest, address: str | None,
            stream: TextIO | None = None, connect: Callable[[str | None], None] | None = None
            ) -> int:
    """Connects to the cluster (or starts one here), runs the manifest's pending runs as its
    driver, and disconnects."""
    manifest.acquire()
    try:
        (connect or cluster.connect)(address)
        try:
            return Driver(root, manifest, stream).run()
        finally:
            cluster.disconnect()
    finally:
        manifest.release()
