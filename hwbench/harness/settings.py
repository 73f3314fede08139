"""Turns a RunConfig and a scenario definition into the load generator's frozen settings."""
from __future__ import annotations

from typing import Any

from hwbench.config import RunConfig, ScenarioSpec
from hwbench.harness import arrivals as arrival_specs
from hwbench.harness.loadgen import Arrivals, Mode, Scenario, Settings
from hwbench.workloads import Workload

_FIELDS = ("min_duration_s", "max_duration_s", "min_query_count", "max_query_count",
           "total_sample_count", "performance_sample_count", "sample_seed", "schedule_seed",
           "target_latency_percentile", "latency_bound_s", "server_target_qps",
           "samples_per_query", "offline_expected_qps", "warmup_s", "warmup_queries",
           "warmup_samples_per_query", "sample_timeout_s", "early_stopping",
           "early_stopping_confidence", "spin_us", "ttft_bound_s", "tpot_bound_s")


def build(cfg: RunConfig, spec: ScenarioSpec, workload: Workload, *, accuracy: bool = False,
          target_qps: float = 1.0, expected_qps: float = 1.0,
          arrivals: arrival_specs.ArrivalSpec | None = None) -> Settings:
    """The load generator settings for one pass (accuracy or performance)."""
    s = Settings()
    s.scenario = getattr(Scenario, spec.loadgen_scenario)
    s.mode = Mode.Accuracy if accuracy else Mode.Performance
    s.min_duration_s = spec.min_duration_s if cfg.duration_s is None else cfg.duration_s
    if cfg.soak_minutes is not None:
        s.min_duration_s = 60.0 * cfg.soak_minutes
    s.max_duration_s = cfg.max_duration_s or 0.0
    s.min_query_count = cfg.min_query_count or spec.min_query_count
    total = workload.sample_count()
    s.total_sample_count = total
    s.performance_sample_count = min(total, cfg.performance_sample_count
                                     or workload.performance_sample_count())
    s.sample_seed = cfg.seed
    s.schedule_seed = cfg.seed + 1
    s.target_latency_percentile = spec.target_latency_percentile
    bound_ms = cfg.latency_bound_ms
    if bound_ms is None and s.scenario == Scenario.Server:
        bound_ms = workload.server_latency_bound_ms
    s.latency_bound_s = (bound_ms or 0.0) / 1000.0
    if workload.generative:  # judged per token (MLPerf's LLM benchmarks), see docs/llm.md
        ttft_ms, tpot_ms = workload.token_bounds_ms(cfg.llm_profile)
        s.ttft_bound_s = (cfg.ttft_bound_ms or ttft_ms) / 1000.0
        s.tpot_bound_s = (cfg.tpot_bound_ms or tpot_ms) / 1000.0
    s.server_target_qps = target_qps
    s.samples_per_query = spec.samples_per_query
    s.offline_expected_qps = expected_qps
    s.warmup_s = spec.warmup_s if cfg.warmup_s is None else cfg.warmup_s
    s.warmup_samples_per_query = (spec.samples_per_query if s.scenario == Scenario.MultiStream
                                  else cfg.batch_size)
    s.sample_timeout_s = cfg.sample_timeout_s
    s.spin_us = cfg.spin_us
    if s.scenario == Scenario.Server:
        _arrivals(s, arrivals or arrival_specs.parse(cfg.arrivals), cfg.target_qps)
    return s


def _arrivals(s: Settings, a: arrival_specs.ArrivalSpec, user_qps: float | None) -> None:
    """Server's arrival process. Early stopping's binomial bound assumes independent queries at
    a steady rate, which bursty and non-stationary arrivals are not: for every process but
    Poisson it is off, and the plain percentile (and, for non-stationary ones, every window's;
    hwbench.results.windows) is judged."""
    s.arrivals = getattr(Arrivals, {"poisson": "Poisson", "gamma": "Gamma", "onoff": "OnOff",
                                    "ramp": "Ramp", "trace": "Trace"}[a.kind])
    if a.kind != "poisson":
        s.early_stopping = False
    if a.kind == "gamma":
        s.gamma_cv = a.param("cv")
    elif a.kind == "onoff":
        s.onoff_on_s, s.onoff_off_s, s.onoff_ratio = (a.param(k) for k in ("on_s", "off_s", "ratio"))
    elif a.kind == "ramp":
        s.ramp_from_qps, s.ramp_to_qps, s.ramp_over_s = (a.param(k) for k in ("from", "to", "over_s"))
    elif a.kind == "trace":
        assert a.trace is not None
        s.trace_ns = arrival_specs.trace_offsets(a.trace, user_qps)
        # A trace is replayed once: its own span and length are the run's minimums (MLPerf's
        # are still compared, in mlperf_shortfalls).
        s.min_duration_s = s.trace_ns[-1] / 1e9
        s.min_query_count = len(s.trace_ns)
        s.max_query_count = 0


def to_dict(s: Settings) -> dict[str, Any]:
    d: dict[str, Any] = {"scenario": s.scenario.name, "mode": s.mode.name}
    d.update({k: getattr(s, k) for k in _FIELDS})
    if s.scenario == Scenario.Server:  # the process's own settings; a trace by its length
        d["arrivals"] = s.arrivals.name
        d.update({k: getattr(s, k) for k in _ARRIVAL_FIELDS.get(s.arrivals.name, ())})
        if s.arrivals == Arrivals.Trace:
            d["trace_arrivals"] = len(s.trace_ns)
    return d


_ARRIVAL_FIELDS = {"Gamma": ("gamma_cv",), "OnOff": ("onoff_on_s", "onoff_off_s", "onoff_ratio"),
                   "Ramp": ("ramp_from_qps", "ramp_to_qps", "ramp_over_s")}


def mlperf_shortfalls(s: Settings, spec: ScenarioSpec, workload: Workload) -> list[str]:
    """Where these settings fall short of MLPerf Inference's minimums (empty: they meet them)."""
    out = []
    if s.min_duration_s < spec.mlperf_min_duration_s:
        out.append(f"min duration {s.min_duration_s:g} s < MLPerf's {spec.mlperf_min_duration_s:g} s")
    if s.min_query_count < spec.mlperf_min_query_count:
        out.append(f"min query count {s.min_query_count} < MLPerf's {spec.mlperf_min_query_count}")
    need = min(workload.mlperf_performance_sample_count, workload.sample_count())
    if s.performance_sample_count < need:
        out.append(f"performance sample count {s.performance_sample_count} < MLPerf's {need}")
    return out
