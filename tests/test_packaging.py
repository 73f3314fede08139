"""The installed package: backends and scenarios live inside hwbench; README commands hold."""
from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

import hwbench

ROOT = Path(__file__).resolve().parents[1]


def test_backends_and_scenarios_are_inside_the_package():
    pkg = Path(hwbench.__file__).parent
    assert (pkg / "backends" / "cpu.py").is_file()
    assert resources.files("hwbench.scenarios").joinpath("server.toml").is_file()
    assert importlib.util.find_spec("backends") is None
    assert importlib.util.find_spec("scenarios") is None


def test_extension_is_private_and_api_small():
    assert importlib.util.find_spec("hwbench._loadgen") is not None
    assert set(hwbench.__all__) == {"RunConfig", "HwbenchError", "UsageError", "load_result",
                                    "run", "__version__"}


def test_readme_first_lines_give_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()[:10]
    text = "\n".join(lines)
    assert "pip install . && hwbench run" in text
    assert "pip install '.[test]' && pytest" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install '.[test]' && pytest" in ci


def test_python_api_runs_a_config(tmp_path):
    out = hwbench.run(hwbench.RunConfig(workload="tiny", backend="null", scenario="single-stream",
                                        duration_s=0.2, warmup_s=0.0, min_query_count=70,
                                        output=str(tmp_path)))
    assert out.exit_code == 0 and out.run_dir.parent == tmp_path
    assert hwbench.load_result(out.run_dir)["run_id"] == out.result["run_id"]


def _readme_run_commands() -> list[list[str]]:
    cmds = []
    for line in (ROOT / "README.md").read_text().splitlines():
        for part in line.split("&&"):
            text = part.strip()
            # Examples on the user's own files (--dataset) run in test_imagenet.py, on a
            # miniature folder made there.
            if text.startswith("hwbench run") and "[" not in text and "--dataset" not in text:
                cmds.append(text.split("#")[0].split(">")[0].split()[1:])
    return cmds


def test_readme_examples_run(capsys, tmp_path):
    """Every `hwbench run` example in the README completes (the main job included)."""
    from hwbench.cli import main

    cmds = _readme_run_commands()
    assert ["run"] in cmds and len(cmds) >= 4
    for args in cmds:
        code = main([*args, "--quiet", "--output", str(tmp_path)])
        assert code in (0, 3), (args, capsys.readouterr().err)
    capsys.readouterr()
