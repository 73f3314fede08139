"""``hwbench run --repeat N``: the same configuration N times, and the spread of its headline.

Each run is written as it finishes (a fault or Ctrl-C mid-series loses nothing). Every run of a
series records the series' group id (``settings.repeat_group``) and the ``repeat`` section of the
series so far, so the last run written carries the spread of all of them.
"""
from __future__ import annotations

import secrets
import time
from typing import Any

from hwbench.config import RunConfig
from hwbench.harness.progress import Reporter
from hwbench.passes.runner import (EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_VALID,
                                   Outcome, execute)
from hwbench.results import spread as stats

# Which exit status a series gets: the most serious among its runs.
_SEVERITY = (EXIT_INTERRUPTED, EXIT_INTERNAL, EXIT_INVALID, EXIT_VALID)


def new_group_id() -> str:
    return f"rep-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def run_series(cfg: RunConfig, reporter: Reporter, n: int) -> list[Outcome]:
    """Runs `cfg` `n` times; stops early when a run was interrupted or left a backend call
    stuck (the next run would compete with it, or get stuck the same way)."""
    group, values, run_ids, outcomes = new_group_id(), [], [], []

    def annotate(doc: dict[str, Any]) -> None:
        doc["settings"]["repeat_group"] = group
        doc["settings"]["repeat_index"] = len(outcomes) + 1
        name = ((doc.get("metrics") or {}).get("scenario_metric") or {}).get("name")
        # An interrupted run or one whose performance was not validated (a backend fault) measured
        # something other than the configuration: its figure would widen the spread falsely.
        measured = ((doc.get("validated") or {}).get("performance") is True
                    and not doc.get("interrupted") and doc.get("metrics"))
        if measured:
            values.append(doc["metrics"]["scenario_metric"]["value"])
            run_ids.append(doc["run_id"])
        if values:
            left_out = doc["settings"]["repeat_index"] - len(values)
            doc["repeat"] = stats.to_contract(stats.spread(values), name or "", run_ids, left_out)

    for i in range(n):
        reporter.info(f"repeat {i + 1} of {n}")
        outcomes.append(execute(cfg, reporter, annotate))
        if outcomes[-1].exit_code == EXIT_INTERRUPTED or outcomes[-1].abandoned:
            break
    return outcomes


def series_exit_code(outcomes: list[Outcome]) -> int:
    codes = {o.exit_code for o in outcomes}
    return next((c for c in _SEVERITY if c in codes), max(codes))


def spread_text(repeat: dict[str, Any] | None) -> str:
    """What a reader needs to know about the series: spread, CI and the noise it implies."""
    if not repeat:
        return ("repeat: no run of the series measured its headline metric in a validated, "
                "uninterrupted performance pass")
    ci = repeat["ci95"]
    ci_text = (f"95% CI of the mean [{ci[0]:,.4g}, {ci[1]:,.4g}] (t-interval)" if ci
               else f"no CI (needs {stats.MIN_CI_RUNS} runs or more)")
    lines = [f"repeat: {repeat['n']} runs of {repeat['metric']}: median {repeat['median']:,.4g}, "
             f"min {repeat['min']:,.4g}, max {repeat['max']:,.4g}; {ci_text}"]
    if repeat.get("left_out"):  # absent in results written before it was recorded
        lines.append(f"left out: {repeat['left_out']} run(s) interrupted or with performance not "
                     "validated")
    if repeat["cv"] is not None:
        cv = repeat["cv"]
        lines.append(f"run-to-run noise: CV {cv:.1%}. Warning: a difference under {2 * cv:.1%} "
                     "between single runs of this configuration is within that noise; compare "
                     "repeated runs instead.")
    return "\n".join(lines)
