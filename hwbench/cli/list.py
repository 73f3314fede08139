"""``hwbench list``: workloads, scenarios and backends, and whether each backend works here."""
from __future__ import annotations

import argparse

from hwbench import backends, workloads
from hwbench.config import SCENARIOS, load_scenario
from hwbench.tables import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list workloads, scenarios and backends",
                       description="List workloads, scenarios and backends; for each backend, "
                       "whether it is usable here, and if not, why and how to install it.")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    rows = [(name, workloads.workload_class(name).description) for name in workloads.names()]
    rows.append((workloads.FILE_WORKLOAD, "your own labelled image classifier, described in a "
                 "workload file (README, 'Your own workload')"))
    print(table(("workload", "description"), rows, title="Workloads"))
    print()
    rows = []
    for name in SCENARIOS:
        spec = load_scenario(name, "mlperf")
        rows.append((name, spec.description, f"p{spec.target_latency_percentile * 100:g}",
                     spec.mlperf_min_duration_s, spec.mlperf_min_query_count))
    print(table(("scenario", "description", "percentile", "MLPerf min s", "MLPerf min queries"),
                rows, title="Scenarios"))
    print()
    print(_backends_text())
    return 0


def _backends_text() -> str:
    """One row per backend (usable here or not, devices, precisions), then each one's options
    and, for one that is not usable, why and how to make it usable."""
    rows, notes = [], []
    for name in backends.names():
        cls = backends.backend_class(name)
        a = cls.availability()
        rows.append((name, "usable" if a.usable else "unusable", ", ".join(a.devices) or "-",
                     ", ".join(a.precisions) or "-", cls.description))
        notes.append(f"{name}:")
        if not a.usable:
            notes.append(f"  not usable here: {a.reason}")
            if a.install:
                notes.append(f"  fix: {a.install}")
        for o in cls.options:
            choices = f" ({'|'.join(map(str, o.choices))})" if o.choices else ""
            notes.append(f"  --backend-opt {o.name}={o.default}{choices}  {o.help}")
    head = table(("backend", "here", "devices", "precisions", "description"), rows,
                 title="Backends")
    return head + "\n\n" + "\n".join(notes)
