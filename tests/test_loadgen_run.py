"""The load generator driving real Python systems under test (threads, callbacks, faults)."""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from hwbench.harness import loadgen as lgm


class Library:
    def __init__(self):
        self.loaded: list[np.ndarray] = []
        self.unloaded: list[np.ndarray] = []

    def load(self, indices):
        self.loaded.append(indices.copy())

    def unload(self, indices):
        self.unloaded.append(indices.copy())


class InlineSut:
    """Completes every sample inside issue(), recording what it saw."""

    def __init__(self, lg):
        self.lg, self.calls, self.indices = lg, 0, []

    def issue(self, ids, indices):
        self.calls += 1
        self.indices.append(indices.copy())
        self.lg.complete(ids)

    def flush(self):
        pass


class PacedSut(InlineSut):
    """Completes issued samples ten at a time, 10 ms apart, inside issue()."""

    def issue(self, ids, indices):
        self.calls += 1
        for s in range(0, len(ids), 10):
            time.sleep(0.01)
            self.lg.complete(ids[s:s + 10])


class ThreadedSut:
    """Completes samples on a worker thread after `delay_s`, except the `drop`-th ones (counted
    from 0 in issue order; ids themselves are opaque)."""

    def __init__(self, lg, delay_s=0.0, drop=()):
        self.lg, self.delay, self.drop = lg, delay_s, set(drop)
        self.seen = 0
        self.q: list[np.ndarray] = []
        self.cv = threading.Condition()
        self.stop = False
        self.worker = threading.Thread(target=self._work, daemon=True)
        self.worker.start()

    def issue(self, ids, indices):
        with self.cv:
            self.q.append(ids)
            self.cv.notify()

    def flush(self):
        pass

    def _work(self):
        while True:
            with self.cv:
                while not self.q and not self.stop:
                    self.cv.wait()
                if self.stop:
                    return
                ids = self.q.pop(0)
            time.sleep(self.delay)
            keep = np.array([i for k, i in enumerate(ids.tolist(), self.seen)
                             if k not in self.drop], dtype=np.uint64)
            self.seen += len(ids)
            self.lg.complete(keep)

    def close(self):
        with self.cv:
            self.stop = True
            self.cv.notify()


def settings(scenario, **kw):
    s = lgm.Settings()
    s.scenario = scenario
    s.min_duration_s = 0.2
    s.min_query_count = 10
    s.total_sample_count = 100
    s.performance_sample_count = 20
    for k, v in kw.items():
        setattr(s, k, v)
    return s


@pytest.mark.parametrize("scenario,kw", [
    (lgm.Scenario.SingleStream, {}),
    (lgm.Scenario.MultiStream, {"samples_per_query": 4, "target_latency_percentile": 0.99,
                                "min_query_count": 700}),
    (lgm.Scenario.Server, {"server_target_qps": 2000.0, "latency_bound_s": 0.05,
                           "target_latency_percentile": 0.99, "min_query_count": 700}),
    (lgm.Scenario.Offline, {"offline_expected_qps": 1000.0}),
])
def test_every_scenario_runs_valid_with_an_inline_sut(scenario, kw):
    lg = lgm.LoadGen()
    lib = Library()
    sut = PacedSut(lg) if scenario == lgm.Scenario.Offline else InlineSut(lg)
    out = lg.run(sut, lib, settings(scenario, **kw))
    m = out["summary"]
    assert m.valid, m.invalid_reasons
    assert m.completed_samples == m.issued_samples > 0
    assert m.duration_s >= 0.2
    # performance samples come from the loaded set only, which is loaded once and unloaded
    assert len(lib.loaded) == 1 and len(lib.unloaded) == 1
    assert set(out["records"]["index"].tolist()) <= set(lib.loaded[0].tolist())
    assert len(lib.loaded[0]) == 20 and len(set(lib.loaded[0].tolist())) == 20


def test_offline_issues_everything_in_one_call():
    lg = lgm.LoadGen()
    sut = InlineSut(lg)
    out = lg.run(sut, Library(), settings(lgm.Scenario.Offline, offline_expected_qps=500.0))
    assert sut.calls == 1
    assert out["summary"].issued_samples == max(10, int(np.ceil(500 * 0.2 * 1.1)))


