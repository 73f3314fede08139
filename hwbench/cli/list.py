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
    rows = []
    for name in backends.names():
        cls = backends.backend_class(name)
        a = cls.availability()
        status = "usable" if a.usable else f"NOT USABLE: {a.reason}"
        if not a.usable and a.install:
            status += f" ({a.install})"
        opts = ", ".join(f"{o.name}={o.default}" for o in cls.options) or "-"
        rows.append((name, cls.description, ", ".join(a.devices) or "-",
                     ", ".join(a.precisions) or "-", opts, status))
    print(table(("backend", "description", "devices", "precisions", "options (default)",
                 "status"), rows, title="Backends"))
    return 0
