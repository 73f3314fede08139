"""Token timing: the load generator's token events, their analysis (TTFT, TPOT, inter-token
latency, stalls, tokens/s, goodput, Server's verdict on both bounds), the null backend's compiled
pacer, the llm workload's requests, the schema migration and the command's bad input."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from cli_helpers import cli, run_json
from hwbench.harness import loadgen as lgm
from hwbench.results.store import SCHEMA_VERSION, load_result

MS = 1_000_000


def _server(ttft_ms=0.0, tpot_ms=0.0, p=0.99, early_stopping=True):
    s = lgm.Settings()
    s.scenario = lgm.Scenario.Server
    s.min_duration_s, s.min_query_count = 0.0, 1
    s.target_latency_percentile = p
    s.ttft_bound_s, s.tpot_bound_s = ttft_ms / 1e3, tpot_ms / 1e3
    s.early_stopping = early_stopping
    return s


def _analyze(s, issue_ms, ttft_ms, tpot_ms, tokens, gaps_ms=None, max_gap_ms=None):
    """Synthetic token records: request i is issued at issue_ms[i], gets its first token
    ttft_ms[i] later and each next one tpot_ms[i] after the previous; it completes with its last
    token."""
    n = len(issue_ms)
    issue = np.asarray(issue_ms, np.int64) * MS
    first = issue + np.asarray(ttft_ms, np.int64) * MS
    count = np.asarray(tokens, np.uint32)
    last = first + np.asarray(tpot_ms, np.int64) * MS * (count.astype(np.int64) - 1)
    gaps = np.asarray(gaps_ms if gaps_ms is not None else [], np.int64) * MS
    max_gap = np.asarray(max_gap_ms if max_gap_ms is not None else tpot_ms, np.int64) * MS
    idx = np.arange(n, dtype=np.uint64)
    return lgm.analyze(s, idx, idx.copy(), issue, last, 0, first_token_ns=first,
                       last_token_ns=last, token_count=count, max_gap_ns=max_gap,
                       token_gaps_ns=gaps)


def test_ttft_tpot_stall_tokens_and_goodput_are_computed_exactly():
    # Three requests: TTFT 20, 30, 60 ms; TPOT 2 ms (5 tokens), none (1 token), 20 ms (3 tokens).
    m = _analyze(_server(ttft_ms=50, tpot_ms=10, p=0.5, early_stopping=False),
                 [0, 10, 20], [20, 30, 60], [2, 0, 20], [5, 1, 3],
                 gaps_ms=[2, 2, 2, 2, 20, 20], max_gap_ms=[2, 0, 25])
    assert m.has_tokens
    assert (m.ttft.min, m.ttft.p50, m.ttft.max) == (20 * MS, 30 * MS, 60 * MS)
    assert m.tpot_samples == 2  # a one-token response has no time per output token
    assert (m.tpot.min, m.tpot.max) == (2 * MS, 20 * MS)
    assert m.output_tokens == 9
    assert m.max_stall_ns == 25 * MS and m.itl_p99_ns == 20 * MS
    # The window ends with the last completion: 20 + 60 + 2 * 20 = 120 ms.
    assert m.duration_s == pytest.approx(0.120)
    assert m.tokens_per_second == pytest.approx(9 / 0.120)
    # Request 0 meets both bounds, request 1 has no TPOT and meets TTFT, request 2 misses TTFT.
    assert m.good_samples == 2 and m.goodput == pytest.approx(2 / 0.120)
    assert m.metric_name == "tokens_per_second"
    assert m.percentile_ttft_ns == 30 * MS and m.percentile_tpot_ns == 20 * MS
    assert m.ttft_met and not m.tpot_met
    assert m.invalid_reasons == ["p50 TPOT 20.000 ms exceeds the bound 10.000 ms"]


def test_a_run_without_token_events_has_no_token_statistics():
    s = _server(ttft_ms=0, tpot_ms=0)
    s.latency_bound_s = 1.0
    idx = np.arange(3, dtype=np.uint64)
    issue = np.array([0, 1, 2], np.int64) * MS
    m = lgm.analyze(s, idx, idx.copy(), issue, issue + MS, 0)
    assert not m.has_tokens and m.output_tokens == 0 and m.metric_name == "scheduled_qps"


def test_token_bounds_without_token_events_invalidate_the_run():
    s = _server(ttft_ms=100, tpot_ms=10, early_stopping=False)
    idx = np.arange(3, dtype=np.uint64)
    issue = np.array([0, 1, 2], np.int64) * MS
    m = lgm.analyze(s, idx, idx.copy(), issue, issue + MS, 0)
    assert not m.valid
    assert any("no token event" in r for r in m.invalid_reasons)


@pytest.mark.parametrize("which", ["ttft", "tpot"])
def test_early_stopping_judges_each_token_bound(which):
    """Server at p99 with 2000 requests: as many over the bound as early stopping allows still
    pass; one more fails, with the count in the reason. The other bound is always met."""
    n = 2000
    allowed = lgm.early_stopping_max_overlatency(n, 0.99, 0.99)
    assert allowed > 0

    def run(over):
        ttft = np.full(n, 10)
        tpot = np.full(n, 2)
        if which == "ttft":
            ttft[:over] = 200
        else:
            tpot[:over] = 40
        return _analyze(_server(ttft_ms=100, tpot_ms=20), np.arange(n), ttft, tpot,
                        np.full(n, 4))

    ok = run(allowed)
    assert ok.valid, ok.invalid_reasons
    assert getattr(ok, f"over_{which}") == allowed and ok.early_stopping_met
    bad = run(allowed + 1)
    assert not bad.valid and not getattr(bad, f"{which}_met")
    other = "tpot" if which == "ttft" else "ttft"
    assert getattr(bad, f"{other}_met")
    name = which.upper()
    assert any(f"p99 {name} bound" in r and f"{allowed + 1} of {n}" in r
               for r in bad.invalid_reasons), bad.invalid_reasons


def test_too_few_requests_cannot_judge_a_p99_token_bound():
    m = _analyze(_server(ttft_ms=100, tpot_ms=20), np.arange(50), np.full(50, 10),
                 np.full(50, 2), np.full(50, 4))
    assert not m.valid
    assert any("too few samples to judge p99 TTFT" in r for r in m.invalid_reasons)
    assert any("too few samples to judge p99 TPOT" in r for r in m.invalid_reasons)


def test_token_columns_must_match_the_samples():
    s = _server(ttft_ms=1)
    idx = np.arange(3, dtype=np.uint64)
    t = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="token columns"):
        lgm.analyze(s, idx, idx, t, t, 0, first_token_ns=t[:2], last_token_ns=t[:2],
                    token_count=np.ones(2, np.uint32))


class Library:
    def load(self, indices):
        pass

    def unload(self, indices):
        pass


class StreamingSut:
    """Reports `tokens` token events per sample on a thread, then completes it; optionally one
    bad event (a count that goes down)."""

    def __init__(self, lg, tokens=4, bad=False):
        self.lg, self.tokens, self.bad = lg, tokens, bad
        self.threads: list[threading.Thread] = []

    def issue(self, ids, indices):
        def serve(ids=ids.copy()):
            for k in range(1, self.tokens + 1):
                self.lg.tokens(ids, np.full(len(ids), k, np.uint32))
            if self.bad:
                self.lg.tokens(ids[:1], np.array([1], np.uint32))
            self.lg.complete(ids)
        t = threading.Thread(target=serve)
        t.start()
        self.threads.append(t)

    def flush(self):
        for t in self.threads:
            t.join()


def _single_stream(n=40):
    s = lgm.Settings()
    s.scenario = lgm.Scenario.SingleStream
    s.min_duration_s, s.min_query_count, s.max_query_count = 0.0, n, n
    s.total_sample_count = s.performance_sample_count = 8
    s.early_stopping = False
    return s


def test_the_load_generator_records_token_events_per_sample():
    """A real run whose SUT reports 4 token events per sample from another thread: every
    sample's count, first and last token lie between its issue and its completion."""
    lg = lgm.LoadGen()
    out = lg.run(StreamingSut(lg), Library(), _single_stream())
    assert not out["errors"]
    r = out["records"]
    assert (r["token_count"] == 4).all()
    assert (r["issue_ns"] <= r["first_token_ns"]).all()
    assert (r["first_token_ns"] <= r["last_token_ns"]).all()
    assert (r["last_token_ns"] <= r["complete_ns"]).all()
    assert (r["max_gap_ns"] >= 0).all()
    assert len(r["token_gaps_ns"]) == 3 * len(r["token_count"])
    m = out["summary"]
    assert m.has_tokens and m.output_tokens == 4 * 40 and m.tpot_samples == 40


