"""``hwbench show RUN_DIR``: a finished run's summary table."""
from __future__ import annotations

import argparse
import json
import sys

from hwbench.results.store import load_result
from hwbench.results.summary import summary_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show a finished run", description="Print a finished run's "
                       "summary table.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--json", action="store_true", help="print the result document instead")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    doc = load_result(args.run_dir)
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(summary_table(doc, args.run_dir))
    return 0
