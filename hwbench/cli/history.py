"""``hwbench history``: the runs of one configuration over time, regressions flagged."""
from __future__ import annotations

import argparse
from pathlib import Path

from hwbench.analysis import export, history
from hwbench.cli.compare import add_query_options, where_of
from hwbench.errors import EXIT_OK, EXIT_REGRESSION, UsageError
from hwbench.results.store import default_output_root, list_runs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="one configuration's runs over time",
                       description="List the runs of one configuration (workload, scenario, "
                       "settings, backend and its options, system) over time from the index, and "
                       "flag regressions beyond run-to-run noise and drift over the runs. Exit "
                       "status 5 when the latest run regressed or the runs up to it drift.")
    add_query_options(p)
    p.add_argument("--config", metavar="HASH", help="configuration id (from an earlier "
                   "history); default: the configuration of the newest matching run")
    p.add_argument("--html", metavar="FILE", help="also write the table as a self-contained page")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else default_output_root()
    where = where_of(args)
    if args.config:
        where["setup_hash"] = args.config
    rows = [r for r in list_runs(root, **where)
            if args.system in (None, r["hostname"], r["system_fingerprint"])]
    if not rows:
        raise UsageError(f"no runs in {root / 'index.sqlite'} match the query: run some, or give "
                         "--root DIR")
    newest = rows[0]["setup_hash"]
    others = {r["setup_hash"] for r in rows} - {newest}
    rows = [r for r in reversed(rows) if r["setup_hash"] == newest]
    table = history.build(rows)
    if others:
        table.notes.append(f"{len(others)} other configuration(s) match this query: "
                           f"{', '.join(sorted(others))} (choose one with --config)")
    print(export.terminal([table]), end="")
    if args.html:
        print(f"written to {export.write_new(args.html, history.page(rows, table))}")
    latest = history.flags(rows)[-1]
    return EXIT_REGRESSION if "REGRESSION" in latest or "DRIFT" in latest else EXIT_OK
