"""Concurrency in the SUT adapter: several workers at once, dynamic batching for Server, every id
completed exactly once, and a fault in a worker recorded. Real backends throughout (``null`` with
a service time is a FIFO worker that busy-waits with the GIL released; ``cpu`` is onnxruntime)."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from cli_helpers import FAST, run_json
from hwbench import backends
from hwbench.backends.null import NullBackend
from hwbench.harness.workers import SampleQueue


class CountingNull(NullBackend):
    """The real null backend, counting how many calls run at once and the batch sizes seen."""

    name = "counting-null"
    lock = threading.Lock()
    active = peak = 0
    sizes: list[int] = []
    fail_at = 0  # the call that raises (0: none)

    def run(self, batch):
        cls = CountingNull
        with cls.lock:
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
            cls.sizes.append(len(batch))
            failing = len(cls.sizes) == cls.fail_at
        try:
            if failing:
                raise RuntimeError("simulated device fault")
            return super().run(batch)
        finally:
            with cls.lock:
                cls.active -= 1


@pytest.fixture
def counting(monkeypatch):
    real = backends.backend_class
    monkeypatch.setattr(backends, "backend_class",
                        lambda name: CountingNull if name == "counting-null" else real(name))
    CountingNull.active = CountingNull.peak = CountingNull.fail_at = 0
    CountingNull.sizes = []
    return CountingNull


def _ids_once(out_dir, doc) -> None:
    cols = np.load(out_dir / doc["run_id"] / "samples.npz")
    assert np.all(cols["complete_ns"] >= cols["issue_ns"])  # every issued sample completed
    m = doc["metrics"]
    assert m["completed_samples"] == m["issued_samples"] == len(cols["issue_ns"])


@pytest.mark.parametrize("workers", [1, 3])
def test_offline_workers_really_run_at_once(capsys, out_dir, counting, workers):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "counting-null",
                         "--instances", str(workers), "--batch-size", "4", *FAST,
                         "--expected-qps", "20000", "--backend-opt", "service_time_us=200")
    assert code == 0, doc["invalid_reasons"]
    assert counting.peak == workers
    # Not thread-safe: each worker computes on a backend instance of its own.
    assert doc["backend_info"]["concurrency"] == {"workers": workers,
                                                  "backend_instances": workers}
    assert max(counting.sizes) == 4
    _ids_once(out_dir, doc)


def test_server_dynamic_batching_gathers_queued_samples(capsys, out_dir, counting):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "counting-null",
                         "--scenario", "server", "--target-qps", "2000", "--latency-bound-ms",
                         "50", "--min-queries", "700", *FAST[:4], "--max-batch", "8",
                         "--batch-timeout-us", "5000", "--backend-opt", "service_time_us=50")
    assert code == 0, doc["invalid_reasons"]
    # Poisson arrivals at 2000/s and a 5 ms wait: batches form, none larger than the maximum.
    assert max(counting.sizes) > 1 and max(counting.sizes) <= 8
    assert sum(counting.sizes) >= doc["metrics"]["completed_samples"]
    _ids_once(out_dir, doc)


def test_shared_thread_safe_backend_keeps_every_output_with_its_sample(capsys, out_dir):
    """Two workers on one onnxruntime session, batches of varying size: accuracy is exactly the
    single-worker figure, so no output went to another sample's index."""
    args = ("--workload", "digits", "--backend", "cpu", "--mode", "accuracy")
    _, single = run_json(capsys, out_dir, *args)
    code, doc = run_json(capsys, out_dir, *args, "--instances", "2", "--batch-size", "5",
                         "--batch-timeout-us", "200")
    assert code == 0, doc["invalid_reasons"]
    assert doc["backend_info"]["concurrency"] == {"workers": 2, "backend_instances": 1}
    assert doc["accuracy"]["value"] == single["accuracy"]["value"]
    assert doc["accuracy"]["count"] == 539


