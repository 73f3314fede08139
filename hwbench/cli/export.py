"""``hwbench export``: the index as a table for pandas, spreadsheets and notebooks."""
from __future__ import annotations

import argparse
from pathlib import Path

from hwbench.analysis.frame import runs_frame, write
from hwbench.cli.compare import add_query_options
from hwbench.errors import EXIT_OK, UsageError
from hwbench.results.store import default_output_root


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write the index as CSV or parquet",
                       description="Write the runs of the index (one row each: settings, "
                       "throughput, latency percentiles, power, accuracy, system, hashes) as CSV "
                       "or parquet, for pandas (hwbench.analysis.runs_frame gives the same "
                       "DataFrame). Needs the analysis extra: pip install 'hwbench[analysis]'.")
    add_query_options(p)
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--csv", metavar="FILE", help="CSV file, or - for standard output")
    out.add_argument("--parquet", metavar="FILE", help="parquet file (dtypes kept)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else default_output_root()
    where = {k: getattr(args, k) for k in ("workload", "scenario", "backend") if getattr(args, k)}
    frame = runs_frame(root, **where)
    if args.system:
        frame = frame[(frame["hostname"] == args.system)
                      | (frame["system_fingerprint"] == args.system)
                      | (frame["node"] == args.system)]
    if frame.empty:
        raise UsageError(f"no runs in {root / 'index.sqlite'} match the query: run some, or "
                         "give --root DIR")
    kind, path = ("csv", args.csv) if args.csv else ("parquet", args.parquet)
    where_to = write(frame, path, kind)
    if path != "-":
        print(f"{len(frame)} runs written to {where_to}")
    return EXIT_OK
