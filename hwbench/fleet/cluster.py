"""Ray, imported lazily, and the nodes of a cluster that hwbench may give work to.

An hwbench node advertises one unit of the custom resource ``hwbench_node`` (``ray start
--resources '{"hwbench_node": 1}'``); every run asks for that unit, so a node runs one run at a
time, whole. Its name is its ``hwbench-node`` label when it has one (``ray start --labels
hwbench-node=NAME``), else its address and id. Ray's task retries are off: a run lost with its
node is recorded, never re-run behind the user's back.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hwbench.errors import UsageError

INSTALL = "pip install 'hwbench[fleet]'"
RESOURCE = "hwbench_node"     # one unit per node: a run holds the whole node
NAME_LABEL = "hwbench-node"   # a node's name in results and progress (else address:id)
LOCAL = "local"               # the address recorded for an embedded local instance
PROBE_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5.0


def ray() -> Any:
    try:
        import ray as ray_module
    except ImportError:
        raise UsageError(f"hwbench fleet needs Ray, which is not installed: {INSTALL}") from None
    return ray_module


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    labels: tuple[tuple[str, str], ...]
    resources: tuple[tuple[str, float], ...]

    def describe(self) -> dict[str, Any]:
        """What a result records of the node it ran on (system.node)."""
        return {"name": self.name, "ray_node_id": self.id,
                "labels": {k: v for k, v in self.labels if not k.startswith("ray.io/")}}


def connect(address: str | None) -> None:
    """Joins the cluster at `address`, or starts an embedded Ray instance on this machine
    whose one node is an hwbench node named after the host."""
    r = ray()
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False,
             "ignore_reinit_error": False}
    # Ray puts the driver's current directory on every worker's sys.path: from a source checkout
    # that would shadow the installed hwbench (no compiled load generator, no hwbench.backends).
    # The driver joins from a directory of its own, empty, so only the installed package is found.
    neutral = Path(tempfile.gettempdir()) / f"hwbench-ray-{os.getuid()}"
    neutral.mkdir(mode=0o700, exist_ok=True)
    here = os.getcwd()
    try:
        os.chdir(neutral)
        if address and address != LOCAL:
            r.init(address=address, **quiet)
        else:
            # "local": a new instance even where RAY_ADDRESS names a running one
            r.init(address=LOCAL, resources={RESOURCE: 1},
                   labels={NAME_LABEL: socket.gethostname()}, include_dashboard=False, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise UsageError(f"cannot reach {where} ({exc}): check --ray ADDRESS "
                         "(e.g. 10.0.0.1:6379), or leave it out to run on this machine") from None
    finally:
        os.chdir(here)


def check_address(address: str | None) -> None:
    """A --ray HOST:PORT (or ray://HOST:PORT) where nothing listens is refused at once: Ray
    itself retries for minutes before it gives up."""
    if not address or address in (LOCAL, "auto"):
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--ray {address!r}: write it as HOST:PORT (the head node's, e.g. "
                         "10.0.0.1:6379) or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UsageError(f"--ray {address}: nothing answers there ({exc.strerror or exc}): start "
                         "the cluster's head (ray start --head) or give its address") from None


def disconnect() -> None:
    ray().shutdown()


def hwbench_nodes() -> list[Node]:
    """The alive nodes advertising ``hwbench_node``, by name."""
    out = []
    for n in ray().nodes():
        res = n.get("Resources") or {}
        if not n.get("Alive") or res.get(RESOURCE, 0) < 1:
            continue
        labels = n.get("Labels") or {}
        name = labels.get(NAME_LABEL) or f"{n.get('NodeManagerAddress')}:{n['NodeID'][:6]}"
        out.append(Node(n["NodeID"], name, tuple(sorted(labels.items())),
                        tuple(sorted((k, float(v)) for k, v in res.items()))))
    names = [n.name for n in out]
    # two nodes given one name (a label copied between machines) stay two nodes
    out = [replace(n, name=f"{n.name}:{n.id[:6]}") if names.count(n.name) > 1 else n
           for n in out]
    return sorted(out, key=lambda n: n.name)


def alive(node_id: str) -> bool:
    return any(n["NodeID"] == node_id and n.get("Alive") for n in ray().nodes())


def on_node(function: Any, node: Node, **options: Any) -> Any:
    """`function` as a Ray task pinned to `node` (hard affinity: never elsewhere), holding its
    ``hwbench_node`` unit, never retried by Ray."""
    r = ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return r.remote(num_cpus=0, resources={RESOURCE: 1}, max_retries=0, retry_exceptions=False,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node.id, soft=False),
                    **options)(function)


def probe(nodes: list[Node], local: dict[str, Any]) -> dict[str, str | None]:
    """Each node's reason not to get work (None: it may): its hwbench version and build are
    asked on the node itself and compared with this driver's."""
    from hwbench.fleet import build

    r = ray()
    refs = {n.name: on_node(build.on_this_node, n).remote() for n in nodes}
    ready, _ = r.wait(list(refs.values()), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
    out: dict[str, str | None] = {}
    for name, ref in refs.items():
        if ref not in ready:
            r.cancel(ref, force=True)
            out[name] = f"did not answer within {PROBE_TIMEOUT_S:g} s"
            continue
        try:
            out[name] = build.mismatch(local, r.get(ref))
        except Exception as exc:  # hwbench missing there, the node gone: said, not raised
            out[name] = f"cannot run hwbench there ({type(exc).__name__}: {first_line(exc)})"
    return out


def first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
