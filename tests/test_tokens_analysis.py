"""LLM runs in the analysis commands: compare, history, qualify and report show TTFT, TPOT and
tokens/s, and treat accuracy as not applicable (a generative run is validated by fidelity)."""
from __future__ import annotations

import pytest

from analysis_helpers import derive, make_run
from hwbench.analysis import compare, history, qualify, report
from hwbench.analysis.profile import Requirement
from hwbench.analysis.runs import load
from hwbench.results.document import status_line
from hwbench.results.store import list_runs, load_result

LLM = ["--workload", "llm", "--backend", "null", "--scenario", "single-stream", "--backend-opt",
       "token_us=20", "--backend-opt", "prefill_us=100",
       "--no-power", "--telemetry-hz", "0"]
FIDELITY = {"passed": True, "observed_precision": "fp32", "declared_precision": "fp32",
            "expected_precision": "fp32", "top1_agreement": 1.0, "max_rel_error": 0.0,
            "cosine_min": 1.0, "samples": 4}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm-runs")
    real = make_run(root, *LLM)
    checked = derive(real, root, lambda d: d.update(fidelity=FIDELITY) or d["validated"].update(
        fidelity=True), "fidelity")
    return root, real, checked


def test_a_null_llm_run_is_performance_valid_with_accuracy_not_applicable(runs):
    _, real, checked = runs
    doc = load_result(real)
    assert doc["valid"] and doc["workload_info"]["generative"] is True
    assert status_line(doc) == ("PERFORMANCE VALID (performance VALID, fidelity not checked, "
                                "accuracy not applicable)")
    assert load(real).accuracy_status == "n/a (not scored)"
    assert load(checked).accuracy_status == "n/a (fidelity PASS)"
    assert load(checked).accuracy_validated and not load(real).accuracy_validated


def test_compare_shows_tokens_and_refuses_an_unscored_llm_run(runs):
    _, real, checked = runs
    with pytest.raises(Exception, match="fidelity not validated"):
        compare.build([load(checked), load(real)])
    (table,) = compare.build([load(checked), load(real)], force=True)
    assert table.headers[2:5] == ("tokens/s", "TTFT p99 ms", "TPOT p99 ms")
    row = table.rows[0]
    m = load_result(checked)["metrics"]
    assert row[2] == pytest.approx(m["tokens_per_second"])
    assert row[3] == pytest.approx(m["ttft_ms"]["p99"]) and row[4] == pytest.approx(
        m["tpot_ms"]["p99"])


def test_history_shows_token_figures(runs):
    root, _, _ = runs
    rows = list(reversed(list_runs(root)))
    table = history.build(rows)
    assert table.headers[4:7] == ("tokens/s", "TTFT p99 ms", "TPOT p99 ms")
    assert all(r[5] is not None and r[6] is not None for r in table.rows)


def test_qualify_judges_llm_accuracy_by_fidelity_and_token_bounds(runs):
    _, real, checked = runs
    acc = Requirement("accuracy", "r", 0.99)
    assert not qualify.judge(acc, load_result(real)).passed
    v = qualify.judge(acc, load_result(checked))
    assert v.passed and "judged by fidelity" in v.evidence
    doc = load_result(checked)
    ttft = doc["metrics"]["ttft_ms"]["p50"]
    assert qualify.judge(Requirement("ttft", "r", ttft * 2, 50), doc).passed
    assert not qualify.judge(Requirement("ttft", "r", ttft / 2, 50), doc).passed
    assert qualify.judge(Requirement("tokens", "r", 1.0), doc).passed


def test_report_has_a_token_timing_section(runs):
    _, _, checked = runs
    page = report.build(load_result(checked), checked)
    assert "Token timing" in page and "TTFT ms" in page and "accuracy not applicable" in page


def test_the_runs_frame_carries_token_figures(runs):
    pytest.importorskip("pandas")  # the analysis extra
    from hwbench.analysis.frame import runs_frame

    root, _, checked = runs
    f = runs_frame(root)
    row = f[f["run_id"] == load_result(checked)["run_id"]].iloc[0]
    m = load_result(checked)["metrics"]
    assert row["ttft_p99_ms"] == pytest.approx(m["ttft_ms"]["p99"])
    assert row["tokens_per_second"] == pytest.approx(m["tokens_per_second"])
    assert bool(row["fidelity_passed"]) is True
