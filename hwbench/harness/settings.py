"""Turns a RunConfig and a scenario definition into the load generator's frozen settings."""
from __future__ import annotations

from typing import Any

from hwbench.config import RunConfig, ScenarioSpec
from hwbench.harness.loadgen import Mode, Scenario, Settings
from hwbench.workloads import Workload

_FIELDS = ("min_duration_s", "max_duration_s", "min_query_count", "max_query_count",
           "total_sample_count", "performance_sample_count", "sample_seed", "schedule_seed",
           "target_latency_percentile", "latency_bound_s", "server_target_qps",
           "samples_per_query", "offline_expected_qps", "warmup_s", "warmup_queries",
           "warmup_samples_per_query", "sample_timeout_s", "early_stopping",
           "early_stopping_confidence", "spin_us")


def build(cfg: RunConfig, spec: ScenarioSpec, workload: Workload, *, accuracy: bool = False,
          target_qps: float = 1.0, expected_qps: float = 1.0) -> Settings:
    """The load generator settings for one pass (accuracy or performance)."""
    s = Settings()
    s.scenario = getattr(Scenario, spec.loadgen_scenario)
    s.mode = Mode.Accuracy if accuracy else Mode.Performance
    s.min_duration_s = spec.min_duration_s if cfg.duration_s is None else cfg.duration_s
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
    s.server_target_qps = target_qps
    s.samples_per_query = spec.samples_per_query
    s.offline_expected_qps = expected_qps
    s.warmup_s = spec.warmup_s if cfg.warmup_s is None else cfg.warmup_s
    s.warmup_samples_per_query = (spec.samples_per_query if s.scenario == Scenario.MultiStream
                                  else cfg.batch_size)
    s.sample_timeout_s = cfg.sample_timeout_s
    s.spin_us = cfg.spin_us
    return s


def to_dict(s: Settings) -> dict[str, Any]:
    d: dict[str, Any] = {"scenario": s.scenario.name, "mode": s.mode.name}
    d.update({k: getattr(s, k) for k in _FIELDS})
    return d


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
