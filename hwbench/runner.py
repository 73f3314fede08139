"""One run through the house: config -> workload -> backend -> load generator -> result on disk.

Whatever happens once measuring has begun (a backend fault, Ctrl-C, a bug), the run is written:
marked invalid with the reason, with everything measured so far.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hwbench import (backends, checks, document, peak, precision, robustness, settings,
                     system, telemetry, workloads)
from hwbench.config import RunConfig, ScenarioSpec, load_scenario
from hwbench.errors import (EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, HwbenchError,
                            UsageError)
from hwbench.loadgen import LoadGen, Scenario
from hwbench.progress import Reporter
from hwbench.results import default_output_root, new_run_id, write_run
from hwbench.samples import SampleLibrary
from hwbench.summary import summary_text
from hwbench.sut import Sut, make_sut
from hwbench.telemetry.power import requested_failures
from hwbench.workers import Instances

EXIT_VALID = EXIT_OK  # the exit codes' one table is in hwbench.errors
OFFLINE_SAMPLE_CAP = 16_000_000  # a calibrated Offline query never holds more samples
# A calibration pass is short and machines are noisy: the Offline query is sized for this much more
# than the calibrated throughput, so that a slightly faster performance pass still lasts long enough.
OFFLINE_CALIBRATION_MARGIN = 1.25
OFFLINE_RESIZES = 2


@dataclass
class Outcome:
    """A finished run: its result document, where it was written, and the exit status."""

    result: dict[str, Any]
    run_dir: Path | None
    exit_code: int


class _Run:
    """State of one run while it executes."""

    def __init__(self, cfg: RunConfig, reporter: Reporter) -> None:
        self.cfg = cfg
        self.say = reporter
        self.spec: ScenarioSpec = load_scenario(cfg.scenario, cfg.profile)
        self.workload = workloads.create(cfg.workload, cfg.model, cfg.dataset, cfg.seed)
        unscorable = cfg.robustness and robustness.missing_labels(self.workload)
        if unscorable:
            raise UsageError(unscorable)
        self.instances = Instances(lambda: backends.create(cfg.backend, cfg.backend_options),
                                   cfg.instances)
        self.backend = self.instances.primary
        self.lg = LoadGen()
        self.library = SampleLibrary(self.workload)
        self.doc = document.new_document(new_run_id(cfg.workload, cfg.scenario, cfg.backend),
                                         cfg.to_dict(), system.describe())
        self.samples: dict[str, dict] = {}
        self.files: dict[str, Any] = {}  # JSON documents written beside result.json
        self.internal_error = False
        self.artifact: backends.ModelArtifact | None = None  # the model the backend runs
        # Opened now, so that a power source the user asked for fails before anything loads.
        sampled = cfg.mode != "accuracy" and cfg.telemetry_hz > 0
        self.telemetry = telemetry.Session(cfg) if sampled else None

    # --- passes ------------------------------------------------------------------------------
    def loadgen_pass(self, s, label: str, keep_outputs: bool = False) -> tuple[dict, Sut]:
        sut = make_sut(self.instances, self.library, self.lg, self.cfg.batch_size,
                       self.cfg.batch_timeout_us, keep_outputs)
        try:
            with self.say.watch(self.lg, label):
                out = self.lg.run(sut, sut.library, s)
        finally:
            sut.close()
        if sut.error is not None and not isinstance(sut.error, Exception):
            raise sut.error  # KeyboardInterrupt or SystemExit raised inside the backend
        if out["interrupted"]:
            self.doc["interrupted"] = True
        return out, sut

    def calibrate(self) -> float:
        """Samples per second of a short Offline pass, for settings the user did not give."""
        base = settings.build(self.cfg, self.spec, self.workload)
        base.scenario = Scenario.Offline
        base.min_duration_s, base.warmup_s, base.warmup_queries = 0.0, 0.0, 2
        base.max_query_count = 0
        n = max(8, 2 * self.cfg.batch_size)
        while True:
            base.min_query_count = n
            out, _ = self.loadgen_pass(base, "calibrating")
            m = out["summary"]
            if out["errors"] or self.doc["interrupted"]:
                raise _Stop(out["errors"] or ["interrupted while calibrating"])
            if m.duration_s >= 0.5 or n >= (1 << 20):
                break
            n *= 8
        qps = m.samples_per_second
        self.say.info(f"calibrated: {qps:,.1f} samples/s at batch size {self.cfg.batch_size}")
        return qps

    def accuracy(self) -> None:
        s = settings.build(self.cfg, self.spec, self.workload, accuracy=True)
        out, sut = self.loadgen_pass(s, "accuracy", keep_outputs=True)
        self.samples["samples_accuracy.npz"] = document.samples_columns(out["records"],
                                                                        out["start_ns"])
        self.doc["invalid_reasons"] += [f"accuracy pass: {e}" for e in out["errors"]]
        why_not = self.workload.accuracy_unavailable()
        if why_not or out["errors"]:
            self.doc["accuracy_note"] = why_not or "the accuracy pass did not complete"
            return
        report = self.workload.score(sut.outputs)
        full = {"metric": report.metric, "value": report.value, "reference": report.reference,
                "target": report.target, "passed": report.passed, **report.details}
        self.files["accuracy.json"] = full
        # The result keeps the summary; bulky tables (a confusion matrix) live in accuracy.json.
        self.doc["accuracy"] = {k: v for k, v in full.items() if k != "confusion"}
        self.doc["validated"]["accuracy"] = report.passed
        if not report.passed:
            self.doc["invalid_reasons"].append(
                f"accuracy {report.metric} {report.value:.4f} is below the target {report.target:.4f}")

    def performance(self, target_qps: float = 1.0) -> dict:
        expected = self.cfg.expected_qps or 1.0
        calibrated = self.spec.loadgen_scenario == "Offline" and self.cfg.expected_qps is None
        if calibrated:
            expected = OFFLINE_CALIBRATION_MARGIN * self.calibrate()
        s = settings.build(self.cfg, self.spec, self.workload, target_qps=target_qps,
                           expected_qps=expected)
        if calibrated and not s.max_query_count:
            s.max_query_count = OFFLINE_SAMPLE_CAP  # the load generator caps the query's size
        out = self.sampled_pass(s)
        if calibrated:
            out = self.resize_offline(s, out)
        self.doc["settings"]["loadgen"] = settings.to_dict(s)
        shortfalls = settings.mlperf_shortfalls(s, self.spec, self.workload)
        self.doc["settings"]["meets_mlperf_minimums"] = not shortfalls
        self.doc["settings"]["mlperf_shortfalls"] = shortfalls
        m = out["summary"]
        self.doc["metrics"] = document.metrics(m, out["stale_completions"])
        self.doc["validated"]["performance"] = bool(m.valid)
        self.samples["samples.npz"] = document.samples_columns(out["records"], out["start_ns"])
        if self.telemetry is not None:
            self.doc["power"], self.doc["telemetry"], self.samples["telemetry.npz"] = \
                self.telemetry.results(out["start_ns"], self.doc["metrics"])
        return out

    def resize_offline(self, s, out: dict) -> dict:
        """A calibration pass can run before caches, JIT compilers or thread pools are warm; when
        the calibrated Offline query then ends before the minimum duration, it is sized again
        from the rate the performance pass itself measured (at most OFFLINE_RESIZES times)."""
        for attempt in range(OFFLINE_RESIZES):
            m = out["summary"]
            if (m.meets_min_duration or out["errors"] or self.doc["interrupted"]
                    or m.samples_per_second <= 0):
                break
            s.offline_expected_qps = OFFLINE_CALIBRATION_MARGIN * m.samples_per_second
            self.doc["settings"]["offline_resized"] = attempt + 1
            self.say.info(f"the Offline query ended after {m.duration_s:.2f} s: sizing it again "
                          f"for {m.samples_per_second:,.1f} samples/s")
            out = self.sampled_pass(s)
        return out

    def sampled_pass(self, s) -> dict:
        """The performance pass, with the telemetry sampler running beside it."""
        if self.telemetry is None:
            return self.loadgen_pass(s, "performance")[0]
        self.telemetry.start()
        try:
            return self.loadgen_pass(s, "performance")[0]
        finally:
            self.telemetry.stop()

    def server_qps(self) -> float:
        if self.cfg.target_qps is not None:
            return self.cfg.target_qps
        qps = 0.5 * self.calibrate()
        self.say.info(f"no --target-qps given: using half the calibrated throughput, {qps:,.1f}")
        self.doc["settings"]["target_qps_calibrated"] = qps
        return qps

    def execute(self) -> None:
        mode = self.cfg.mode
        if mode in ("accuracy", "both"):
            self.accuracy()
        if mode in ("performance", "both") and not self.doc["interrupted"]:
            qps = self.server_qps() if self.spec.loadgen_scenario == "Server" else 1.0
            out = self.performance(target_qps=qps)
            self.doc["invalid_reasons"] += list(out["summary"].invalid_reasons)
        if mode == "find-peak":
            peak.find_peak(self)
        if not self.doc["interrupted"]:
            checks.fidelity(self)
        if self.cfg.robustness and not self.doc["interrupted"]:
            checks.robustness(self)


class _Stop(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def execute(cfg: RunConfig, reporter: Reporter,
            annotate: Callable[[dict[str, Any]], None] | None = None) -> Outcome:
    """Runs `cfg` and writes its result. Bad input raises UsageError before anything runs.

    `annotate`, when given, may add to the finished document just before it is written (a
    ``--repeat`` series records its group and spread this way).
    """
    root = Path(cfg.output) if cfg.output else default_output_root()
    if root.exists() and not root.is_dir():  # found now, not after measuring
        raise UsageError(f"--output {root} is a file, not a directory: give a directory for the "
                         "runs (created if missing)")
    run = _Run(cfg, reporter)
    try:
        source = run.workload.artifact(progress=reporter.info)
        run.workload.prepare(progress=reporter.info)
        artifact = run.artifact = precision.convert(source, cfg.precision, run.workload,
                                                    reporter.info)
        run.instances.load(artifact)
        info = run.backend.info()
        if info.max_batch_size and cfg.batch_size > info.max_batch_size:
            raise UsageError(f"--batch-size {cfg.batch_size} exceeds backend {info.name}'s "
                             f"limit of {info.max_batch_size}: lower it or raise the backend's")
    except BaseException:
        run.instances.close()
        _close_telemetry(run)
        raise
    run.doc["backend_info"] = _info_dict(info)
    run.doc["backend_info"]["concurrency"] = run.instances.describe()
    run.doc["workload_info"] = run.workload.describe()
    run.doc["workload_info"]["artifact"] = precision.describe(artifact, source)
    try:
        run.execute()
    except KeyboardInterrupt:
        run.doc["interrupted"] = True
        run.doc["invalid_reasons"].append("interrupted by the user (Ctrl-C)")
    except _Stop as stop:
        run.doc["invalid_reasons"] += stop.reasons
    except HwbenchError as exc:
        run.doc["invalid_reasons"].append(str(exc))
    except Exception as exc:  # a bug: keep what was measured, say what broke
        run.internal_error = True
        run.doc["invalid_reasons"].append(f"internal error: {type(exc).__name__}: {exc}")
        run.doc["traceback"] = traceback.format_exc()
    finally:
        run.doc["backend_info"]["device_compute_ms"] = _spread(run.instances.device_compute_ms())
        run.instances.close()
        _close_telemetry(run)
    return _finish(run, annotate)


def _close_telemetry(run: _Run) -> None:
    if run.telemetry is not None:
        run.telemetry.close()


def _finish(run: _Run, annotate: Callable[[dict[str, Any]], None] | None = None) -> Outcome:
    doc = run.doc
    doc["invalid_reasons"] += requested_failures(doc["power"])
    v = doc["validated"]
    doc["valid"] = (not doc["invalid_reasons"] and not doc["interrupted"]
                    and v["performance"] is not False and v["accuracy"] is not False
                    and (v["performance"] or v["accuracy"]) is True)
    if doc["accuracy"] is None and doc["accuracy_note"] is None:
        doc["accuracy_note"] = (run.workload.accuracy_unavailable()
                                or "accuracy not run: use --mode accuracy or both")
    checks.explain_missing(run)
    if annotate is not None:
        annotate(doc)
    root = Path(run.cfg.output) if run.cfg.output else default_output_root()
    run_dir = write_run(root, doc, summary_text(doc), run.samples, run.files)
    if doc["interrupted"]:
        code = EXIT_INTERRUPTED
    elif run.internal_error:
        code = EXIT_INTERNAL
    else:
        code = EXIT_VALID if doc["valid"] else EXIT_INVALID
    return Outcome(doc, run_dir, code)


def _info_dict(info: backends.BackendInfo) -> dict[str, Any]:
    return {"name": info.name, "device": info.device, "precision": info.precision,
            "max_batch_size": info.max_batch_size, "versions": info.versions,
            "options": info.options}


def _spread(times_ms: list[float] | None) -> dict[str, float] | None:
    """The device's own compute times (CUDA events), beside the load generator's latency."""
    if not times_ms:
        return None
    t = sorted(times_ms)
    return {"calls": len(t), "mean": sum(t) / len(t), "p50": t[len(t) // 2],
            "p90": t[int(0.9 * len(t))], "max": t[-1]}
