"""``hwbench compare``: runs side by side, for deciding which machine or backend to buy."""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from hwbench import workloads
from hwbench.analysis import compare, export, runs
from hwbench.errors import CompareRefused, UsageError
from hwbench.results.store import default_output_root, list_runs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare runs side by side",
                       description="Compare runs (directories, or a query on the index) in one "
                       "table per workload and scenario: throughput, latency, accuracy, power, "
                       "performance per watt and per dollar, ratio against a baseline.")
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run directories (default: "
                   "the runs in the index that match the query options)")
    add_query_options(p)
    p.add_argument("--baseline", metavar="RUN", help="run id or part of a row label "
                   "(backend[options]@host); default: the first row")
    p.add_argument("--price", action="append", default=[], metavar="SYSTEM=USD",
                   help="price of a system (hostname, fingerprint or fleet node name), "
                   "repeatable")
    p.add_argument("--systems", metavar="FILE", help="TOML file: [systems.NAME] price_usd = N")
    p.add_argument("--force", action="store_true", help="compare runs that are not comparable "
                   "(different settings, invalid, accuracy not validated); rows are marked")
    p.add_argument("--require-audit", action="store_true", help="refuse (exit 8) unless every "
                   "run passed 'hwbench audit' (its result carries a passed audit)")
    p.add_argument("--csv", metavar="FILE", help="also write the tables as CSV")
    p.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    p.set_defaults(handler=handle)


def add_query_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", metavar="DIR", help="output root holding index.sqlite (default: "
                   "results/runs in a checkout, else ./hwbench-results)")
    p.add_argument("--workload", help="only runs of this workload (a name, or a workload "
                   "file: its name)")
    for name in ("scenario", "backend"):
        p.add_argument(f"--{name}", help=f"only runs of this {name}")
    p.add_argument("--system", help="only runs of this system (hostname, fingerprint, or fleet "
                   "node name)")


def where_of(args: argparse.Namespace) -> dict[str, str]:
    """The index columns the query options select (a workload file stands for its name)."""
    where = {k: getattr(args, k) for k in ("workload", "scenario", "backend") if getattr(args, k)}
    if "workload" in where:
        where["workload"] = workloads.run_name(where["workload"])
    return where


def query(args: argparse.Namespace) -> list[runs.RunRecord]:
    """The index's runs matching the query options, oldest first."""
    root = Path(args.root) if args.root else default_output_root()
    where = where_of(args)
    rows = [r for r in list_runs(root, **where)
            if args.system in (None, r["hostname"], r["system_fingerprint"], r["node"])]
    if not rows:
        asked = ", ".join(f"{k}={v}" for k, v in {**where, "system": args.system}.items() if v)
        raise UsageError(f"no runs in {root / 'index.sqlite'} match {asked or 'the query'}: "
                         "run some, or give --root DIR or run directories")
    return [runs.load(root / r["path"]) for r in reversed(rows)]


def parse_prices(pairs: list[str], systems_file: str | None) -> dict[str, float]:
    prices: dict[str, float] = {}
    if systems_file:
        path = Path(systems_file)
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"--systems {systems_file}: {exc}; give a readable TOML file") from None
        for name, entry in (data.get("systems") or {}).items():
            prices[name] = _usd(f"{name}.price_usd", (entry or {}).get("price_usd"))
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--price {pair!r}: write it as SYSTEM=USD (hostname or fingerprint)")
        prices[name.strip()] = _usd(pair, value)
    return prices


def _usd(where: str, value: object) -> float:
    try:
        usd = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        usd = -1.0
    if not usd > 0:
        raise UsageError(f"price {where!r}: give a positive number of US dollars")
    return usd


def handle(args: argparse.Namespace) -> int:
    records = [runs.load(d) for d in args.run_dirs] if args.run_dirs else query(args)
    if args.require_audit:
        unaudited = [r.run_id for r in records if not (r.doc.get("audit") or {}).get("passed")]
        if unaudited:
            more = ", ..." if len(unaudited) > 3 else ""
            raise CompareRefused(f"compare refused: {len(unaudited)} of {len(records)} runs did "
                                 f"not pass an audit ({', '.join(unaudited[:3])}{more}): run "
                                 "them with 'hwbench audit', or drop --require-audit")
    prices = parse_prices(args.price, args.systems)
    tables = compare.build(records, args.baseline, prices, args.force)
    print(export.terminal(tables), end="")
    for path, text in ((args.csv, lambda: export.to_csv(tables)),
                       (args.markdown, lambda: export.to_markdown(tables)),
                       (args.html, lambda: export.to_html(tables, "hwbench comparison"))):
        if path:
            print(f"written to {export.write_new(path, text())}")
    return 0
