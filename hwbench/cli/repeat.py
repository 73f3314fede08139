"""``hwbench run --repeat N``: the series' runs, then the spread of their headline metric."""
from __future__ import annotations

import argparse
import json
import sys

from hwbench.passes.repeats import run_series, series_exit_code, spread_text
from hwbench.config import RunConfig
from hwbench.errors import UsageError
from hwbench.harness.progress import Reporter
from hwbench.results.summary import summary_table


def handle(args: argparse.Namespace, cfg: RunConfig) -> int:
    if args.repeat < 1:
        raise UsageError(f"--repeat must be >= 1 (got {args.repeat})")
    outcomes = run_series(cfg, Reporter(enabled=not args.quiet), args.repeat)
    last = outcomes[-1].result
    if args.json:  # the last run carries the series' repeat section
        json.dump(last, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return series_exit_code(outcomes)
    for o in outcomes:
        print(summary_table(o.result, o.run_dir))
        print()
    print(spread_text(last.get("repeat")))
    return series_exit_code(outcomes)
