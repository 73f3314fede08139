"""Bad input: one clear line naming the fix, exit status 2, no traceback."""
from __future__ import annotations

import pytest

from cli_helpers import FAST, cli


def _one_line_error(code: int, err: str) -> str:
    assert code == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1, err
    assert lines[0].startswith("hwbench: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("args,expect", [
    (["--workload", "nope"], "unknown workload 'nope'"),
    (["--scenario", "nope"], "unknown scenario 'nope'"),
    (["--backend", "nope"], "unknown backend 'nope'"),
    (["--scenario", "missing.toml"], "not found"),
    (["--duration", "-1"], "--duration must be >= 0"),
    (["--scenario", "server", "--target-qps", "0"], "--target-qps must be > 0"),
    (["--scenario", "server", "--target-qps", "-5"], "--target-qps must be > 0"),
    (["--latency-bound-ms", "nan"], "--latency-bound-ms must be > 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--mode", "find-peak", "--scenario", "offline"], "use --scenario server"),
    (["--backend-opt", "threads"], "write it as KEY=VALUE"),
    (["--backend-opt", "nosuch=1"], "unknown option 'nosuch'"),
    (["--backend-opt", "threads=many"], "not a valid int"),
    (["--backend-opt", "graph_optimization=max"], "must be one of"),
    (["--model", "/nonexistent/model.onnx"], "not found"),
    (["--duration", "soon"], "invalid float value"),
    (["--mode", "fast"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, out_dir, args, expect):
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--output", str(out_dir), *args)
    assert expect in _one_line_error(code, err)
    assert not out_dir.exists()  # nothing was measured, nothing written


def test_corrupt_model_file(capsys, out_dir, tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf\xff\xfe" * 10)
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--model", str(bad),
                         "--output", str(out_dir))
    assert "not a readable ONNX model" in _one_line_error(code, err)


def test_model_for_another_workload(capsys, out_dir, tmp_path):
    import onnx

    from hwbench.workloads.graphs import mlp

    path = tmp_path / "wrong.onnx"
    onnx.save(mlp(1, 32, 8, 4), str(path))
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--model", str(path),
                         "--output", str(out_dir))
    assert "does not match" in _one_line_error(code, err)


def test_malformed_scenario_file(capsys, out_dir, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nloadgen_scenario = "SingleStream"\nmin_duration_s = [\n')
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--scenario", str(path),
                         "--output", str(out_dir))
    assert "invalid TOML" in _one_line_error(code, err)


def test_show_on_a_directory_without_a_result(capsys, tmp_path):
    code, out, err = cli(capsys, "show", str(tmp_path))
    assert "no result.json" in _one_line_error(code, err)


def test_unusable_backend_says_how_to_install(capsys, out_dir, monkeypatch):
    from hwbench.backends import cpu

    monkeypatch.setattr(cpu.CpuBackend, "availability", classmethod(
        lambda cls: cpu.Availability(False, "no CPU provider", "install it with: pip install x")))
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--output", str(out_dir), *FAST)
    line = _one_line_error(code, err)
    assert "not usable here: no CPU provider" in line and "pip install" in line
