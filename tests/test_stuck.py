"""A backend call that never returns: the sample timeout and Ctrl-C still end the command, the
stuck call is abandoned and named, and every result so far is written (issue 12, item 2).

Each test runs the real ``hwbench`` command in a subprocess: a stuck call leaves a thread behind,
which must end with its process, and signals need a process of their own. The stuck backend is
the ``stuck`` plugin (tests/plugins/hwbench_stuck.py), loaded through the ``hwbench.backends``
entry point as any third-party backend is. Every wait has a subprocess timeout, so a regression
fails instead of hanging CI; the only timed assertion is that bound ("ends instead of hanging":
before the fix these commands ran for minutes or forever).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import Watched, hwbench_process

PLUGINS = Path(__file__).with_name("plugins")
ENDS_WITHIN_S = 15  # generous: a stuck call must end the command, not hang it
STALLS = ["sleep", "python", "native"]


def _process(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(PLUGINS), os.environ.get("PYTHONPATH")) if p))
    return hwbench_process(*args, env=env)


def _finish(proc: subprocess.Popen, timeout: float = ENDS_WITHIN_S) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the command was still running after {timeout} s; stderr:\n{err[-2000:]}")


def _stuck_run(out: Path, stall: str, *args: str) -> subprocess.Popen:
    return _process("run", "--json", "--workload", "tiny", "--backend", "stuck",
                    "--backend-opt", f"stall={stall}", "--output", str(out), *args)


def _abandoned(doc: dict) -> list[str]:
    return [r for r in doc["invalid_reasons"] if "abandoned" in r]


def _written(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]


@pytest.mark.parametrize("stall", STALLS)
def test_a_stuck_inline_call_ends_the_run_at_the_sample_timeout(tmp_path, stall):
    """One worker, no batch timeout: the call runs on the load generator's issue thread."""
    out = tmp_path / "runs"
    proc = _stuck_run(out, stall, "--scenario", "single-stream", "--sample-timeout", "1",
                      "--duration", "30", "--warmup", "0")
    stdout, stderr = _finish(proc)
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    doc = json.loads(stdout)
    assert not doc["valid"] and not doc["interrupted"]
    assert any("sample timeout" in r for r in doc["invalid_reasons"]), doc["invalid_reasons"]
    assert _abandoned(doc), doc["invalid_reasons"]
    assert doc["metrics"]["completed_samples"] == 5  # the calls before the stuck one
    assert [d["run_id"] for d in _written(out)] == [doc["run_id"]]


def test_the_issue_command_with_a_long_native_call_ends_at_the_timeout(tmp_path):
    """The command of the issue, with the null backend: a 15 s call and a 1 s sample timeout
    (it ran for more than 60 s before the fix)."""
    out = tmp_path / "runs"
    proc = _process("run", "--json", "--backend", "null", "--backend-opt",
                    "service_time_us=15000000", "--workload", "tiny", "--scenario",
                    "single-stream", "--sample-timeout", "1", "--duration", "1",
                    "--output", str(out))
    stdout, stderr = _finish(proc, timeout=12)
    assert proc.returncode == 3, stderr
    doc = json.loads(stdout)
    assert _abandoned(doc) and not doc["valid"], doc["invalid_reasons"]


@pytest.mark.parametrize("stall", ["sleep", "native"])
def test_a_stuck_worker_call_ends_the_run_at_the_sample_timeout(tmp_path, stall):
    """Two workers: the run ended at the timeout before the fix, then closing the workers
    waited for the stuck call without a bound."""
    out = tmp_path / "runs"
    proc = _stuck_run(out, stall, "--scenario", "server", "--target-qps", "50", "--instances",
                      "2", "--sample-timeout", "1", "--duration", "30", "--warmup", "0")
    stdout, stderr = _finish(proc)
    assert proc.returncode == 3, stderr
    doc = json.loads(stdout)
    assert any("worker" in r for r in _abandoned(doc)), doc["invalid_reasons"]
    assert (out / doc["run_id"] / "result.json").is_file()


@pytest.mark.parametrize("stall", STALLS)
def test_ctrl_c_ends_a_run_whose_call_is_stuck(tmp_path, stall):
    out = tmp_path / "runs"
    run = Watched(_stuck_run(out, stall, "--scenario", "single-stream", "--duration", "60",
                             "--warmup", "0"))  # the default 60 s sample timeout never fires
    run.wait_for("stuck: stalling")
    proc = run.proc
    proc.send_signal(signal.SIGINT)
    stdout, stderr = run.finish(ENDS_WITHIN_S)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    doc = json.loads(stdout)
    assert doc["interrupted"] and not doc["valid"]
    assert any("Ctrl-C" in r for r in doc["invalid_reasons"])
    assert _abandoned(doc), doc["invalid_reasons"]
    assert (out / doc["run_id"] / "result.json").is_file()


def test_a_second_ctrl_c_exits_at_once(tmp_path):
    """A call stuck in native code on the main thread (the backend's load) never lets Python
    see the first Ctrl-C; the second ends the process anyway, with 130 and no traceback."""
    run = Watched(_stuck_run(tmp_path / "runs", "native", "--backend-opt", "where=load",
                             "--scenario", "single-stream"))
    run.wait_for("stuck: stalling in load")
    proc = run.proc
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None  # the first Ctrl-C cannot reach a call that never returns
    proc.send_signal(signal.SIGINT)
    _, stderr = run.finish(5)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr


def test_repeat_stops_after_the_run_whose_call_got_stuck(tmp_path):
    out = tmp_path / "runs"
    proc = _stuck_run(out, "sleep", "--scenario", "single-stream", "--sample-timeout", "1",
                      "--duration", "30", "--warmup", "0", "--repeat", "3")
    stdout, stderr = _finish(proc)
    assert proc.returncode == 3, stderr
    written = _written(out)
    assert len(written) == 1 and _abandoned(written[0])
    assert json.loads(stdout)["run_id"] == written[0]["run_id"]


def test_find_peak_stops_at_the_step_whose_call_got_stuck(tmp_path):
    out = tmp_path / "runs"
    proc = _stuck_run(out, "sleep", "--backend-opt", "stall_after=300", "--scenario", "server",
                      "--mode", "find-peak", "--target-qps", "100", "--sample-timeout", "1",
                      "--duration", "1", "--warmup", "0")
    stdout, stderr = _finish(proc, timeout=30)
    assert proc.returncode == 3, stderr
    doc = json.loads(stdout)
    assert _abandoned(doc), doc["invalid_reasons"]
    assert doc["find_peak"]["steps"]  # the steps measured before it are kept
    assert len(_written(out)) == 1


def test_qualify_stops_after_writing_the_run_whose_call_got_stuck(tmp_path):
    out = tmp_path / "runs"
    profile = tmp_path / "stuck.toml"
    profile.write_text("""
name = "stuck"
workload = "tiny"
backend = "stuck"
[backend_options]
stall = "sleep"
stall_after = "5"
[runs.first]
scenario = "single-stream"
duration_s = 30
warmup_s = 0
sample_timeout_s = 1
[runs.second]
scenario = "single-stream"
duration_s = 0.3
[[requirements]]
kind = "valid"
run = "first"
""")
    proc = _process("qualify", "--profile", str(profile), "--output", str(out), "--junit",
                    str(tmp_path / "j.xml"))
    stdout, stderr = _finish(proc)
    assert proc.returncode == 3, stdout + stderr
    assert "stuck" in stdout
    written = _written(out)
    assert len(written) == 1 and _abandoned(written[0])
