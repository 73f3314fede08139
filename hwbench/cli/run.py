"""``hwbench run``: measure one workload, scenario and backend."""
from __future__ import annotations

import argparse
import json
import sys

from hwbench import backends, telemetry, workloads
from hwbench.cli import repeat as repeat_cmd
from hwbench.config import (LLM_PROFILES, MODES, PIPELINES, PRECISIONS, PROFILES, SCENARIOS,
                            RunConfig,
                            default, parse_backend_options, parse_host_port,
                            parse_input_shapes)
from hwbench.harness.progress import Reporter
from hwbench.passes.runner import execute
from hwbench.results.summary import summary_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a benchmark", description="Run one workload in one "
                       "scenario on one backend; results go to a new run directory.")
    add_run_options(p)
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="run the same configuration "
                   "N times and report the spread of its headline metric (default: 1)")
    p.set_defaults(handler=handle)


def add_run_options(p: argparse.ArgumentParser, *, with_mode: bool = True) -> None:
    """The options that make a RunConfig (``hwbench audit`` takes them too, without --mode)."""
    # Every default is RunConfig's (config.default): one source for the CLI, the API and the index.
    p.add_argument("--workload", default=default("workload"),
                   help=f"one of {', '.join(workloads.names())}, or a workload file "
                   "(FILE.toml: your own classifier; README 'Your own workload') "
                   "(default: %(default)s)")
    p.add_argument("--scenario", default=default("scenario"),
                   help=f"one of {', '.join(SCENARIOS)}, or a .toml file (default: %(default)s)")
    p.add_argument("--backend", default=default("backend"),
                   help=f"one of {', '.join(backends.names())} (default: %(default)s)")
    if with_mode:
        p.add_argument("--mode", default=default("mode"), choices=MODES)
    p.add_argument("--profile", default=default("profile"), choices=PROFILES,
                   help="quick: short runs for interactive use (default); mlperf: MLPerf's minimums")
    p.add_argument("--model", help="ONNX model file (default: the workload's synthetic graph); "
                   "llm: a size (tiny, 1b, 8b) or a .safetensors checkpoint")
    p.add_argument("--dataset", help="reference set directory (workload-specific); llm: "
                   "tokenized requests, FILE.jsonl or .npz")
    p.add_argument("--input-shape", action="append", default=[], dest="input_shape",
                   metavar="NAME=DxD", help="onnx: the per-sample shape of an input with dynamic "
                   "dimensions, without the batch (--batch-size), e.g. input_ids=128; repeatable")
    p.add_argument("--inputs", metavar="FILE.npz", help="onnx: feed these tensors instead of "
                   "synthetic ones, one array per model input, named as the input, leading "
                   "dimension = samples")
    p.add_argument("--duration", type=float, dest="duration_s", metavar="SECONDS",
                   help="minimum duration of the measured window")
    p.add_argument("--max-duration", type=float, dest="max_duration_s", metavar="SECONDS")
    p.add_argument("--min-queries", type=int, dest="min_query_count", metavar="N")
    p.add_argument("--target-qps", type=float, metavar="Q", help="Server arrival rate "
                   "(default: half the calibrated throughput)")
    p.add_argument("--expected-qps", type=float, metavar="Q", help="Offline expected throughput "
                   "(default: calibrated)")
    p.add_argument("--latency-bound-ms", type=float, metavar="MS",
                   help="latency bound (Server default: the workload's MLPerf bound)")
    p.add_argument("--ttft-bound-ms", type=float, metavar="MS",
                   help="llm: Server's p99 time-to-first-token bound (default: the model size's, "
                   "per --llm-profile; docs/llm.md)")
    p.add_argument("--tpot-bound-ms", type=float, metavar="MS",
                   help="llm: Server's p99 time-per-output-token bound (default: as above)")
    p.add_argument("--llm-profile", default=default("llm_profile"), choices=LLM_PROFILES,
                   help="llm: the token bounds' profile, MLPerf's default or interactive "
                   "(default: %(default)s)")
    p.add_argument("--batch-size", "--max-batch", type=int, default=default("batch_size"),
                   metavar="N", dest="batch_size", help="samples per backend call, at most")
    p.add_argument("--instances", type=int, default=default("instances"), metavar="N",
                   help="workers computing at once (each with its own backend unless the backend "
                   "is thread-safe)")
    p.add_argument("--batch-timeout-us", type=float, default=default("batch_timeout_us"),
                   metavar="US", help="dynamic batching: wait up to US after a batch's first "
                   "sample for more")
    p.add_argument("--precision", default=default("precision"), choices=PRECISIONS,
                   help="precision of the model artifact every backend runs (converted once, "
                   "cached; default: %(default)s)")
    p.add_argument("--warmup", type=float, dest="warmup_s", metavar="SECONDS")
    p.add_argument("--sample-timeout", type=float, default=default("sample_timeout_s"),
                   dest="sample_timeout_s", metavar="SECONDS",
                   help="a sample not completed this long invalidates the run")
    p.add_argument("--arrivals", default=default("arrivals"), metavar="PROCESS",
                   help="Server's arrivals: poisson (MLPerf's), gamma:cv=X, "
                   "onoff:on_s=A,off_s=B,ratio=R, ramp:from=Q1,to=Q2,over_s=S, or a trace "
                   "FILE.csv ('t' or 'gap' column) replayed as recorded or scaled to --target-qps "
                   "(default: %(default)s)")
    p.add_argument("--window-s", type=float, default=default("window_s"), metavar="SECONDS",
                   help="Server latency is also reported per window of this length; "
                   "non-stationary arrivals are judged per window, and a soak's drift "
                   "(default: %(default)s)")
    p.add_argument("--soak-minutes", type=float, metavar="MINUTES", help="a soak: the measured "
                   "window lasts this long, and throughput, latency and (with --mode both) top-1 "
                   "agreement are tested for drift per --window-s (instead of --duration)")
    p.add_argument("--spin-us", type=float, default=default("spin_us"), metavar="US",
                   help="the longest the load generator busy-waits before an arrival or for a "
                   "completion; 0: never (default: %(default)s)")
    p.add_argument("--pipeline", default=default("pipeline"), choices=PIPELINES,
                   help="the timed path: model (MLPerf's: preprocessed inputs to the backend), "
                   "full (each sample from its encoded file through decode, preprocessing, "
                   "batching, the backend and top-k), both (model, then full; compared) "
                   "(default: %(default)s)")
    p.add_argument("--preprocess-workers", type=int, default=default("preprocess_workers"),
                   metavar="N", help="threads decoding and preprocessing in --pipeline full "
                   "(default: %(default)s)")
    p.add_argument("--performance-samples", type=int, dest="performance_sample_count",
                   metavar="N", help="samples loaded for performance mode")
    p.add_argument("--robustness", action="store_true", help="also score the reference set "
                   "under 10 camera corruptions x 5 severities (needs a labelled workload)")
    p.add_argument("--robustness-samples", type=int, metavar="N", help="robustness on a fixed "
                   "seeded subset of N reference samples (default: all)")
    p.add_argument("--seed", type=int, default=default("seed"))
    p.add_argument("--backend-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option (repeatable; see 'hwbench list')")
    _add_telemetry(p)
    p.add_argument("--output", metavar="DIR", help="output root (default: results/runs in a "
                   "checkout, else ./hwbench-results)")
    p.add_argument("--json", action="store_true", help="print the result document on stdout "
                   "and nothing else there")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _add_telemetry(p: argparse.ArgumentParser) -> None:
    p.add_argument("--power-source", action="append", default=[], dest="power_sources",
                   choices=telemetry.names(), metavar="NAME",
                   help=f"measure power with this source only, and require it (repeatable; "
                   f"{', '.join(telemetry.names())}; default: every one, reported if unavailable)")
    p.add_argument("--no-power", action="store_true", help="measure no power")
    p.add_argument("--ptd", metavar="HOST:PORT", help="SPEC PTDaemon power analyzer to read "
                   "wall power from (required to work once given)")
    p.add_argument("--rapl-root", default=default("rapl_root"), metavar="PATH",
                   help="powercap tree to read RAPL from (default: %(default)s)")
    p.add_argument("--jetson-root", default=default("jetson_root"), metavar="PATH",
                   help="i2c drivers tree to find Jetson INA3221 monitors in (default: %(default)s)")
    p.add_argument("--telemetry-hz", type=float, default=default("telemetry_hz"), metavar="HZ",
                   help="telemetry sampling rate; 0 turns telemetry off (default: %(default)s)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    keys = ("workload", "scenario", "backend", "profile", "model", "dataset", "inputs",
            "duration_s", "max_duration_s", "min_query_count", "target_qps", "expected_qps",
            "latency_bound_ms", "ttft_bound_ms", "tpot_bound_ms", "llm_profile", "batch_size",
            "warmup_s", "sample_timeout_s", "spin_us",
            "arrivals", "window_s", "soak_minutes",
            "performance_sample_count", "seed", "output", "robustness", "robustness_samples",
            "instances", "batch_timeout_us", "precision", "pipeline", "preprocess_workers",
            "no_power", "rapl_root", "jetson_root", "telemetry_hz")
    ptd_host, ptd_port = parse_host_port(args.ptd)
    return RunConfig(mode=getattr(args, "mode", default("mode")),
                     backend_options=parse_backend_options(args.backend_opt),
                     input_shapes=parse_input_shapes(args.input_shape),
                     power_sources=tuple(dict.fromkeys(args.power_sources)),
                     ptd_host=ptd_host, ptd_port=ptd_port,
                     **{k: getattr(args, k) for k in keys})


def handle(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.repeat != 1:
        return repeat_cmd.handle(args, cfg)
    outcome = execute(cfg, Reporter(enabled=not args.quiet))
    if args.json:
        json.dump(outcome.result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(summary_table(outcome.result, outcome.run_dir))
    return outcome.exit_code
