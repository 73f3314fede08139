"""hwbench fleet: sweeps parsed at the edge, and run for real on Ray: an embedded local instance
(the README's example), and a local Ray cluster of simulated nodes (ray.cluster_utils.Cluster:
each node is a real raylet with its own worker processes; they share this machine, which is
why a node's name, not its hostname, tells their runs apart)."""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import cli, hwbench_process
from hwbench.errors import UsageError
from hwbench.fleet import build, sweep

ROOT = Path(__file__).resolve().parents[1]


def _readme_fleet_block() -> tuple[str, list[list[str]]]:
    """The README's fleet example: the sweep file (between the TOML heredoc marks), and the
    hwbench commands after it."""
    text = (ROOT / "README.md").read_text().split("## Fleet runs")[1].split("\n## ")[0]
    toml = text.split("<<'TOML'\n")[1].split("    TOML\n")[0]
    example = "\n".join(line[4:] for line in toml.splitlines()) + "\n"
    commands = [line.split()[1:] for line in text.splitlines()
                if line.startswith("    hwbench ")]
    return example, commands


EXAMPLE, README_COMMANDS = _readme_fleet_block()
SMALL = 80 * 1024 * 1024  # object store per simulated node: run directories are small


def _write(tmp_path: Path, text: str, name: str = "sweep.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- the sweep file (no Ray) -------------------------------------------------------------------

def test_the_example_expands_into_two_runs_with_run_defaults(tmp_path):
    s, _ = sweep.load(_write(tmp_path, EXAMPLE))
    assert s.name == "two-threads" and [r.key for r in s.runs] == ["r01", "r02"]
    assert [r.config.backend_options for r in s.runs] == [(("threads", "1"),),
                                                         (("threads", "2"),)]
    c = s.runs[0].config
    assert (c.workload, c.scenario, c.mode, c.duration_s) == ("digits", "offline", "both", 2)
    assert c.batch_size == 1 and c.precision == "fp32"  # RunConfig's defaults, as a profile's
    assert s.runs[0].system.name == sweep.ANY_SYSTEM and s.runs[0].system.matches({}, {})


def test_matrix_tables_are_products_and_their_union_crosses_the_systems():
    s = sweep.parse({"base": {"workload": "tiny"},
                     "matrix": [{"backend": ["null", "cpu"], "batch_size": [1, 4]},
                                {"backend": "cpu", "precision": ["fp16"]}],
                     "systems": [{"name": "a", "labels": {"hwbench-node": "a"}},
                                 {"name": "gpu", "resources": {"GPU": 1}}]})
    assert len(s.runs) == (4 + 1) * 2
    assert {(r.config.backend, r.config.batch_size, r.config.precision) for r in s.runs} == {
        ("null", 1, "fp32"), ("null", 4, "fp32"), ("cpu", 1, "fp32"), ("cpu", 4, "fp32"),
        ("cpu", 1, "fp16")}
    gpu = s.systems[1]
    assert gpu.matches({}, {"GPU": 2.0}) and not gpu.matches({}, {"CPU": 8.0})
    assert s.systems[0].matches({"hwbench-node": "a"}, {})
    assert not s.systems[0].matches({"hwbench-node": "b"}, {})


@pytest.mark.parametrize("text, words", [
    ("[base]\nworkload = 'digits'\nthreads = 2\n", "unknown keys ['threads']"),
    ("[base]\noutput = 'x'\n", "unknown keys ['output']"),
    ("[[matrix]]\nbatch_size = [0]\n", "matrix 1 (batch_size=0): --batch-size must be >= 1"),
    ("[[matrix]]\nbackend = []\n", "backend = []: give at least one value"),
    ("[[matrix]]\nworkload = [3]\n", "workload = 3: give a str"),
    ("[[systems]]\nname = 'x'\nlabels = {a = 1}\n", "labels must be a table of strings"),
    ("matrix = 'x'\n", "matrix 1: give a table"),
    ("[base\n", "invalid TOML"),
])
def test_a_bad_sweep_is_one_line_naming_the_fix(tmp_path, capsys, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(UsageError, match=None) as info:
        sweep.load(path)
    assert words in str(info.value) and path in str(info.value)
    code, out, err = cli(capsys, "fleet", "run", path, "--output", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1 and words in err
    assert not (tmp_path / "out").exists()  # nothing run, nothing written


def test_without_ray_fleet_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    """A fake: Ray is installed here (the test extra), so its import is made to fail as it
    does where the fleet extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)
    code, out, err = cli(capsys, "fleet", "run", _write(tmp_path, EXAMPLE),
                         "--output", str(tmp_path / "out"))
    assert code == 2 and "pip install 'hwbench[fleet]'" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_ray_address_where_nothing_listens_is_refused_at_once(tmp_path, capsys):
    import socket
    with socket.socket() as s:  # a port that was free a moment ago, and nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address, words in ((f"127.0.0.1:{port}", "nothing answers there"),
                           ("headnode", "write it as HOST:PORT")):
        code, out, err = cli(capsys, "fleet", "run", _write(tmp_path, EXAMPLE), "--ray", address,
                             "--output", str(tmp_path / "out"))
        assert code == 2 and words in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_status_without_a_sweep_names_the_fix(tmp_path, capsys):
    code, out, err = cli(capsys, "fleet", "status", "--output", str(tmp_path))
    assert code == 2 and "hwbench fleet run" in err


def test_a_node_of_another_version_or_build_is_refused():
    here = build.identity()
    assert build.mismatch(here, dict(here)) is None
    assert "install the same version" in build.mismatch(here, dict(here, version="0.0.1"))
    assert "same version, different code" in build.mismatch(here, dict(here, build="0" * 16))


# -- on Ray ---------------------------------------------------------------------------------

def test_the_readme_example_runs_on_an_embedded_ray_and_exports_its_two_runs(
        tmp_path, capsys, monkeypatch):
    """The README's fleet commands, as written, in a private folder. No --ray: hwbench starts a
    local Ray instance on this machine, its one node named after the host, and stops it when
    the sweep is done."""
    pytest.importorskip("pandas")
    pytest.importorskip("ray")
    assert "backend_options = [{threads = \"1\"}, {threads = \"2\"}]" in EXAMPLE
    assert [c[0] for c in README_COMMANDS] == ["fleet", "export"]
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, EXAMPLE, "two-threads.toml")
    code, text, err = cli(capsys, *README_COMMANDS[0])
    assert code in (0, 3), err  # 3: a run invalid for this busy machine's load alone
    assert err.count("started on node") == 2 and err.count(": done on node") == 2
    assert "2 done" in text
    code, csv, err = cli(capsys, *README_COMMANDS[1])
    lines = csv.strip().splitlines()
    assert code == 0 and len(lines) == 3, csv
    assert lines[0].split(",").count("node") == 1 and '""threads"": ""2""' in csv
    import ray
    assert not ray.is_initialized()  # the embedded instance was stopped


@pytest.fixture(scope="module")
def ray_cluster():
    """A head node without hwbench_node (it takes no run) and two hwbench nodes, a and b."""
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    c = cluster_utils.Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 0, "object_store_memory": SMALL, "include_dashboard": False})
    nodes = {name: _add_node(c, name) for name in ("a", "b")}
    yield c, nodes
    c.shutdown()


def _add_node(c, name: str):
    return c.add_node(num_cpus=1, resources={"hwbench_node": 1}, object_store_memory=SMALL,
                      labels={"hwbench-node": name})


FOUR = """\
name = "four"
[base]
workload = "digits"
scenario = "offline"
duration_s = 0.5
no_power = true
[[matrix]]
backend = ["cpu"]
backend_options = [{threads = "1"}, {threads = "2"}]
[[systems]]
name = "a"
labels = {"hwbench-node" = "a"}
[[systems]]
name = "b"
labels = {"hwbench-node" = "b"}
"""


def _manifest(out: Path) -> dict:
    found = list((out / "fleet").glob("*.json"))
    return json.loads(found[0].read_text()) if len(found) == 1 else {}


def _wait_for(predicate, timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


def test_a_node_lost_mid_sweep_is_recorded_and_resume_completes_it(ray_cluster, tmp_path,
                                                                    capsys):
    """Four runs over nodes a and b; b is killed while its first run runs: that run and the one
    still waiting for b are lost (exit 7), never re-run by Ray; a new node b joins, resume runs
    them there, and the four runs land in one index that compare reads side by side."""
    c, nodes = ray_cluster
    out = tmp_path / "out"
    proc = hwbench_process("fleet", "run", _write(tmp_path, FOUR), "--ray", c.address,
                           "--output", str(out))
    on_b = lambda: any(r["node"] == "b" and r["state"] == "running"  # noqa: E731
                       for r in _manifest(out).get("runs", []))
    _wait_for(on_b)
    c.remove_node(nodes["b"])
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 7, stderr
    runs = {r["key"]: r for r in _manifest(out)["runs"]}
    assert [runs[k]["state"] for k in ("r01", "r03")] == ["done", "done"]
    assert [runs[k]["state"] for k in ("r02", "r04")] == ["lost", "lost"]
    assert "left the cluster" in runs["r02"]["reason"]
    assert "no ready node matches system b" in runs["r04"]["reason"]
    assert "LOST" in stderr and "lost" in stdout
    code, status, _ = cli(capsys, "fleet", "status", "--output", str(out))
    assert code == 0 and "2 done, 2 lost" in status and "no driver running" in status

    nodes["b"] = _add_node(c, "b")
    code, text, err = cli(capsys, "fleet", "resume", "--output", str(out), "--ray", c.address)
    assert code in (0, 3), err
    runs = {r["key"]: r for r in _manifest(out)["runs"]}
    assert all(r["state"] == "done" for r in runs.values())
    assert [runs[k]["node"] for k in ("r01", "r02", "r03", "r04")] == ["a", "b", "a", "b"]
    assert [e["state"] for e in runs["r02"]["history"]] == [
        "running", "lost", "pending", "running", "done"]
    from hwbench.results.store import list_runs
    rows = list_runs(out)
    assert len(rows) == 4 and sorted(r["node"] for r in rows) == ["a", "a", "b", "b"]
    doc = json.loads((out / runs["r02"]["run_id"] / "result.json").read_text())
    assert doc["system"]["node"]["name"] == "b" and doc["system"]["hostname"]
    code, table, err = cli(capsys, "compare", "--root", str(out), "--force")
    assert code == 0, err
    for label in ("cpu[threads=1]@a", "cpu[threads=1]@b", "cpu[threads=2]@a",
                  "cpu[threads=2]@b"):
        assert label in table


def test_a_run_sees_the_nodes_environment_not_the_ray_workers(ray_cluster):
    """Ray forces OMP_NUM_THREADS=1 in its workers (and CUDA_VISIBLE_DEVICES on GPU nodes); a
    run's process gets the environment the node was started with (here: this test's)."""
    ray = pytest.importorskip("ray")
    from hwbench.fleet import cluster, task

    c, _ = ray_cluster
    cluster.connect(c.address)  # as the driver joins: from a neutral directory
    try:
        node = next(n for n in cluster.hwbench_nodes() if n.name == "a")
        probe = lambda: (os.environ.get("OMP_NUM_THREADS"),  # noqa: E731
                         task.node_environment().get("OMP_NUM_THREADS"))
        worker, run = ray.get(cluster.on_node(probe, node).remote(), timeout=120)
    finally:
        ray.shutdown()
    if "OMP_NUM_THREADS" not in os.environ:
        assert worker == "1"  # what Ray does, and why the run does not inherit it
    assert run == os.environ.get("OMP_NUM_THREADS")


def test_nodes_of_another_build_get_no_work(ray_cluster, tmp_path, capsys, monkeypatch):
    """A fake on the driver's side only: the nodes here share this install, so the driver is
    made to see itself as another build; each node answers with its real build, from a task
    on that node, and both are refused before any run is placed."""
    c, _ = ray_cluster
    real = build.identity()
    monkeypatch.setattr(build, "identity", lambda: dict(real, build="f" * 16))
    out = tmp_path / "out"
    code, text, err = cli(capsys, "fleet", "run", _write(tmp_path, FOUR), "--ray", c.address,
                          "--output", str(out))
    assert code == 2 and "node a: REJECTED" in err and "node b: REJECTED" in err
    assert "same version, different code" in err.splitlines()[-1]
    assert "started on node" not in err and not list(out.glob("2*"))
    assert {r["state"] for r in _manifest(out)["runs"]} == {"pending"}


def test_ctrl_c_cancels_the_running_runs_and_keeps_what_they_measured(ray_cluster, tmp_path):
    """SIGINT to the driver: each running run is interrupted on its node, written as such and
    brought home; nothing is left pending behind the user's back (exit 130), and resume
    would run them again."""
    c, _ = ray_cluster
    out = tmp_path / "out"
    long = FOUR.replace("duration_s = 0.5", "duration_s = 60\nmin_query_count = 1")
    proc = hwbench_process("fleet", "run", _write(tmp_path, long), "--ray", c.address,
                           "--output", str(out))
    running = lambda: sum(r["state"] == "running"  # noqa: E731
                          for r in _manifest(out).get("runs", [])) == 2
    _wait_for(running)
    time.sleep(15)  # into the measured window of 60 s, as far as this machine's load allows
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    runs = _manifest(out)["runs"]
    started = [r for r in runs if r["history"]]
    assert len(started) == 2 and all(r["state"] == "pending" for r in runs if not r["history"])
    # a run still starting when Ctrl-C came is pending again: nothing was measured
    assert {r["state"] for r in started} <= {"interrupted", "pending"}, [r["reason"] for r in runs]
    assert any(r["state"] == "interrupted" for r in started)
    for r in started:
        if r["state"] == "interrupted":
            doc = json.loads((out / r["run_id"] / "result.json").read_text())
            assert doc["interrupted"] and not doc["valid"]


def test_status_reads_the_manifest_after_the_driver_died_and_resume_finishes(ray_cluster,
                                                                             tmp_path, capsys):
    """The driver is killed (SIGKILL: no chance to record anything): status still reads the
    sweep from its manifest, says its driver is gone, and resume runs what never finished."""
    c, _ = ray_cluster
    out = tmp_path / "out"
    two = FOUR.split("[[systems]]")[0]
    proc = hwbench_process("fleet", "run", _write(tmp_path, two), "--ray", c.address,
                           "--output", str(out))
    _wait_for(lambda: any(r["state"] == "running" for r in _manifest(out).get("runs", [])))
    proc.kill()
    proc.communicate(timeout=60)
    code, status, _ = cli(capsys, "fleet", "status", "--output", str(out))
    assert code == 0 and "driver gone: resume" in status and "no driver running" in status
    code, text, err = cli(capsys, "fleet", "resume", "--output", str(out), "--ray", c.address)
    assert code in (0, 3), err
    assert [r["state"] for r in _manifest(out)["runs"]] == ["done", "done"]
