"""hwbench audit of generative runs (MLPerf's TEST06): the prefix caching and first token checks
catch the null backend's generative cheats (real code paths: the compiled pacer reporting to the
compiled load generator, not mocks), and pass an honest null backend and the torch engine."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import cli
from hwbench.errors import EXIT_AUDIT_FAIL
from hwbench.results.store import load_result

# SingleStream: TTFT is prefill_us, whatever the seeds (a Server run this short is too short for
# early stopping to judge p99 TTFT).
LLM_NULL = ["--workload", "llm", "--backend", "null", "--no-power", "--quiet",
            "--telemetry-hz", "0", "--scenario", "single-stream",
            "--duration", "0.3", "--warmup", "0", "--min-queries", "64",
            "--backend-opt", "prefill_us=20000", "--backend-opt", "token_us=500",
            "--backend-opt", "output_tokens=4"]


def _audit(capsys, out, *args):
    code, stdout, err = cli(capsys, "audit", "--json", "--output", str(out), *args)
    assert stdout, err
    doc = json.loads(stdout)
    return code, doc, {c["name"].split(" ")[0]: c for c in doc["audit"]["checks"]}


def test_an_honest_null_backend_passes_the_llm_audit(capsys, tmp_path):
    code, doc, checks = _audit(capsys, tmp_path, *LLM_NULL)
    assert code == 0, (doc["invalid_reasons"], doc["audit"])
    assert set(checks) == {"prefix", "first", "alternate"}
    e = checks["prefix"]["evidence"]
    assert checks["prefix"]["passed"] and len(e["ratios"]) >= 3, e
    assert 0.9 <= e["median_ttft_ratio"] <= 1.1, e
    f = checks["first"]["evidence"]
    assert checks["first"]["passed"] and f["requests_checked"] >= 16, f
    assert checks["alternate"]["evidence"]["metric"] == "p90_ttft_ms"
    assert {c["name"] for c in doc["audit"]["not_applicable"]} == {
        "caching (TEST04)", "sampled accuracy (TEST01)"}
    # The per-request column the check read is kept with the run's samples.
    cols = np.load(tmp_path / doc["run_id"] / "samples.npz")
    assert (cols["first_token_value"][cols["token_count"] > 0] == 0).all()
    assert load_result(tmp_path / doc["run_id"])["audit"]["passed"] is True


def test_a_prefix_cache_is_caught_by_the_prefix_caching_check(capsys, tmp_path):
    code, doc, checks = _audit(capsys, tmp_path, *LLM_NULL, "--backend-opt", "cheat=prefix_cache")
    assert code == EXIT_AUDIT_FAIL and not doc["audit"]["passed"]
    e = checks["prefix"]["evidence"]
    # Fresh prompts wait the full prefill, repeats a tenth of it.
    assert not checks["prefix"]["passed"] and e["median_ttft_ratio"] < 0.5, e
    assert checks["first"]["passed"]  # its tokens are honest: only the prefix check sees it


def test_an_early_first_token_is_caught_by_the_first_token_check(capsys, tmp_path):
    code, doc, checks = _audit(capsys, tmp_path, *LLM_NULL,
                               "--backend-opt", "cheat=early_first_token")
    assert code == EXIT_AUDIT_FAIL
    f = checks["first"]["evidence"]
    assert not checks["first"]["passed"], f
    assert f["first_token_mismatched"] == f["requests_checked"] >= 16, f
    assert f["count_mismatched"] == 0 and f["examples"][0]["reported"] == 1
    assert doc["metrics"]["ttft_ms"]["p50"] < 5.0  # what the cheat bought: no prefill wait


@pytest.mark.parametrize("cheat", ["cache", "prefix_cache"])
def test_a_cheat_of_the_other_kind_of_workload_is_refused(capsys, tmp_path, cheat):
    workload = ["--workload", "digits"] if cheat == "prefix_cache" else ["--workload", "llm"]
    code, out, err = cli(capsys, "audit", "--output", str(tmp_path), *workload,
                         "--backend", "null", "--backend-opt", f"cheat={cheat}", "--no-power")
    assert code == 2 and "does not apply to this workload" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_torch_engine_passes_the_first_token_check(capsys, tmp_path):
    """The tiny model on one thread: every request's first token event carries its output's
    first token, and its count the output's length."""
    pytest.importorskip("torch")
    code, doc, checks = _audit(capsys, tmp_path, "--workload", "llm", "--backend", "torch",
                               "--backend-opt", "threads=1", "--no-power", "--quiet",
                               "--telemetry-hz", "0", "--scenario", "single-stream",
                               "--duration", "0.3", "--warmup", "0", "--min-queries", "6")
    f = checks["first"]["evidence"]
    assert checks["first"]["passed"] and f["requests_checked"] >= 6, f
    assert f["first_token_not_reported"] == 0
    assert "ratios" in checks["prefix"]["evidence"], checks["prefix"]


def test_audits_before_schema_13_had_every_check_apply(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({
        "schema_version": 12, "run_id": "r", "audit": {"passed": True, "checks": []}}))
    doc = load_result(tmp_path)
    assert doc["audit"]["not_applicable"] == [] and doc["audit"]["passed"] is True
