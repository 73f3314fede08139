"""The result schema: readers migrate older versions and refuse newer ones."""
from __future__ import annotations

import json

import pytest

from hwbench.errors import UsageError
from hwbench.results.store import SCHEMA_VERSION, load_result


def _write(tmp_path, doc):
    (tmp_path / "result.json").write_text(json.dumps(doc))
    return tmp_path


def test_schema_1_is_migrated_with_unmeasured_sections_null(tmp_path):
    doc = load_result(_write(tmp_path, {"schema_version": 1, "run_id": "r", "valid": True}))
    assert doc["schema_version"] == SCHEMA_VERSION
    for key in ("fidelity", "robustness", "power", "telemetry", "repeat", "latency_windows",
                "audit", "drift", "pipeline"):
        assert doc[key] is None
    assert doc["run_id"] == "r" and doc["valid"] is True


def test_schema_3_metrics_gain_an_unknown_issue_spin(tmp_path):
    """Before schema 4 the issue thread's busy-waiting was not counted: null, never 0."""
    doc = load_result(_write(tmp_path, {"schema_version": 3, "run_id": "r",
                                        "metrics": {"samples_per_second": 5.0}}))
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["metrics"]["issue_spin_s"] is None and doc["metrics"]["samples_per_second"] == 5.0


def test_schema_6_accuracy_gains_an_unknown_reference_source(tmp_path):
    """Before schema 7 the accuracy did not say which reference its target came from: null."""
    acc = {"metric": "top1", "value": 0.8, "reference": 0.7646, "target": 0.757, "passed": True}
    doc = load_result(_write(tmp_path, {"schema_version": 6, "run_id": "r", "accuracy": acc}))
    assert doc["accuracy"]["reference_source"] is None and doc["accuracy"]["target_ratio"] is None
    assert doc["accuracy"]["value"] == 0.8 and doc["schema_version"] == SCHEMA_VERSION


def test_a_run_before_the_pipeline_section_ran_the_model_only_path(tmp_path):
    """Before --pipeline every run timed the model alone (MLPerf's path): pipeline is null."""
    doc = load_result(_write(tmp_path, {"schema_version": 7, "run_id": "r", "valid": True}))
    assert doc["pipeline"] is None and doc["schema_version"] == SCHEMA_VERSION


def test_schema_10_system_gains_a_null_node(tmp_path):
    """Before the node was recorded no run ran on a fleet node: null, the rest kept."""
    doc = load_result(_write(tmp_path, {"schema_version": 10, "run_id": "r",
                                        "system": {"hostname": "h", "fingerprint": "f"}}))
    assert doc["system"] == {"hostname": "h", "fingerprint": "f", "node": None}
    assert doc["schema_version"] == SCHEMA_VERSION


def test_schema_13_fidelity_compared_one_output(tmp_path):
    """Before schema 14 fidelity compared one float output: outputs is null, figures kept; a run
    without the section keeps it null."""
    fid = {"max_rel_error": 1e-7, "top1_agreement": 1.0, "passed": True}
    doc = load_result(_write(tmp_path, {"schema_version": 13, "run_id": "r", "fidelity": fid}))
    assert doc["fidelity"] == {**fid, "outputs": None} and doc["schema_version"] == 14
    doc = load_result(_write(tmp_path, {"schema_version": 13, "run_id": "r", "fidelity": None}))
    assert doc["fidelity"] is None


def test_newer_schema_is_refused_with_the_fix(tmp_path):
    with pytest.raises(UsageError, match="upgrade hwbench"):
        load_result(_write(tmp_path, {"schema_version": SCHEMA_VERSION + 1}))


def test_schema_2_fidelity_says_it_was_judged_with_fixed_bands(tmp_path):
    fidelity = {"max_rel_error": 4e-4, "observed_precision": "fp16", "passed": True}
    doc = load_result(_write(tmp_path, {"schema_version": 2, "run_id": "r", "fidelity": fidelity}))
    env = doc["fidelity"]["envelope"]
    assert env["method"].startswith("fixed bands") and env["bounds"]["fp16"] == 1.5e-3
    assert doc["fidelity"]["observed_precision"] == "fp16"  # the verdict as it was made
