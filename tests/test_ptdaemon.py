"""Wall power from a SPEC PTDaemon analyzer, simulated by the test on a real loopback TCP socket.

The simulated analyzer answers the commands MLCommons' power-dev sends to PTDaemon with planted
watts; there is no analyzer here, so a simulation is the only way to exercise the protocol."""
from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from cli_helpers import FAST, cli, run_json
from hwbench.telemetry.base import SourceUnavailable
from hwbench.telemetry.ptdaemon import PtdClient, PtdError, PtdSource

WATTS = 42.5


class SimulatedAnalyzer:
    """A PTDaemon-speaking server on 127.0.0.1: constant `watts`, and it can hang up after
    `drop_after` Watts replies, as an analyzer whose link fails mid-run."""

    def __init__(self, watts: float = WATTS, drop_after: int | None = None,
                 greeting: str = "Hello, PTDaemon here!") -> None:
        self.watts, self.drop_after, self.greeting = watts, drop_after, greeting
        self.commands: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _reply(self, cmd: str) -> str | None:
        if cmd == "Hello":
            return self.greeting
        if cmd == "Identify":
            return "Simulated WT310 analyzer"
        if cmd.startswith("Go,"):
            return "Starting untimed measurement"
        if cmd == "Watts":
            served = sum(c == "Watts" for c in self.commands)
            if self.drop_after is not None and served > self.drop_after:
                return None
            return f"Watts,{self.watts}"
        if cmd == "Stop":
            return "Stopping untimed measurement"
        return "Error: unknown command"

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            for raw in lines:
                cmd = raw.decode().rstrip("\r\n")
                self.commands.append(cmd)
                reply = self._reply(cmd)
                if reply is None:
                    return  # hang up
                conn.sendall(reply.encode() + b"\r\n")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def analyzer():
    made: list[SimulatedAnalyzer] = []

    def make(**kw) -> SimulatedAnalyzer:
        made.append(SimulatedAnalyzer(**kw))
        return made[-1]

    yield make
    for a in made:
        a.close()


def test_client_speaks_the_protocol(analyzer):
    a = analyzer()
    client = PtdClient("127.0.0.1", a.port)
    assert client.connect() == "Simulated WT310 analyzer"
    client.go(100, "hwbench")
    assert client.watts() == WATTS
    client.close()
    a.thread.join(timeout=5)
    assert a.commands == ["Hello", "Identify", "Go,100,0,hwbench", "Watts", "Stop"]


def test_not_ptdaemon_is_refused(analyzer):
    a = analyzer(greeting="SSH-2.0-OpenSSH")
    with pytest.raises(PtdError, match="is not PTDaemon"):
        PtdClient("127.0.0.1", a.port).connect()


def test_failed_open_closes_the_connection(analyzer):
    a = analyzer(greeting="SSH-2.0-OpenSSH")
    with pytest.raises(SourceUnavailable, match="is not PTDaemon"):
        PtdSource("127.0.0.1", a.port).open()
    a.thread.join(timeout=5)  # the analyzer's side ends when the client hangs up
    assert not a.thread.is_alive() and a.commands == ["Hello", "Stop"]


def test_run_reports_the_planted_energy_exactly(capsys, out_dir, analyzer):
    a = analyzer()
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "single-stream", *FAST, "--telemetry-hz", "50",
                         "--ptd", f"127.0.0.1:{a.port}")
    assert code == 0, doc["invalid_reasons"]
    m, p = doc["metrics"], doc["power"]
    wall = next(e for e in p["sources"] if e["name"] == "ptdaemon")
    assert wall["available"] and wall["valid"] and wall["kind"] == "wall" and wall["requested"]
    assert p["window_s"] == pytest.approx(m["duration_s"], abs=1e-9)
    energy = WATTS * p["window_s"]
    assert wall["energy_j"] == pytest.approx(energy, rel=1e-12)
    assert wall["avg_w"] == pytest.approx(WATTS, rel=1e-12)
    assert wall["energy_per_sample_j"] == pytest.approx(energy / m["completed_samples"], rel=1e-12)
    assert wall["energy_per_query_j"] == pytest.approx(energy / m["completed_queries"], rel=1e-12)
    assert wall["samples_per_s_per_w"] == pytest.approx(m["samples_per_second"] / WATTS)
    assert p["total"]["sources"] == ["ptdaemon"]  # the wall figure alone: nothing double-counted
    timeline = np.load(out_dir / doc["run_id"] / "telemetry.npz")
    assert set(timeline["ptdaemon.ptdaemon"]) == {WATTS}
    assert a.commands[-1] == "Stop"


def test_dropped_analyzer_invalidates_power_and_keeps_the_run(capsys, out_dir, analyzer):
    a = analyzer(drop_after=8)  # at 50 Hz after a 0.1 s warm-up: inside the measured window
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "null",
                         "--scenario", "single-stream", *FAST, "--telemetry-hz", "50",
                         "--ptd", f"127.0.0.1:{a.port}")
    assert code == 3 and not doc["valid"]
    assert doc["validated"]["performance"] is True and doc["metrics"]["completed_samples"] > 0
    wall = next(e for e in doc["power"]["sources"] if e["name"] == "ptdaemon")
    assert not wall["valid"] and wall["energy_j"] is None
    assert "closed the connection" in wall["invalid_reason"]
    assert any("power source ptdaemon was asked for" in r for r in doc["invalid_reasons"])
    assert (out_dir / doc["run_id"] / "samples.npz").is_file()
    timeline = np.load(out_dir / doc["run_id"] / "telemetry.npz")
    assert len(timeline["ptdaemon.t_ns"]) == 8  # what the analyzer gave before it hung up is kept


def test_unreachable_analyzer_is_a_one_line_error(capsys, out_dir):
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed again before the run connects
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--backend", "null",
                         "--output", str(out_dir), "--ptd", f"127.0.0.1:{port}")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "power source ptdaemon is unavailable: PTDaemon at 127.0.0.1" in err
    assert not out_dir.exists()
