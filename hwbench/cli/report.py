"""``hwbench report RUN_DIR``: a self-contained HTML page about one run."""
from __future__ import annotations

import argparse
from pathlib import Path

from hwbench.analysis import export, report
from hwbench.results.store import load_result


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write an HTML report of a run",
                       description="Write a self-contained HTML report of a finished run (no "
                       "network needed to view it): summary, latency, power, accuracy, "
                       "robustness, system and settings.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", metavar="FILE", help="HTML file to write (default: "
                   "RUN_DIR/report.html; an existing file is never overwritten)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    doc = load_result(args.run_dir)
    run_dir = Path(args.run_dir)
    run_dir = run_dir if run_dir.is_dir() else run_dir.parent  # RUN_DIR/result.json works too
    out = Path(args.out) if args.out else run_dir / "report.html"
    print(f"written to {export.write_new(out, report.build(doc, run_dir))}")
    return 0