def test_multistream_queries_hold_samples_per_query():
    lg = lgm.LoadGen()
    sut = InlineSut(lg)
    lg.run(sut, Library(), settings(lgm.Scenario.MultiStream, samples_per_query=8))
    assert all(len(i) == 8 for i in sut.indices)


def test_server_latency_counts_from_scheduled_arrival():
    """The first call holds the issue thread 100 ms: the queries that fall due meanwhile are
    issued late, together, and their latency counts from their scheduled arrival, lateness
    included (MLPerf's rule: a late issue is the system's latency)."""
    lg = lgm.LoadGen()
    issued_at: dict[int, int] = {}

    class FirstCallStalls(InlineSut):
        def issue(self, ids, indices):
            if self.calls == 0:
                time.sleep(0.1)
            now = lgm.now_ns()
            issued_at.update((i, now) for i in ids.tolist())
            super().issue(ids, indices)

    sut = FirstCallStalls(lg)
    s = settings(lgm.Scenario.Server, server_target_qps=400.0, latency_bound_s=1.0,
                 target_latency_percentile=0.99, min_query_count=100, warmup_s=0.0,
                 warmup_queries=0)
    out = lg.run(sut, Library(), s)
    rec = out["records"]
    scheduled = rec["issue_ns"]
    # Each query's issue time in the records is its arrival on the seeded Poisson schedule ...
    offsets = lgm.server_schedule(400.0, 100, 0.2, s.schedule_seed)
    np.testing.assert_array_equal(scheduled - out["start_ns"], offsets[rec["query"]])
    # ... the queries that fell due during the stall were issued late ...
    # Ids are opaque (they carry their run's tag); the records list samples in id order.
    actual = np.array([t for _, t in sorted(issued_at.items())], np.int64)
    assert len(actual) == len(rec["index"])
    lateness = actual - scheduled
    assert (lateness >= 0).all() and (lateness > 20_000_000).sum() >= 5
    # ... and their latency includes that lateness.
    assert (rec["complete_ns"] - scheduled >= lateness).all()
    assert sut.calls < len(offsets)  # arrivals during the stall were issued together


@pytest.mark.parametrize("spin_us", [0.0, 20.0, 5000.0])
def test_server_never_issues_an_arrival_before_it_is_due(spin_us):
    """Whether the issue thread sleeps the whole gap (spin 0), sleeps then spins, or spins gaps
    shorter than the spin outright, no query is issued before its scheduled arrival, and the
    setting reaches the load generator."""
    lg = lgm.LoadGen()
    issued_at: dict[int, int] = {}

    class Stamps(InlineSut):
        def issue(self, ids, indices):
            now = lgm.now_ns()
            issued_at.update((i, now) for i in ids.tolist())
            super().issue(ids, indices)

    s = settings(lgm.Scenario.Server, server_target_qps=1000.0, latency_bound_s=1.0,
                 target_latency_percentile=0.99, min_query_count=500, spin_us=spin_us)
    assert s.spin_us == spin_us
    out = lg.run(Stamps(lg), Library(), s)
    assert out["summary"].valid, out["summary"].invalid_reasons
    rec = out["records"]
    actual = np.array([t for _, t in sorted(issued_at.items())], np.int64)[-len(rec["index"]):]
    assert (actual >= rec["issue_ns"]).all()


@pytest.mark.parametrize("spin_us", [-1.0, 2e6])
def test_spin_out_of_range_is_refused(spin_us):
    with pytest.raises(ValueError, match="spin_us"):
        lgm.validate(settings(lgm.Scenario.SingleStream, spin_us=spin_us))


def test_accuracy_mode_issues_every_sample_exactly_once():
    lg = lgm.LoadGen()
    lib, sut = Library(), InlineSut(lg)
    s = settings(lgm.Scenario.Offline, mode=lgm.Mode.Accuracy, total_sample_count=57,
                 performance_sample_count=10)
    out = lg.run(sut, lib, s)
    assert sorted(np.concatenate(sut.indices).tolist()) == list(range(57))
    assert len(lib.loaded) == 6  # chunks of the performance sample count
    assert out["summary"].valid


