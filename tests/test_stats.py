"""The compiled statistics against a simple Python reference, on seeded data (no clock)."""
from __future__ import annotations

import numpy as np
import pytest

import reference_stats as ref
from hwbench.harness import loadgen as lgm


def _settings(scenario, **kw):
    s = lgm.Settings()
    s.scenario = scenario
    s.min_duration_s = 0.0
    s.min_query_count = 1
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def _records(latencies_ns: np.ndarray, per_query: int = 1, start: int = 1_000_000):
    n = len(latencies_ns)
    query = (np.arange(n) // per_query).astype(np.uint64)
    issue = start + (query.astype(np.int64)) * 1000
    complete = issue + latencies_ns.astype(np.int64)
    return dict(index=np.zeros(n, np.uint64), query=query, issue_ns=issue,
                complete_ns=complete, start_ns=start)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 7, 100, 1001, 20000])
def test_latency_percentiles_match_reference(seed, n):
    rng = np.random.default_rng(seed)
    lat = rng.lognormal(13, 1, n).astype(np.int64) + 1
    s = _settings(lgm.Scenario.SingleStream, early_stopping=False)
    m = lgm.analyze(s, **_records(lat))
    srt = np.sort(lat)
    for name, p in [("p50", .5), ("p90", .9), ("p95", .95), ("p97", .97), ("p99", .99),
                    ("p999", .999)]:
        assert getattr(m.latency, name) == ref.percentile(srt, p), name
    assert m.latency.min == srt[0] and m.latency.max == srt[-1]
    assert m.latency.mean == pytest.approx(lat.mean(), rel=1e-12)
    assert m.completed_queries == n


def test_multistream_query_latency_is_its_slowest_sample():
    lat = np.array([5, 9, 1, 2, 30, 3], dtype=np.int64) * 1000
    m = lgm.analyze(_settings(lgm.Scenario.MultiStream, early_stopping=False),
                    **_records(lat, per_query=3))
    assert m.completed_queries == 2
    assert (m.latency.min, m.latency.max) == (9000, 30000)


def test_incomplete_samples_are_not_counted():
    r = _records(np.full(10, 1000, np.int64))
    r["complete_ns"][3] = 0
    m = lgm.analyze(_settings(lgm.Scenario.SingleStream), **r)
    assert (m.issued_samples, m.completed_samples, m.completed_queries) == (10, 9, 9)


@pytest.mark.parametrize("p", [0.9, 0.99])
@pytest.mark.parametrize("t", [0, 1, 5, 20])
def test_early_stopping_min_queries_matches_reference(p, t):
    assert lgm.early_stopping_min_queries(t, p, 0.99) == ref.min_queries(t, p, 0.99)


def test_early_stopping_minimums_are_mlperfs():
    """MLPerf's published minimums: 64 queries at p90, 662 at p99 (h(1) + 1)."""
    assert lgm.early_stopping_min_queries(1, 0.9, 0.99) == 64
    assert lgm.early_stopping_min_queries(1, 0.99, 0.99) == 662


@pytest.mark.parametrize("n", [63, 64, 100, 700])
def test_early_stopping_estimate_follows_mlperfs_loop(n):
    rng = np.random.default_rng(n)
    lat = rng.integers(1_000, 1_000_000, n)
    m = lgm.analyze(_settings(lgm.Scenario.SingleStream, target_latency_percentile=0.9),
                    **_records(lat))
    expected = ref.single_stream_estimate(np.sort(lat), 0.9, 0.99)
    if expected is None:
        assert not m.early_stopping_supported and not m.valid
        assert any("at least 64" in r for r in m.invalid_reasons)
    else:
        assert m.early_stopping_supported
        assert m.early_stopping_latency_ns == expected
        assert m.early_stopping_latency_ns >= m.percentile_latency_ns


@pytest.mark.parametrize("n", [100, 458, 459, 1000, 5000])
def test_max_overlatency_is_the_largest_passing_count(n):
    allowed = lgm.early_stopping_max_overlatency(n, 0.99, 0.99)
    # MLPerf's p99 at 99% confidence needs h(0) = 459 queries before even none over the bound
    # passes; below that the count allowed is -1 and no count at all passes.
    assert allowed == -1 if n < ref.min_queries(0, 0.99, 0.99) else allowed >= 0
    if allowed >= 0:
        assert ref.server_passes(n, allowed, 0.99, 0.99)
    assert not ref.server_passes(n, allowed + 1, 0.99, 0.99)


