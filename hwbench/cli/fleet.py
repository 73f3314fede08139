"""``hwbench fleet``: a sweep of runs on a Ray cluster (run, status, resume). docs/fleet.md."""
from __future__ import annotations

import argparse
from pathlib import Path

from hwbench.errors import EXIT_OK, UsageError
from hwbench.fleet import build, cluster, driver, sweep
from hwbench.fleet.manifest import UNFINISHED, Manifest
from hwbench.results.store import output_root
from hwbench.tables import table

RAY_HELP = ("Ray cluster address (HOST:PORT, or ray://HOST:PORT); default: start a local Ray "
            "instance on this machine, one node")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="run a sweep of runs on a Ray cluster",
                       description="Expand a sweep file into runs and execute them on a Ray "
                       "cluster, one run per node at a time, results in one output root and "
                       f"one index (docs/fleet.md). Needs Ray: {cluster.INSTALL}. Exit status "
                       "7: some runs were lost or failed ('hwbench fleet resume').")
    fleet_sub = p.add_subparsers(dest="fleet_command", metavar="ACTION",
                                 parser_class=type(p))
    run = fleet_sub.add_parser("run", help="run a sweep", description="Run every run of the "
                               "sweep; progress on stderr, the sweep's table on stdout.")
    run.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file")
    run.add_argument("--ray", metavar="ADDRESS", help=RAY_HELP)
    _output(run)
    run.set_defaults(handler=handle_run)
    status = fleet_sub.add_parser("status", help="show a sweep's progress",
                                  description="The state of each run of a sweep (read from its "
                                  "manifest: works while it runs and after its driver died).")
    _output(status)
    _sweep_id(status)
    status.set_defaults(handler=handle_status)
    resume = fleet_sub.add_parser("resume", help="run again what a sweep left undone",
                                  description="Run every run of a sweep that has no result "
                                  "(lost with its node, failed, interrupted, never started), "
                                  "each on a node matching its system.")
    resume.add_argument("--ray", metavar="ADDRESS", help=RAY_HELP + " (default: the sweep's)")
    _output(resume)
    _sweep_id(resume)
    resume.set_defaults(handler=handle_resume)
    p.set_defaults(handler=lambda args: _no_action(p))


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", metavar="DIR", help="output root (default: results/runs in a "
                   "checkout, else ./hwbench-results)")


def _sweep_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sweep", metavar="ID", help="which sweep of the output root (its id, or "
                   "the start of it; default: the newest)")


def _no_action(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def handle_run(args: argparse.Namespace) -> int:
    planned, text = sweep.load(args.sweep)
    cluster.ray()  # before anything is written: without Ray, say how to install it
    cluster.check_address(args.ray)
    root = output_root(args.output)
    m = Manifest.create(root, planned, str(Path(args.sweep).resolve()), text,
                        args.ray or cluster.LOCAL, build.identity())
    code = driver.execute(root, m, args.ray)
    _print_table(m)
    return code


def handle_resume(args: argparse.Namespace) -> int:
    cluster.ray()
    root = output_root(args.output)
    m = Manifest.find(root, args.sweep)
    if m.driver_running():
        d = m.data.get("driver") or {}
        raise UsageError(f"sweep {m.sweep_id} is being run by process {d.get('pid')} on "
                         f"{d.get('hostname')}: wait for it, or stop it (Ctrl-C) first")
    cluster.check_address(args.ray or m.data.get("ray"))
    todo = [r for r in m.runs if r["state"] in UNFINISHED]
    if not todo:
        print(f"sweep {m.sweep_id}: every run is done; nothing to resume")
        _print_table(m)
        return EXIT_OK
    m.data["hwbench"] = build.identity()  # the nodes must match the hwbench resuming the sweep
    for r in todo:
        if r["state"] != "pending":
            m.record(r, "pending", reason=f"resumed after {r['state']}")
    return_code = driver.execute(root, m, args.ray or m.data.get("ray"))
    _print_table(m)
    return return_code


def handle_status(args: argparse.Namespace) -> int:
    m = Manifest.find(output_root(args.output), args.sweep)
    _print_table(m)
    return EXIT_OK


def _print_table(m: Manifest) -> None:
    alive = m.driver_running()
    rows = []
    for r in m.runs:
        state = r["state"]
        if state == "running" and not alive:
            state = "running? (driver gone: resume)"
        verdict = None if r["valid"] is None else "VALID" if r["valid"] else "INVALID"
        rows.append([r["key"], r["label"], state, r["node"], r["run_id"], verdict, r["reason"]])
    counts = ", ".join(f"{n} {s}" for s, n in sorted(m.counts().items()))
    d = m.data.get("driver") or {}
    who = (f"driver running (process {d.get('pid')} on {d.get('hostname')})" if alive
           else "no driver running")
    print(f"sweep {m.sweep_id} ({m.data['name']}): {counts}; {who}")
    print(table(["run", "configuration", "state", "node", "run id", "verdict", "note"],
                       rows))
    nodes = m.data.get("nodes") or {}
    if nodes:
        print("nodes: " + "; ".join(f"{name} {n['state']}" + (f" ({n['reason']})"
                                    if n.get("reason") else "") for name, n in nodes.items()))