def test_fault_in_a_worker_aborts_and_keeps_what_was_measured(capsys, out_dir, counting):
    counting.fail_at = 60
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "counting-null",
                         "--scenario", "offline", "--instances", "2", *FAST, "--warmup", "0",
                         "--expected-qps", "2000", "--backend-opt", "service_time_us=100")
    assert code == 3 and not doc["valid"]
    assert any("failed in a worker: RuntimeError: simulated device fault" in r
               for r in doc["invalid_reasons"])
    m = doc["metrics"]
    assert 0 < m["completed_samples"] < m["issued_samples"]
    cols = np.load(out_dir / doc["run_id"] / "samples.npz")
    assert (cols["complete_ns"] >= 0).sum() == m["completed_samples"]


def test_queue_takes_batches_across_chunks_in_arrival_order():
    q = SampleQueue()
    q.put(np.arange(3, dtype=np.uint64), np.arange(3))
    q.put(np.arange(3, 10, dtype=np.uint64), np.arange(3, 10))
    ids, idx = q.take(4, 0.0)
    assert ids.tolist() == [0, 1, 2, 3] and idx.tolist() == [0, 1, 2, 3]
    ids, _ = q.take(4, 0.0)
    assert ids.tolist() == [4, 5, 6, 7]
    ids, _ = q.take(4, 0.0)  # fewer queued than asked, no wait: what there is
    assert ids.tolist() == [8, 9]
    q.close()
    assert q.take(4, 0.0) is None


def test_queue_wait_ends_at_flush_with_a_partial_batch():
    q = SampleQueue()
    q.put(np.array([7], dtype=np.uint64), np.array([7]))
    got = []
    t = threading.Thread(target=lambda: got.append(q.take(8, 3600.0)))
    t.start()
    q.put(np.array([8], dtype=np.uint64), np.array([8]))
    q.flush()  # without it the batch would wait an hour for six more samples
    t.join(timeout=60)
    assert not t.is_alive() and got[0][0].tolist() == [7, 8]


def test_bad_concurrency_settings_are_one_line_errors(capsys, out_dir):
    from cli_helpers import cli

    for args, text in ((("--instances", "0"), "--instances must be >= 1"),
                       (("--batch-timeout-us", "-1"), "--batch-timeout-us must be >= 0")):
        code, _, err = cli(capsys, "run", "--workload", "tiny", *args)
        assert code == 2 and text in err and len(err.strip().splitlines()) == 1


class LimitedNull(NullBackend):
    """The real null backend declaring a batch limit, as a TensorRT engine's profile does."""

    name = "limited-null"

    def info(self):
        return dataclasses.replace(super().info(), max_batch_size=4)


def test_batch_larger_than_the_backends_limit_is_refused(capsys, out_dir, monkeypatch):
    from cli_helpers import cli

    real = backends.backend_class
    monkeypatch.setattr(backends, "backend_class",
                        lambda name: LimitedNull if name == "limited-null" else real(name))
    code, _, err = cli(capsys, "run", "--workload", "tiny", "--backend", "limited-null",
                       "--max-batch", "8", "--quiet", "--output", str(out_dir))
    assert code == 2 and "--batch-size 8 exceeds backend limited-null's limit of 4" in err
    assert not out_dir.exists()


def test_close_leaves_a_stuck_worker_behind_and_names_it():
    """A worker whose backend call never returns: close() returns after its grace and names the
    worker, instead of joining it without a bound."""
    from hwbench.harness.loadgen import LoadGen
    from hwbench.harness.workers import WorkerSut

    release, entered = threading.Event(), threading.Event()

    def stuck(batch):
        entered.set()
        release.wait(30.0)  # released at the end of the test; 30 s bounds a regression
        return np.zeros((len(batch), 1), np.float32)

    class Library:
        def gather(self, indices):
            return np.zeros((len(indices), 1), np.float32)

    sut = WorkerSut([stuck, stuck], Library(), LoadGen(), batch_size=1)
    try:
        sut.issue(np.array([1], np.uint64), np.array([0], np.uint64))
        assert entered.wait(10.0)
        done = threading.Event()
        closer = threading.Thread(target=lambda: (sut.close(), done.set()), daemon=True)
        closer.start()
        # Not a timing figure: close() must end instead of waiting for the call.
        assert done.wait(10.0), "close() waited for the stuck call"
        assert len(sut.abandoned) == 1 and sut.abandoned[0].startswith("hwbench-worker-")
    finally:
        release.set()