def test_too_few_queries_for_the_percentile_is_invalid():
    need = lgm.early_stopping_min_queries(1, 0.99, 0.99)
    lat = np.full(need - 1, 1000, np.int64)
    m = lgm.analyze(_settings(lgm.Scenario.MultiStream, target_latency_percentile=0.99),
                    **_records(lat))
    assert not m.valid
    assert any(f"at least {need}" in r for r in m.invalid_reasons)


def test_server_overlatency_judged_by_early_stopping():
    n = 5000
    rng = np.random.default_rng(7)
    lat = rng.integers(1_000, 5_000_000, n)  # under a 10 ms bound ...
    allowed = lgm.early_stopping_max_overlatency(n, 0.99, 0.99)
    assert allowed > 0 and ref.server_passes(n, allowed, 0.99, 0.99)
    lat[:allowed] = 50_000_000  # ... except exactly as many as early stopping allows
    s = _settings(lgm.Scenario.Server, target_latency_percentile=0.99, latency_bound_s=0.01,
                  server_target_qps=1.0)
    assert lgm.analyze(s, **_records(lat)).valid
    lat[allowed] = 50_000_000  # one more is too many
    assert not ref.server_passes(n, allowed + 1, 0.99, 0.99)
    m = lgm.analyze(s, **_records(lat))
    assert not m.valid and m.overlatency_queries == allowed + 1
    assert any("bound" in r for r in m.invalid_reasons)


def test_server_percentile_over_the_bound_is_invalid_without_early_stopping_too():
    lat = np.full(1000, 1_000_000, np.int64)
    lat[-20:] = 50_000_000  # 2 % over a 10 ms bound: p99 itself is over
    for es in (True, False):
        s = _settings(lgm.Scenario.Server, target_latency_percentile=0.99, latency_bound_s=0.01,
                      server_target_qps=1.0, early_stopping=es)
        m = lgm.analyze(s, **_records(lat))
        assert not m.valid
        assert any(r.startswith("p99 latency") for r in m.invalid_reasons), es


def test_min_duration_and_query_count():
    lat = np.full(100, 1000, np.int64)
    s = _settings(lgm.Scenario.SingleStream, min_duration_s=10.0, min_query_count=200,
                  early_stopping=False)
    m = lgm.analyze(s, **_records(lat))
    assert not m.meets_min_duration and not m.meets_min_queries and not m.valid
    assert any(r.startswith("too short") for r in m.invalid_reasons)
    assert any(r.startswith("too few queries") for r in m.invalid_reasons)


def test_server_schedule_is_seeded_poisson():
    a = lgm.server_schedule(1000.0, 20000, 0.0, 5)
    b = lgm.server_schedule(1000.0, 20000, 0.0, 5)
    c = lgm.server_schedule(1000.0, 20000, 0.0, 6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    gaps = np.diff(np.concatenate([[0], a])) / 1e9
    assert gaps.mean() == pytest.approx(1e-3, rel=0.03)
    assert gaps.std() == pytest.approx(1e-3, rel=0.05)  # exponential: std equals mean
    assert np.all(gaps >= 0)


def test_server_schedule_covers_min_duration():
    a = lgm.server_schedule(100.0, 10, 2.0, 1)
    assert len(a) >= 10 and a[-1] >= 2e9 and a[-2] < 2e9


def test_analysis_of_a_million_samples():
    """Correctness at scale; the timing itself is measured in bench/."""
    n = 1_000_000
    lat = np.random.default_rng(0).integers(1_000, 10_000_000, n)
    s = _settings(lgm.Scenario.Server, target_latency_percentile=0.99, latency_bound_s=0.1,
                  server_target_qps=1.0)
    m = lgm.analyze(s, **_records(lat))
    assert m.completed_queries == n and m.valid
    assert m.latency.p99 == ref.percentile(np.sort(lat), 0.99)


@pytest.mark.parametrize("field,value", [("min_duration_s", -1.0), ("server_target_qps", 0.0),
                                         ("target_latency_percentile", 1.5),
                                         ("performance_sample_count", 5)])
def test_invalid_settings_raise(field, value):
    s = _settings(lgm.Scenario.Server, latency_bound_s=0.01, total_sample_count=2)
    setattr(s, field, value)
    with pytest.raises(ValueError, match=field):
        lgm._loadgen.validate(s)