def test_a_run_without_token_events_carries_no_token_columns():
    class Inline:
        def __init__(self, lg):
            self.lg = lg

        def issue(self, ids, indices):
            self.lg.complete(ids)

        def flush(self):
            pass

    lg = lgm.LoadGen()
    out = lg.run(Inline(lg), Library(), _single_stream())
    assert "token_count" not in out["records"] and not out["summary"].has_tokens


def test_a_count_that_goes_down_invalidates_the_run():
    lg = lgm.LoadGen()
    out = lg.run(StreamingSut(lg, bad=True), Library(), _single_stream(n=5))
    assert any("token event(s)" in e for e in out["errors"])
    assert not out["summary"].valid


def test_the_pacer_paces_each_request_independently():
    """The compiled pacer's own tokens, through a real run: 3 tokens per request, the first
    2 ms after submission, then 1 ms apart."""
    lg = lgm.LoadGen()

    class PacedSut:
        def __init__(self):
            self.pacer = lgm.TokenPacer(lg, 2 * MS, 1 * MS)

        def issue(self, ids, indices):
            self.pacer.submit(ids, np.full(len(ids), 3, np.uint32))

        def flush(self):
            self.pacer.drain()

    sut = PacedSut()
    s = _single_stream(n=10)
    out = lg.run(sut, Library(), s)
    sut.pacer.stop()
    sut.pacer.stop()  # idempotent
    r = out["records"]
    assert not out["errors"] and (r["token_count"] == 3).all()
    # Never early: token k is due 2 ms + (k - 1) ms after its submission, which follows its
    # issue. (Due times are a fixed grid per request, so a token woken late does not delay the
    # next ones: a single gap may be shorter than 1 ms, never the whole response.)
    assert ((r["first_token_ns"] - r["issue_ns"]) >= 2 * MS).all()
    assert ((r["last_token_ns"] - r["issue_ns"]) >= 4 * MS).all()


