"""bench/gpu_check.py, the one command an NVIDIA machine runs, dry-run on the CPU so it cannot rot:
the same steps (the torch backend in every scenario at fp32 and bf16, the bare loops, the
report, the llm workload in bf16 on its tiny size), the same four files. The GPU itself is the only part not exercised here."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("torch")


def test_the_cpu_dry_run_writes_exactly_the_four_files(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), str(out),
                        "--device", "cpu", "--installed", "--workload", "tiny",
                        "--duration", "0.3"], capture_output=True, text=True, timeout=600)
    assert sorted(f.name for f in out.iterdir()) == sorted(
        ["summary.md", "summary.json", "report.html", "results.tar.gz"])
    s = json.loads((out / "summary.json").read_text())
    assert p.returncode == 0, (s["steps"], p.stderr[-2000:])
    assert s["steps"]["build_and_one_run"]["passed"]
    assert set(s["runs"]) == {f"{sc}/{dt}" for sc in ("offline", "single-stream",
                                                       "multi-stream", "server")
                              for dt in ("fp32", "bf16")}
    assert all(r["valid"] for r in s["runs"].values())
    assert s["runs"]["offline/bf16"]["precision"] == "bf16"
    assert s["runs"]["offline/bf16"]["fidelity"] == "bf16"
    assert set(s["ratios"]) == {"offline/fp32", "offline/bf16", "single-stream-p90/fp32",
                                "single-stream-p90/bf16"}
    assert all(v > 0 for v in s["ratios"].values())
    # No GPU here: its power is reported missing with a reason, never a number.
    for r in s["runs"].values():
        for g in r["gpu_power"]:
            assert g["energy_per_sample_j"] is None
    md = (out / "summary.md").read_text()
    assert "| build_and_one_run | PASS |" in md and "harness / bare torch loop" in md
    assert "<html" in (out / "report.html").read_text().lower()
    # The llm step (tiny here, the 1B on a GPU): both runs, fidelity passed, token figures.
    assert s["steps"]["llm"]["passed"], s["steps"]["llm"]
    assert set(s["llm"]) == {"llm-tiny/offline/bf16", "llm-tiny/server/bf16"}
    for r in s["llm"].values():
        assert r["precision"] == "bf16" and r["fidelity"] == "bf16" and r["tokens_per_s"] > 0
        assert r["ttft_ms"]["p99"] > 0 and r["tpot_ms"]["p99"] > 0
    assert "| llm-tiny/server/bf16 |" in md
    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
    assert sum(n.endswith("/result.json") for n in names) == 11  # the smoke run and ten more
