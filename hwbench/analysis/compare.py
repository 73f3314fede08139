"""``hwbench compare``: runs side by side, one table per workload and scenario, for a buyer.

Runs compare only when the settings that change a figure's meaning are equal
(``identity.comparability_key``) and each run is valid with accuracy validated; otherwise compare
refuses, unless forced, and then every row that would have been refused is marked.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from hwbench.analysis.export import Table
from hwbench.analysis.runs import RunRecord
from hwbench.errors import UsageError
from hwbench.results import spread as stats
from hwbench.results.identity import comparability_key
from hwbench.tables import format_value

HEADERS = ("system / backend", "runs", "samples/s", "p90 ms", "p99 ms", "accuracy", "W",
           "J/query", "samples/s/W", "samples/s per k$", "headline", "vs baseline",
           "ratio 95% CI", "note")
# A generative workload's table (llm): its throughput is tokens, its latencies TTFT and TPOT
# (same columns by position, so the notes read both alike).
LLM_HEADERS = ("system / backend", "runs", "tokens/s", "TTFT p99 ms", "TPOT p99 ms",
               "accuracy", "W", "J/query", "samples/s/W", "samples/s per k$", "headline",
               "vs baseline", "ratio 95% CI", "note")
_FIGURES = {False: ("samples_per_second", "latency_ms.p90", "latency_ms.p99"),
            True: ("tokens_per_second", "ttft_ms.p99", "tpot_ms.p99")}


@dataclass(frozen=True)
class Group:
    """The runs of one ``--repeat`` series (or one single run): one row of the table."""

    records: tuple[RunRecord, ...]

    @property
    def first(self) -> RunRecord:
        return self.records[0]

    def spread(self, value) -> stats.Spread | None:
        vals = [v for v in (value(r) for r in self.records) if v is not None]
        return stats.spread(vals) if vals else None

    def median(self, value) -> float | None:
        s = self.spread(value)
        return s.median if s else None

    def problems(self, base: "Group") -> list[str]:
        """Why this group should not be compared with the baseline (empty: it may)."""
        out = []
        ka, kb = comparability_key(self.first.doc), comparability_key(base.first.doc)
        diff = [f"{k} {ka.get(k)} vs {kb.get(k)}" for k in kb if ka.get(k) != kb.get(k)]
        if diff:
            out.append(f"settings differ from the baseline ({'; '.join(diff)})")
        for r in self.records:
            if (r.doc.get("validated") or {}).get("performance") is not True or not r.doc["valid"]:
                out.append(f"run {r.run_id} is not a valid performance run")
            if not r.accuracy_validated:
                out.append(f"run {r.run_id}: " + ("fidelity not validated (accuracy is not "
                                                  "applicable)" if r.generative
                                                  else "accuracy not validated"))
        return out


def groups_of(records: Sequence[RunRecord]) -> list[Group]:
    by: OrderedDict[str, list[RunRecord]] = OrderedDict()
    for r in records:
        by.setdefault(r.group, []).append(r)
    return [Group(tuple(rs)) for rs in by.values()]


def _pick_baseline(groups: list[Group], baseline: str | None) -> Group:
    if baseline is None:
        return groups[0]
    hits = [g for g in groups if any(baseline == r.run_id or baseline in r.label
                                     for r in g.records) or baseline == g.first.group]
    if not hits:
        labels = ", ".join(g.first.label for g in groups)
        raise UsageError(f"--baseline {baseline!r} matches none of {labels}: give a run id or "
                         "part of a label")
    return hits[0]


def price_for(r: RunRecord, prices: dict[str, float]) -> float | None:
    return prices.get(r.fingerprint or "") or prices.get(r.system)


def _ratio(g: Group, base: Group) -> tuple[float | None, tuple[float, float] | None, bool]:
    """The headline ratio oriented so that > 1 is better than the baseline, its CI, and
    whether it is within run-to-run noise."""
    head = lambda r: r.headline[1]  # noqa: E731 - a one-line accessor
    a, b = g.spread(head), base.spread(head)
    if a is None or b is None:
        return None, None, False
    if g is base:
        return 1.0, None, False
    num, den = (a, b) if g.first.higher_is_better else (b, a)
    r, ci = stats.ratio(num, den)
    cvs = [s.cv for s in (a, b) if s.cv is not None]
    return r, ci, g is not base and stats.within_noise(r, ci, max(cvs) if cvs else None)


def _row(g: Group, base: Group, prices: dict[str, float], problems: list[str]) -> list[object]:
    r = g.first
    tput_key, lat1, lat2 = _FIGURES[r.generative]
    tput = g.median(lambda x: x.metric(tput_key))
    price = price_for(r, prices)
    ratio, ci, noisy = _ratio(g, base)
    note = ["baseline"] if g is base else []
    if problems:
        note.append("* forced: " + "; ".join(problems))
    if noisy:
        note.append("within run-to-run noise")
    samples_s = g.median(lambda x: x.metric("samples_per_second"))
    return [r.label, len(g.records), tput, g.median(lambda x: x.metric(lat1)),
            g.median(lambda x: x.metric(lat2)), r.accuracy_status,
            g.median(lambda x: x.watts), g.median(lambda x: x.energy_per_query_j),
            g.median(lambda x: x.perf_per_watt),
            None if price is None or samples_s is None else samples_s / price * 1000,
            f"{r.headline[0]} {format_value(g.median(lambda x: x.headline[1]))}"
            if r.headline[0] else None,
            ratio, "-" if g is base else "no CI" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]",
            ", ".join(note)]


def build(records: Sequence[RunRecord], baseline: str | None = None,
          prices: dict[str, float] | None = None, force: bool = False) -> list[Table]:
    """One table per (workload, scenario). Refuses incomparable runs unless `force`."""
    if len(records) < 2:
        raise UsageError(f"compare needs at least two runs (got {len(records)}): give more run "
                         "directories or widen the query")
    prices = prices or {}
    by_kind: OrderedDict[tuple[str, str], list[RunRecord]] = OrderedDict()
    for r in records:
        by_kind.setdefault((r.doc["workload"], r.doc["scenario"]), []).append(r)
    _alone(by_kind, force)
    tables = []
    for (workload, scenario), recs in by_kind.items():
        groups = groups_of(recs)
        base = _pick_baseline(groups, baseline)
        problems = {id(g): g.problems(base) for g in groups}
        bad = [f"{g.first.label}: {p}" for g in groups for p in problems[id(g)]]
        bad.sort(key=lambda p: "settings differ" not in p)  # the most telling reason first
        if bad and not force:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise UsageError(f"not comparable: {bad[0]}{more}; pass --force to compare anyway "
                             "(rows are then marked)")
        rows = [_row(g, base, prices, problems[id(g)]) for g in groups]
        headers = LLM_HEADERS if groups[0].first.generative else HEADERS
        tables.append(Table(f"{workload} / {scenario}", headers, rows,
                            _notes(groups, base, prices, rows)))
    return tables


def _alone(by_kind: dict[tuple[str, str], list[RunRecord]], force: bool) -> None:
    """Refuses a run that nothing else shares its workload and scenario with (unless forced)."""
    lonely = [k for k, recs in by_kind.items() if len(groups_of(recs)) == 1]
    if len(by_kind) > 1 and lonely and not force:
        kinds = ", ".join(f"{w} / {s}" for w, s in by_kind)
        raise UsageError(f"not comparable: different workloads or scenarios ({kinds}); give runs "
                         "of one workload and scenario, or pass --force to tabulate each apart")


def _notes(groups: list[Group], base: Group, prices: dict[str, float],
           rows: list[list[object]]) -> list[str]:
    notes = [f"vs baseline: headline metric relative to {base.first.label} (> 1 is better); "
             "medians over repeats; CI: t-interval, needs 3+ runs on both sides"]
    missing = [g.first.label for g in groups if price_for(g.first, prices) is None]
    if missing and prices:
        notes.append(f"samples/s per k$: not shown, no price for {', '.join(missing)}")
        for row in rows:
            row[9] = None
    if all(row[6] is None for row in rows):
        notes.append("W, J/query, samples/s/W: no power measurement in these runs")
    if any(len(g.records) == 1 for g in groups) and len(groups) > 1:
        notes.append("single runs carry no measure of run-to-run noise: use hwbench run "
                     "--repeat 3 (or more) before claiming a small difference")
    if any("within run-to-run noise" in str(row[-1]) for row in rows):
        notes.append("Warning: some differences are within run-to-run noise; they are not "
                     "evidence that one is faster")
    return notes
