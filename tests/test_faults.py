"""A backend fault or Ctrl-C mid-run: the run stops cleanly, is marked invalid with the reason,
and everything measured so far is written."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np

from cli_helpers import FAST, Watched, hwbench_process, run_json
from hwbench import backends
from hwbench.backends.cpu import CpuBackend


class FailingCpu(CpuBackend):
    """The real onnxruntime backend, which raises on its 40th batch."""

    name = "failing-cpu"

    def load(self, model):
        super().load(model)
        self.batches = 0

    def run(self, batch):
        self.batches += 1
        if self.batches == 40:
            raise RuntimeError("simulated device fault")
        return super().run(batch)


def test_backend_fault_mid_run_is_written_invalid(capsys, out_dir, monkeypatch):
    real = backends.backend_class
    monkeypatch.setattr(backends, "backend_class",
                        lambda name: FailingCpu if name == "failing-cpu" else real(name))
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "failing-cpu",
                         "--scenario", "single-stream", *FAST, "--warmup", "0")
    assert code == 3 and not doc["valid"]
    assert any("RuntimeError: simulated device fault" in r for r in doc["invalid_reasons"])
    assert doc["metrics"]["completed_samples"] == 39
    cols = np.load(out_dir / doc["run_id"] / "samples.npz")
    assert (cols["complete_ns"] >= 0).sum() == 39


def test_ctrl_c_writes_an_interrupted_run(tmp_path: Path):
    out = tmp_path / "runs"
    run = Watched(hwbench_process("run", "--json", "--workload", "tiny", "--backend", "cpu",
                                  "--scenario", "single-stream", "--duration", "60",
                                  "--warmup", "0", "--output", str(out)))
    run.wait_for("performance [")  # the first progress line: it has measured for a while
    run.proc.send_signal(signal.SIGINT)
    stdout, stderr = run.finish(60)
    assert run.proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    doc = json.loads(stdout)
    assert doc["interrupted"] and not doc["valid"]
    assert any("Ctrl-C" in r for r in doc["invalid_reasons"])
    assert doc["metrics"]["completed_samples"] > 0
    assert (out / doc["run_id"] / "samples.npz").is_file()