ACCEPT = ["--workload", "llm", "--backend", "null", "--scenario", "server", "--target-qps", "2",
          "--backend-opt", "prefill_us=20000", "--backend-opt", "token_us=2000",
          "--backend-opt", "output_tokens=64", "--duration", "12", "--min-queries", "20",
          "--warmup", "0", "--no-power", "--telemetry-hz", "0"]


def test_null_backend_ttft_and_tpot_medians_match_its_settings(capsys, tmp_path):
    """The acceptance check: the null backend's pacer (TTFT 20 ms, TPOT 2 ms, 64 tokens) at
    2 QPS in Server, measured by the harness end to end. The medians are within 3% of the
    settings (the pacer is compiled and independent per request, so only the harness's own
    path from arrival to submission adds to TTFT). A short run cannot satisfy p99 early
    stopping, so the verdict is not what is checked here."""
    code, doc = run_json(capsys, tmp_path, *ACCEPT)
    m = doc["metrics"]
    assert m["ttft_ms"]["p50"] == pytest.approx(20.0, rel=0.03)
    assert m["tpot_ms"]["p50"] == pytest.approx(2.0, rel=0.03)
    assert m["output_tokens"] == 64 * m["completed_samples"]
    assert m["scenario_metric"]["name"] == "tokens_per_second"
    assert m["tokens_per_second"] > 0 and m["goodput"]["requests"] == m["completed_samples"]
    assert m["inter_token_p99_ms"] >= 2.0 and m["max_stall_ms"] >= 2.0
    assert doc["backend_info"]["streams"] is True
    assert doc["schema_version"] == SCHEMA_VERSION
    assert "accuracy not applicable" in doc["accuracy_note"]
    run_dir = next(tmp_path.glob("*llm-server-null*"))
    with np.load(run_dir / "samples.npz") as z:
        assert (z["token_count"] == 64).all()
        assert (z["first_token_ns"] > z["issue_ns"]).all()
    text = (run_dir / "summary.txt").read_text()
    assert "50.00 percentile first token latency (ns)" in text
    assert "p99 TTFT" in text and "p99 TPOT" in text


