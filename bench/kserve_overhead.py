"""What hwbench adds to a request through the ``kserve`` backend, against the server's own
compute time.

Starts kserve 0.21's ModelServer serving the digits model on loopback (the tests' server and
virtual environment, tests/kserve_env.py), then, each round, in alternating order:

* ``hwbench run --backend kserve --scenario single-stream``: the load generator's mean latency
  per query (one sample, one request at a time);
* a bare client loop: the backend's own HTTP client calling ``infer`` back to back, timed with
  ``perf_counter`` around each call (what any client pays for the protocol and the network);

and reads the server's own compute time from its Prometheus metrics (``request_predict_seconds``,
the time kserve spent in the model's ``predict``) over each side's requests. Figures: mean
latency per request of each side, the server's predict time, and the ratios hwbench / bare
client and hwbench / server predict (all from the same run).

    python -P bench/kserve_overhead.py                 # 3 rounds of 5 s, http
    python -P bench/kserve_overhead.py --protocol grpc --rounds 5
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import kserve_env  # noqa: E402  (the tests' server, from its own venv)


def _predict_seconds(server: kserve_env.Server) -> tuple[float, float]:
    """(sum, count) of the server's ``request_predict_seconds`` histogram so far."""
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    got = {}
    for part in ("sum", "count"):
        m = re.search(rf'^request_predict_seconds_{part}{{[^}}]*}} (\S+)$', text, re.M)
        got[part] = float(m.group(1)) if m else 0.0
    return got["sum"], got["count"]


def _hwbench(url: str, protocol: str, duration: float) -> dict:
    exe = Path(sys.executable).with_name("hwbench")
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [str(exe), "run", "--workload", "digits", "--backend", "kserve",
             "--backend-opt", f"url={url}", "--backend-opt", "model=digits",
             "--backend-opt", f"protocol={protocol}", "--scenario", "single-stream",
             "--duration", str(duration), "--warmup", "1", "--min-queries", "100",
             "--no-power", "--json", "--quiet", "--output", out],
            capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"hwbench run failed ({proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    lat = doc["metrics"]["latency_ms"]
    return {"mean_ms": lat["mean"], "p50_ms": lat.get("p50"), "valid": doc["valid"],
            "reasons": doc["invalid_reasons"], "queries": doc["metrics"].get("queries")}


def _bare(url: str, protocol: str, duration: float) -> dict:
    import numpy as np

    from hwbench.backends.kserve_grpc import GrpcClient
    from hwbench.backends.kserve_http import HttpClient
    from hwbench.workloads.digits import Digits

    wl = Digits()
    art = wl.artifact()
    data = wl.load_samples(np.arange(wl.performance_sample_count()))
    if protocol == "grpc":
        client = GrpcClient(url, timeout_s=10, connect_timeout_s=3, tls_ca=None, tls=False,
                            headers={})
    else:
        client = HttpClient(url, timeout_s=10, connect_timeout_s=3, tls=None, headers={})

    def loop(seconds: float) -> list[float]:
        times, i = [], 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            client.infer("digits", "", [(art.input_name, data[i:i + 1], "FP32")],
                         [art.output_name])
            times.append(time.perf_counter() - t0)
            i = (i + 1) % len(data)
        return times

    loop(1.0)
    times = loop(duration)
    client.close()
    return {"mean_ms": 1e3 * statistics.fmean(times), "p50_ms": 1e3 * statistics.median(times),
            "queries": len(times), "valid": True}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", choices=("http", "grpc"), default="http")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured side")
    p.add_argument("--json-out")
    a = p.parse_args(argv)
    from hwbench.workloads.digits import Digits

    with tempfile.TemporaryDirectory() as tmp:
        server = kserve_env.start(Digits().default_model(), Path(tmp) / "server.log")
        try:
            url = server.http_url if a.protocol == "http" else server.grpc_url
            rows = _rounds(a, server, url)
        finally:
            server.stop()
    med = statistics.median
    for side in ("hwbench", "bare"):
        print(f"{side:8s} mean latency/request: median {med(r[side]['mean_ms'] for r in rows):.3f}"
              f" ms; server predict {med(r[side]['server_ms'] for r in rows):.3f} ms")
    for key in ("hwbench/bare", "hwbench/server", "bare/server"):
        vals = [r[key] for r in rows]
        print(f"ratio {key:15s} median {med(vals):.3f}  min {min(vals):.3f}  max {max(vals):.3f}")
    print(f"({a.protocol}, digits, single-stream, {a.rounds} rounds of {a.duration:g} s, "
          "order alternating)")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"args": vars(a), "rounds": rows}, indent=1))
    return 0


def _rounds(a: argparse.Namespace, server: kserve_env.Server, url: str) -> list[dict]:
    rows = []
    for rnd in range(a.rounds):
        row: dict = {}
        for side in (("hwbench", "bare") if rnd % 2 == 0 else ("bare", "hwbench")):
            s0, c0 = _predict_seconds(server)
            r = (_hwbench if side == "hwbench" else _bare)(url, a.protocol, a.duration)
            s1, c1 = _predict_seconds(server)
            r["server_ms"] = 1e3 * (s1 - s0) / max(c1 - c0, 1)  # warm-up requests included
            row[side] = r
            print(f"round {rnd + 1}/{a.rounds} {side:7s} {r['mean_ms']:.3f} ms/request, server "
                  f"predict {r['server_ms']:.3f} ms" + ("" if r["valid"] else
                                                        f"  INVALID {r['reasons']}"),
                  file=sys.stderr, flush=True)
        row["hwbench/bare"] = row["hwbench"]["mean_ms"] / row["bare"]["mean_ms"]
        row["hwbench/server"] = row["hwbench"]["mean_ms"] / row["hwbench"]["server_ms"]
        row["bare/server"] = row["bare"]["mean_ms"] / row["bare"]["server_ms"]
        rows.append(row)
    return rows


if __name__ == "__main__":
    sys.exit(main())