def test_warmup_is_excluded_from_the_measured_window():
    lg = lgm.LoadGen()
    sut = InlineSut(lg)
    out = lg.run(sut, Library(), settings(lgm.Scenario.SingleStream, warmup_queries=25,
                                          min_duration_s=0.0))
    assert sut.calls == 25 + out["summary"].issued_queries
    assert out["summary"].issued_queries == 10


def test_a_lost_sample_times_out_and_invalidates_the_run():
    lg = lgm.LoadGen()
    sut = ThreadedSut(lg, drop={3})
    try:
        out = lg.run(sut, Library(), settings(lgm.Scenario.SingleStream, sample_timeout_s=0.3))
    finally:
        sut.close()
    m = out["summary"]
    assert not m.valid
    assert any("not completed within the sample timeout" in r for r in m.invalid_reasons)
    assert m.completed_samples == 3  # what was measured before the loss is kept



def test_a_completion_after_the_run_returned_is_ignored():
    """A sample that times out and completes late, after run() has returned and freed its log,
    must neither crash nor leak into the next run."""
    lg = lgm.LoadGen()
    held = []

    class Holding(InlineSut):
        def issue(self, ids, indices):
            if self.calls == 3:
                self.calls += 1
                held.append(ids.copy())  # completed only after the run is over
                return
            super().issue(ids, indices)

    out = lg.run(Holding(lg), Library(), settings(lgm.Scenario.SingleStream,
                                                  sample_timeout_s=0.2))
    assert not out["summary"].valid and held
    lg.complete(held[0])  # late: the run is closed
    again = lg.run(InlineSut(lg), Library(), settings(lgm.Scenario.SingleStream))
    assert again["summary"].valid, again["summary"].invalid_reasons
    assert again["summary"].completed_samples == again["summary"].issued_samples

def test_an_exception_in_the_sut_aborts_with_its_message():
    lg = lgm.LoadGen()

    class Faulty(InlineSut):
        def issue(self, ids, indices):
            if self.calls == 5:
                raise RuntimeError("device lost")
            super().issue(ids, indices)

    out = lg.run(Faulty(lg), Library(), settings(lgm.Scenario.SingleStream))
    m = out["summary"]
    assert not m.valid and m.completed_samples == 5
    assert any("RuntimeError: device lost" in r for r in out["errors"])


def test_duplicate_and_unknown_completions_invalidate():
    lg = lgm.LoadGen()

    class Twice(InlineSut):
        def issue(self, ids, indices):
            super().issue(ids, indices)
            if self.calls == 2:
                self.lg.complete(ids)
                self.lg.complete(np.array([10**9], dtype=np.uint64))

    out = lg.run(Twice(lg), Library(), settings(lgm.Scenario.SingleStream))
    assert not out["summary"].valid
    assert any("2 completion(s)" in e for e in out["errors"])


def test_completion_from_worker_threads():
    lg = lgm.LoadGen()
    sut = ThreadedSut(lg, delay_s=0.001)
    try:
        out = lg.run(sut, Library(), settings(lgm.Scenario.Server, server_target_qps=300.0,
                                              latency_bound_s=0.5, min_query_count=100))
    finally:
        sut.close()
    m = out["summary"]
    assert m.completed_samples == m.issued_samples and m.latency.min >= 0.001e9


def test_sigint_interrupts_the_run_and_keeps_measurements():
    lg = lgm.LoadGen()
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    out = lg.run(InlineSut(lg), Library(), settings(lgm.Scenario.SingleStream, min_duration_s=30))
    assert out["interrupted"]
    assert any("Ctrl-C" in e for e in out["errors"])
    assert out["summary"].completed_samples > 0 and not out["summary"].valid


def test_progress_and_abort_from_another_thread():
    lg = lgm.LoadGen()
    seen = []

    def watcher():
        time.sleep(0.2)
        seen.append(lg.progress())
        lg.abort("stopped by the test")

    t = threading.Thread(target=watcher)
    t.start()
    out = lg.run(InlineSut(lg), Library(), settings(lgm.Scenario.SingleStream, min_duration_s=30))
    t.join()
    assert seen and seen[0][0] == "measure" and seen[0][3] > 0
    assert "stopped by the test" in out["errors"] and not out["interrupted"]