def test_schema_7_results_gain_null_token_metrics(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({
        "schema_version": 7, "run_id": "r", "metrics": {"samples_per_second": 5.0},
        "backend_info": {"name": "cpu"}}))
    doc = load_result(tmp_path)
    assert doc["schema_version"] == SCHEMA_VERSION
    for key in ("ttft_ms", "tpot_ms", "tokens_per_second", "output_tokens",
                "inter_token_p99_ms", "max_stall_ms", "goodput", "token_bounds"):
        assert doc["metrics"][key] is None
    assert doc["metrics"]["samples_per_second"] == 5.0
    assert doc["backend_info"]["streams"] is False


@pytest.mark.parametrize("args, words", [
    (["--ttft-bound-ms", "-5"], "--ttft-bound-ms must be > 0"),
    (["--tpot-bound-ms", "0"], "--tpot-bound-ms must be > 0"),
    (["--ttft-bound-ms", "nan"], "--ttft-bound-ms must be > 0"),
    (["--backend", "cpu"], "use --backend torch"),
    (["--model", "huge"], "name a size"),
    (["--model", "missing.safetensors"], "not found"),
    (["--dataset", "nowhere.jsonl"], "not found"),
    (["--instances", "2"], "drop --instances"),
])
def test_bad_llm_input_is_one_line_and_exit_2(capsys, tmp_path, args, words):
    code, out, err = cli(capsys, "run", "--workload", "llm", "--backend", "null",
                         "--output", str(tmp_path), *args)
    assert code == 2, err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_token_options_are_refused_for_other_workloads(capsys, tmp_path):
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--backend", "null",
                         "--tpot-bound-ms", "5", "--output", str(tmp_path))
    assert code == 2 and "applies to generative workloads" in err


def test_a_dataset_with_a_token_outside_the_vocabulary_is_refused(capsys, tmp_path):
    data = tmp_path / "reqs.jsonl"
    data.write_text(json.dumps({"prompt": [1, 2, 10 ** 7], "output_tokens": 4}) + "\n")
    code, out, err = cli(capsys, "run", "--workload", "llm", "--backend", "null",
                         "--dataset", str(data), "--output", str(tmp_path))
    assert code == 2 and "outside the model's vocabulary" in err


def test_requests_are_seeded_and_a_dataset_replaces_them(tmp_path):
    from hwbench.workloads.llm import LENGTHS, Llm

    a, b = Llm(seed=3).requests(), Llm(seed=3).requests()
    assert all(np.array_equal(x.prompt, y.prompt) and x.output_tokens == y.output_tokens
               for x, y in zip(a, b))
    d = LENGTHS["tiny"]
    assert all(d.prompt_min <= len(r.prompt) <= d.prompt_max for r in a)
    assert all(d.output_min <= r.output_tokens <= d.output_max for r in a)
    assert len({r.output_tokens for r in a}) > 10  # a distribution, not one length
    path = tmp_path / "reqs.npz"
    np.savez(path, prompt_tokens=np.array([5, 6, 7, 8, 9]), prompt_lengths=np.array([2, 3]),
             output_tokens=np.array([4, 1]))
    reqs = Llm(dataset=str(path)).requests()
    assert [r.prompt.tolist() for r in reqs] == [[5, 6], [7, 8, 9]]
    assert [r.output_tokens for r in reqs] == [4, 1]


def test_token_bounds_enter_the_configuration_hash_and_nothing_else_moves():
    from hwbench.results.identity import comparability_key, config_hash

    doc = {"workload": "llm", "scenario": "server", "mode": "performance",
           "settings": {"config": {"profile": "quick"},
                        "loadgen": {"scenario": "Server", "server_target_qps": 2.0}}}
    plain = config_hash(doc)
    assert "token_bounds_s" not in comparability_key(doc)
    doc["settings"]["loadgen"].update(ttft_bound_s=0.5, tpot_bound_s=0.05)
    strict = json.loads(json.dumps(doc))
    strict["settings"]["loadgen"]["tpot_bound_s"] = 0.015
    assert len({plain, config_hash(doc), config_hash(strict)}) == 3
