"""Judging a device against a qualification profile: PASS or FAIL per requirement, with evidence.

A requirement whose measurement is missing FAILs: a device cannot qualify on a figure nobody
measured. The evidence then says what was missing and why.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable

from hwbench.analysis.profile import Requirement
from hwbench.results import drift
from hwbench.results.document import generative
from hwbench.tables import format_value

# Queries a percentile needs before it can be judged at 99% confidence (docs/loadgen.md).
_MIN_QUERIES = {90: 64, 99: 662}


@dataclass(frozen=True)
class Verdict:
    requirement: Requirement
    passed: bool
    evidence: str
    run_id: str

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


def _bounded(value: float | None, bound: float, upper: bool, unit: str, what: str,
             missing: str) -> tuple[bool, str]:
    if value is None:
        return False, f"not measured: {missing}"
    ok = value <= bound if upper else value >= bound
    rel = "<=" if upper else ">="
    v, b = _num(value), _num(bound)
    return ok, f"{what} {v}{unit} {'' if ok else 'not '}{rel} {b}{unit}"


def _num(x: float) -> str:
    return format_value(int(x)) if float(x).is_integer() else format_value(float(x))


def _latency(req: Requirement, doc: dict[str, Any], section: str = "latency_ms",
             what: str = "") -> tuple[bool, str]:
    m = doc.get("metrics") or {}
    key = f"p{req.percentile:g}"
    value = (m.get(section) or {}).get(key)
    key = f"{key} {what}".strip()
    need = _MIN_QUERIES.get(int(req.percentile)) if req.percentile in (90, 99) else None
    done = m.get("completed_queries") or 0
    if value is not None and need and done < need:
        return False, (f"{key} {value:.4g} ms rests on {done} queries; judging {key} needs at "
                       f"least {need}: lengthen the run (min_query_count)")
    return _bounded(value, req.bound, True, " ms", key, "the run has no latency figures")


def _accuracy(req: Requirement, doc: dict[str, Any]) -> tuple[bool, str]:
    if generative(doc):  # no text metric: the answers are judged by fidelity instead
        f = doc.get("fidelity")
        if not f:
            return False, (f"accuracy not applicable to {doc['workload']}, and fidelity not "
                           f"checked: {doc.get('fidelity_note') or 'no fidelity section'}")
        return bool(f.get("passed")), (f"accuracy not applicable to {doc['workload']}: judged "
                                       f"by fidelity, {'PASS' if f.get('passed') else 'FAIL'}")
    acc = doc.get("accuracy")
    if not acc:
        return False, f"not measured: {doc.get('accuracy_note') or 'no accuracy pass'}"
    frac = acc["value"] / acc["reference"] if acc.get("reference") else None
    ok, text = _bounded(frac, req.bound, False, "", "fraction of reference",
                        "the workload has no reference accuracy")
    return ok, f"{acc['metric']} {acc['value']:.4f} vs reference {acc['reference']:.4f}: {text}"


def _power(req: Requirement, doc: dict[str, Any]) -> tuple[bool, str]:
    power = doc.get("power") or {}
    why = "; ".join(f"{s['name']}: {s.get('reason')}" for s in power.get("sources") or []
                    if not s.get("available")) or "no power section in the result"
    return _bounded((power.get("total") or {}).get("avg_w"), req.bound, True, " W",
                    "average power", f"no power sensor reading ({why})")


def _memory(req: Requirement, doc: dict[str, Any]) -> tuple[bool, str]:
    rss = (doc.get("telemetry") or {}).get("peak_rss_bytes")
    return _bounded(None if rss is None else rss / 1e6, req.bound, True, " MB", "peak RSS",
                    "no telemetry.peak_rss_bytes in the result")


def _throttling(req: Requirement, doc: dict[str, Any]) -> tuple[bool, str]:
    tel = doc.get("telemetry") or {}
    dur = (doc.get("metrics") or {}).get("duration_s") or 0.0
    if tel.get("throttled") is None:
        return False, "not measured: the result has no throttling telemetry"
    if tel["throttled"]:
        return False, f"throttled during {dur:.0f} s: {', '.join(tel.get('throttle_reasons') or [])}"
    return True, f"no throttling during {dur:.0f} s"


def _drift(req: Requirement, doc: dict[str, Any]) -> tuple[bool, str]:
    d = doc.get("drift")
    if not d:
        return False, "not measured: the run was not a soak (give it soak_minutes)"
    if d["flagged"] is None:
        return False, f"not judged: {d['note']}"
    lines = drift.describe(d)
    return not d["flagged"], "; ".join(lines)


def _valid(req: Requirement, doc: dict[str, Any]) -> tuple[bool, str]:
    if doc["valid"]:
        return True, "valid run"
    return False, "invalid: " + "; ".join(doc["invalid_reasons"] or ["not validated"])


def _simple(path: tuple[str, str], unit: str, what: str, upper: bool, missing: str):
    def judge(req: Requirement, doc: dict[str, Any]) -> tuple[bool, str]:
        value = (doc.get(path[0]) or {}).get(path[1])
        return _bounded(value, req.bound, upper, unit, what, missing)
    return judge


_JUDGES: dict[str, Callable[[Requirement, dict[str, Any]], tuple[bool, str]]] = {
    "valid": _valid, "latency": _latency, "accuracy": _accuracy, "power": _power,
    "ttft": lambda req, doc: _latency(req, doc, "ttft_ms", "TTFT"),
    "tpot": lambda req, doc: _latency(req, doc, "tpot_ms", "TPOT"),
    "tokens": _simple(("metrics", "tokens_per_second"), " tokens/s", "token throughput", False,
                      "the run has no token figures (not a generative workload)"),
    "memory": _memory, "no_throttling": _throttling, "no_drift": _drift,
    "throughput": _simple(("metrics", "samples_per_second"), " samples/s", "throughput", False,
                          "the run has no performance figures"),
    "robustness": _simple(("robustness", "relative_drop"), "", "relative drop", True,
                          "no robustness section in the result"),
}


def judge(req: Requirement, doc: dict[str, Any]) -> Verdict:
    ok, evidence = _JUDGES[req.kind](req, doc)
    return Verdict(req, ok, evidence, doc["run_id"])


def junit_xml(profile_name: str, verdicts: list[Verdict]) -> str:
    """One testsuite, one testcase per requirement; a failure's message is the reason."""
    fails = sum(not v.passed for v in verdicts)
    suite = ET.Element("testsuite", name=f"hwbench qualify {profile_name}",
                       tests=str(len(verdicts)), failures=str(fails), errors="0")
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"hwbench.qualify.{profile_name}",
                             name=v.requirement.name)
        if v.passed:
            ET.SubElement(case, "system-out").text = f"{v.evidence} (run {v.run_id})"
        else:
            ET.SubElement(case, "failure", message=v.evidence, type="requirement").text = (
                f"{v.evidence} (run {v.run_id})")
    root = ET.Element("testsuites", tests=str(len(verdicts)), failures=str(fails))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
