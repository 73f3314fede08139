"""``hwbench qualify --profile FILE``: does this device meet a profile's requirements?

Exit status: 0 every requirement passed, 4 any failed, 2 bad profile, 1 internal error,
130 interrupted, 3 a run left a backend call stuck (no verdict; the table in hwbench.errors).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from hwbench.analysis import export, profile as profiles, qualify
from hwbench.errors import EXIT_OK, EXIT_QUALIFY_FAIL
from hwbench.harness.progress import Reporter
from hwbench.passes.runner import EXIT_INTERRUPTED, execute
from hwbench.results.store import default_output_root
from hwbench.tables import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("qualify", help="PASS/FAIL a device against a qualification profile",
                       description="Run what a qualification profile (TOML) needs, then judge "
                       "each requirement PASS or FAIL with the measured evidence. Exit status: "
                       "0 all pass, 4 any fail, 2 bad profile, 1 internal error, 3 a run left "
                       "a backend call stuck (no verdict).")
    p.add_argument("--profile", required=True, metavar="FILE", help="profile TOML (examples: "
                   "scenarios/qualify-*.toml; schema in docs/decisions.md)")
    p.add_argument("--output", metavar="DIR", help="output root for the runs (default: "
                   "results/runs in a checkout, else ./hwbench-results)")
    p.add_argument("--junit", metavar="FILE", help="JUnit XML file (default: "
                   "OUTPUT/qualify-NAME-TIME.xml)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    prof = profiles.load(args.profile, args.output)
    junit = Path(args.junit) if args.junit else _default_junit(args.output, prof.name)
    if junit.exists():
        export.write_new(junit, "")  # raises the one-line usage error before anything runs
    reporter = Reporter(enabled=not args.quiet)
    docs, dirs = {}, {}
    for name, cfg in prof.runs.items():
        reporter.info(f"qualify {prof.name}: run {name} ({cfg.scenario}, {cfg.mode})")
        outcome = execute(cfg, reporter)
        docs[name], dirs[name] = outcome.result, outcome.run_dir
        if outcome.exit_code == EXIT_INTERRUPTED:
            print(f"interrupted during run {name}: no verdict (what ran is written)")
            return EXIT_INTERRUPTED
        if outcome.abandoned:  # the next run would compete with the stuck call, or get stuck
            print(f"a backend call got stuck during run {name} and was abandoned: no verdict "
                  "(what ran is written)")
            return outcome.exit_code
    verdicts = [qualify.judge(r, docs[r.run]) for r in prof.requirements]
    rows = [(v.requirement.name, v.status, v.evidence) for v in verdicts]
    print(table(("requirement", "verdict", "evidence"), rows,
                title=f"Qualification: {prof.name}" + (f" - {prof.description}"
                                                       if prof.description else "")))
    print("\n".join(f"  run {name}: {d}" for name, d in dirs.items()))
    failed = [v for v in verdicts if not v.passed]
    overall = "FAIL" if failed else "PASS"
    print(f"\nOverall: {overall} ({len(verdicts) - len(failed)} of {len(verdicts)} "
          "requirements passed)")
    junit.parent.mkdir(parents=True, exist_ok=True)
    print(f"JUnit XML: {export.write_new(junit, qualify.junit_xml(prof.name, verdicts))}")
    return EXIT_QUALIFY_FAIL if failed else EXIT_OK


def _default_junit(output: str | None, name: str) -> Path:
    root = Path(output) if output else default_output_root()
    return root / f"qualify-{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.xml"
