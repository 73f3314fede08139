"""Tokens/s of the ``llm`` workload on the torch backend: continuous batching against serving one
request at a time (``max_seqs=1``), both through ``hwbench run`` (the load generator stamps every
token), in the same invocation, order alternating every round.

Each side is one ``hwbench run --workload llm --backend torch`` Offline run over the same
requests (a seeded dataset of fixed lengths, written once, so the two sides generate exactly the
same tokens); the figure is the load generator's tokens/s, and the ratio batching / one at a time
per round. Server at a fixed rate (``--server-qps``) adds TTFT and TPOT percentiles of the
continuous-batching side.

    python bench/llm_throughput.py                       # tiny, cpu, 3 rounds, 2 threads
    python bench/llm_throughput.py --model 1b --device cuda --dtype bf16 --requests 256
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

VOCAB = {"tiny": 4096, "1b": 128256, "8b": 128256}


def write_requests(path: Path, n: int, prompt: int, output: int, vocab: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    path.write_text("".join(json.dumps({"prompt": rng.integers(0, vocab, prompt).tolist(),
                                        "output_tokens": output}) + "\n" for _ in range(n)))


def hwbench_run(a: argparse.Namespace, data: Path, scenario: str, max_seqs: int,
                extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-P", "-m", "hwbench", "run", "--workload", "llm", "--model",
               a.model, "--dataset", str(data), "--backend", "torch", "--scenario", scenario,
               "--backend-opt", f"device={a.device}", "--backend-opt", f"dtype={a.dtype}",
               "--backend-opt", f"max_seqs={max_seqs}", "--backend-opt",
               f"kv_cache_mb={a.kv_cache_mb}", "--duration", str(a.duration),
               "--min-queries", str(a.requests), "--json", "--quiet", "--output", out, *extra]
        if a.threads:
            cmd += ["--backend-opt", f"threads={a.threads}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"hwbench run failed ({proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    m = doc["metrics"]
    return {"tokens_per_second": m["tokens_per_second"], "output_tokens": m["output_tokens"],
            "ttft_ms": m["ttft_ms"], "tpot_ms": m["tpot_ms"], "valid": doc["valid"],
            "reasons": doc["invalid_reasons"], "fidelity": (doc.get("fidelity") or {}).get(
                "passed"), "device": doc["backend_info"]["device"]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny", choices=tuple(VOCAB))
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (0: torch's)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=64, help="requests per Offline run")
    p.add_argument("--prompt", type=int, default=64, help="prompt tokens per request")
    p.add_argument("--output", type=int, default=64, help="output tokens per request")
    p.add_argument("--duration", type=float, default=1.0)
    p.add_argument("--kv-cache-mb", type=int, default=512)
    p.add_argument("--server-qps", type=float, default=0.0,
                   help="also one Server run at this rate (continuous batching)")
    p.add_argument("--json-out")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "requests.jsonl"
        write_requests(data, a.requests, a.prompt, a.output, VOCAB[a.model])
        runs: dict[str, list[dict]] = {"batching": [], "one_at_a_time": []}
        ratios = []
        for rnd in range(a.rounds):
            got = {}
            order = ("batching", "one_at_a_time") if rnd % 2 == 0 else ("one_at_a_time",
                                                                        "batching")
            for side in order:
                seqs = a.requests if side == "batching" else 1
                got[side] = r = hwbench_run(a, data, "offline", seqs, [])
                runs[side].append(r)
                print(f"round {rnd + 1}/{a.rounds} {side:13s} {r['tokens_per_second']:9.1f} "
                      "tokens/s" + ("" if r["valid"] else f"  INVALID {r['reasons']}"),
                      file=sys.stderr, flush=True)
            ratios.append(got["batching"]["tokens_per_second"]
                          / got["one_at_a_time"]["tokens_per_second"])
        server = (hwbench_run(a, data, "server", a.requests,
                              ["--target-qps", str(a.server_qps)]) if a.server_qps else None)
    med = statistics.median
    for side, rs in runs.items():
        vals = [r["tokens_per_second"] for r in rs]
        print(f"offline tokens/s ({side}): median {med(vals):.1f}  min {min(vals):.1f}  "
              f"max {max(vals):.1f}")
    print(f"ratio batching / one at a time: median {med(ratios):.2f}  min {min(ratios):.2f}  "
          f"max {max(ratios):.2f}  ({a.model}, {a.device} {a.dtype}, {a.requests} requests of "
          f"{a.prompt}+{a.output} tokens, {a.threads} threads, {a.rounds} rounds, order "
          f"alternating; {runs['batching'][0]['device']})")
    if server:
        print(f"server {a.server_qps:g} q/s: {server['tokens_per_second']:.1f} tokens/s, TTFT "
              f"p50/p99 {server['ttft_ms']['p50']:.1f}/{server['ttft_ms']['p99']:.1f} ms, TPOT "
              f"p50/p99 {server['tpot_ms']['p50']:.1f}/{server['tpot_ms']['p99']:.1f} ms")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"command": " ".join(
            ["python", "bench/llm_throughput.py", *argv]), "args": vars(a), "runs": runs,
            "ratios": ratios, "server": server}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