def test_offline_query_is_sized_again_when_calibration_underestimates(capsys, tmp_path,
                                                                      monkeypatch):
    """Calibration can run before caches, JIT compilers or thread pools are warm; here it is made
    to report 50 samples/s for a null backend that does ~25 us a sample. The calibrated Offline
    query then ends long before the minimum duration, so the runner sizes it again from the rate
    the performance pass measured, and the run is valid."""
    from cli_helpers import run_json
    from hwbench.passes.run import Run

    monkeypatch.setattr(Run, "calibrate", lambda self: 50.0)
    code, doc = run_json(capsys, tmp_path / "runs", "--workload", "tiny", "--backend", "null",
                         "--backend-opt", "service_time_us=25", "--scenario", "offline",
                         "--duration", "1", "--warmup", "0", "--min-queries", "1")
    assert doc["settings"].get("offline_resized", 0) >= 1
    assert doc["metrics"]["min_duration_met"] is True
    assert code == 0, doc["invalid_reasons"]
    assert doc["settings"]["loadgen"]["offline_expected_qps"] > 1000


class StuckSut(InlineSut):
    """Completes inline, except that its 4th issue() blocks until `release` is set: a backend
    call that never returns, for as long as the test wants."""

    def __init__(self, lg):
        super().__init__(lg)
        self.release = threading.Event()

    def issue(self, ids, indices):
        if self.calls == 3:
            self.calls += 1
            self.release.wait()
            return
        super().issue(ids, indices)


def _run_stuck(lg, sut, s, bound_s=10.0):
    """Runs `s`; the stuck call is released after 30 s so that a load generator that waits for
    it (as before the fix) ends the test instead of hanging it."""
    timer = threading.Timer(30.0, sut.release.set)
    timer.start()
    t0 = time.monotonic()
    try:
        out = lg.run(sut, Library(), s)
    finally:
        timer.cancel()
    # Not a timing figure: the bound only tells "ended" from "waited for the stuck call".
    assert time.monotonic() - t0 < bound_s, "run() waited for the stuck call"
    return out


def test_a_call_stuck_on_the_issue_thread_is_abandoned_at_the_sample_timeout():
    lg = lgm.LoadGen()
    sut = StuckSut(lg)
    try:
        out = _run_stuck(lg, sut, settings(lgm.Scenario.SingleStream, min_duration_s=30,
                                           sample_timeout_s=0.3, warmup_queries=0))
        assert out["abandoned"] and not out["interrupted"]
        assert any("not completed within the sample timeout" in e for e in out["errors"])
        assert any(e.startswith("abandoned a stuck call: the system under test's issue()")
                   for e in out["errors"]), out["errors"]
        m = out["summary"]
        assert not m.valid and m.completed_samples == 3  # what was measured before it is kept
        # The abandoned thread still uses this load generator: it never runs again.
        assert lg.retired
        with pytest.raises(RuntimeError, match="create a new one"):
            lg.run(InlineSut(lg), Library(), settings(lgm.Scenario.SingleStream))
    finally:
        sut.release.set()  # the abandoned thread comes back, finds its run over, and ends
    again = lgm.LoadGen()
    assert again.run(InlineSut(again), Library(),
                     settings(lgm.Scenario.SingleStream))["summary"].valid


def test_sigint_abandons_a_call_stuck_on_the_issue_thread():
    lg = lgm.LoadGen()
    sut = StuckSut(lg)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        out = _run_stuck(lg, sut, settings(lgm.Scenario.SingleStream, min_duration_s=30,
                                           warmup_queries=0))
    finally:
        sut.release.set()
    assert out["interrupted"] and out["abandoned"]
    assert any("Ctrl-C" in e for e in out["errors"])
    assert out["summary"].completed_samples == 3


def test_a_long_offline_issue_call_that_keeps_completing_is_not_abandoned():
    """The watchdog judges completions, not issue() calls: an Offline issue() that holds the
    issue thread for several sample timeouts while its samples keep completing is valid."""
    lg = lgm.LoadGen()
    s = settings(lgm.Scenario.Offline, offline_expected_qps=3000.0, sample_timeout_s=0.1)
    out = lg.run(PacedSut(lg), Library(), s)  # ~0.66 s inside one issue(), 10 ms per batch
    assert out["summary"].valid, out["summary"].invalid_reasons
    assert not out["abandoned"]
