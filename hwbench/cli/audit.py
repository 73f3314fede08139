"""``hwbench audit``: compliance checks of one configuration (hwbench.audit)."""
from __future__ import annotations

import argparse
import json
import sys

from hwbench.audit import audit_passes
from hwbench.cli.run import add_run_options, config_from_args
from hwbench.errors import EXIT_AUDIT_FAIL
from hwbench.harness.progress import Reporter
from hwbench.passes.runner import EXIT_VALID, execute
from hwbench.results.summary import summary_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="check that the system under test does the work it claims",
                       description="Run one configuration with MLPerf-style compliance checks: "
                       "caching (a pass repeating one sample must not beat unique work by more "
                       "than 10%%), sampled accuracy (outputs under load must equal the "
                       "accuracy pass's) and alternate seeds (passes with other seeds inside the "
                       "configured seeds' 95%% interval). Generative workloads (llm) get prefix "
                       "caching (repeated prompts' TTFT no more than 10%% below fresh ones'), "
                       "first token "
                       "(each reported first token and count equal the output's) and alternate "
                       "seeds. Takes the options of 'hwbench run' but --mode and "
                       "--repeat. Exit status 6 when a check fails, 3 when the run is otherwise "
                       "invalid.")
    add_run_options(p, with_mode=False)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    args.mode = "both"  # the audit runs an accuracy and a performance pass, and its own checks
    outcome = execute(config_from_args(args), Reporter(enabled=not args.quiet),
                      passes=audit_passes)
    if args.json:
        json.dump(outcome.result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(summary_table(outcome.result, outcome.run_dir))
    audit = outcome.result.get("audit")
    if audit and not audit["passed"] and outcome.exit_code in (EXIT_VALID, 3):
        return EXIT_AUDIT_FAIL
    return outcome.exit_code
