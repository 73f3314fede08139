"""The passes of one run, as a public interface: ``Run`` holds a run's state while it executes,
and its methods are the load-generator passes (calibrate, accuracy, performance). The runner
sequences them; find-peak (``hwbench.passes.peak``) and the post-run checks
(``hwbench.passes.checks``) drive and read the same object.
"""
from __future__ import annotations

from typing import Any

from hwbench import backends, workloads
from hwbench.config import RunConfig, ScenarioSpec, load_scenario
from hwbench.errors import PassStopped, UsageError
from hwbench.harness import arrivals, queueing, settings
from hwbench.harness.loadgen import LoadGen, Scenario, note_abandoned
from hwbench.harness.pipeline import EncodedLibrary, PipelineSut
from hwbench.harness.progress import Reporter
from hwbench.harness.samples import make_library
from hwbench.harness.sut import Sut, make_sut
from hwbench.harness.workers import CLOSE_GRACE_S, Instances
from hwbench.quality import reference, robustness
from hwbench.results import document, windows
from hwbench.results.store import new_run_id
from hwbench.telemetry import machine as system
from hwbench.telemetry.session import Session
from hwbench.workloads import AccuracyReference

OFFLINE_SAMPLE_CAP = 16_000_000  # a calibrated Offline query never holds more samples
# A calibration pass is short and machines are noisy: the Offline query is sized for this much more
# than the calibrated throughput, so that a slightly faster performance pass still lasts long enough.
OFFLINE_CALIBRATION_MARGIN = 1.25
OFFLINE_RESIZES = 2


class Run:
    """One run while it executes: its configuration, the objects it drives, and what it has
    measured so far.

    Public state, read and filled by the passes here and by the steps that follow them
    (``hwbench.passes.peak``, ``hwbench.passes.checks``, ``hwbench.passes.runner``):

    * ``cfg``, ``spec``, ``workload``, ``backend`` (the primary instance), ``instances``,
      ``artifact`` (the model the backend runs; set once it is loaded), ``say`` (progress);
    * ``doc``: the result document, filled section by section (see ``hwbench.results.document``);
    * ``samples``: name -> columns of the .npz files written beside result.json;
    * ``files``: name -> JSON documents written beside result.json;
    * ``telemetry``: the sampler session of the performance pass, or None;
    * ``stuck``: a backend call of a pass did not return and was abandoned (its reason is in
      ``invalid_reasons``); from then on nothing may call or close a backend of this run.

    Passes (each one load-generator run through a fresh SUT): ``calibrate``, ``accuracy``,
    ``performance`` (with ``resize_offline`` and ``sampled_pass``), ``server_qps``. A pass that
    cannot go on raises ``PassStopped``; a backend fault raises what the backend raised. All are
    called from the thread that runs the run; none is thread-safe.
    """

    def __init__(self, cfg: RunConfig, reporter: Reporter) -> None:
        self.cfg = cfg
        self.say = reporter
        self.spec: ScenarioSpec = load_scenario(cfg.scenario, cfg.profile)
        self.arrivals = arrivals.parse(cfg.arrivals)  # a bad spec or trace fails here, first
        self.workload = workloads.create(cfg.workload, cfg.model, cfg.dataset, cfg.seed,
                                         cfg.input_shapes, cfg.inputs)
        unscorable = cfg.robustness and robustness.missing_labels(self.workload)
        if unscorable:
            raise UsageError(unscorable)
        self._check_generative(cfg)
        no_files = cfg.pipeline != "model" and self.workload.encoded_unavailable()
        if no_files:
            raise UsageError(f"--pipeline {cfg.pipeline}: {no_files}")
        self.instances = Instances(lambda: backends.create(cfg.backend, cfg.backend_options),
                                   cfg.instances)
        self.backend = self.instances.primary
        self.lg = LoadGen()
        self.library = make_library(self.workload)
        # True while the passes run the whole pipeline (--pipeline full, both's second half):
        # each pass's SUT then starts from encoded files (hwbench.passes.pipeline sets it).
        self.full = False
        # A workload file's run is named by the workload it describes, not by the file's path.
        name = self.workload.name
        self.doc = document.new_document(new_run_id(name, cfg.scenario, cfg.backend),
                                         cfg.to_dict(), system.describe())
        self.doc["workload"] = name
        self.samples: dict[str, dict] = {}
        self.files: dict[str, Any] = {}  # JSON documents written beside result.json
        self.internal_error = False
        self.artifact: backends.ModelArtifact | None = None  # the model the backend runs
        self.stuck = False
        self.accuracy_outputs: dict | None = None
        self.accuracy_answers: dict | None = None
        self.performance_outputs: dict | None = None
        # Opened now, so that a power source the user asked for fails before anything loads.
        sampled = cfg.mode != "accuracy" and cfg.telemetry_hz > 0
        self.telemetry = Session(cfg) if sampled else None

    def _check_generative(self, cfg: RunConfig) -> None:
        """A generative workload needs a streaming backend and one serving loop; the token
        options mean nothing to any other workload. Found before anything loads."""
        if not self.workload.generative:
            given = [o for o, v in (("--ttft-bound-ms", cfg.ttft_bound_ms),
                                    ("--tpot-bound-ms", cfg.tpot_bound_ms),
                                    ("--llm-profile", cfg.llm_profile != "default")) if v]
            if given:
                raise UsageError(f"{given[0]} applies to generative workloads (--workload llm); "
                                 f"drop it for {self.workload.name}")
            return
        if not backends.backend_class(cfg.backend).streams:
            raise UsageError(f"backend {cfg.backend} cannot serve {self.workload.name}: "
                             f"{self.workload.backend_needed()}")
        if cfg.instances != 1 or cfg.batch_timeout_us:
            raise UsageError(f"{self.workload.name} is served by the backend's own loop, which "
                             "batches as it runs: drop --instances and --batch-timeout-us")

    # --- passes ------------------------------------------------------------------------------
    def loadgen_pass(self, s, label: str, keep_outputs: bool = False,
                     keep_top1: bool = False) -> tuple[dict, Sut | PipelineSut]:
        sut = self._sut(keep_outputs, keep_top1)
        try:
            with self.say.watch(self.lg, label):
                out = self.lg.run(sut, sut.library, s)
        finally:
            sut.close()
        if isinstance(sut, PipelineSut):  # each sample's time in each stage
            out["stages"] = sut.stage_columns(out["records"], out["first_seq"])
        self._note_stuck(out, sut.abandoned)
        if sut.error is not None and not isinstance(sut.error, Exception):
            raise sut.error  # KeyboardInterrupt or SystemExit raised inside the backend
        if out["interrupted"]:
            self.doc["interrupted"] = True
        return out, sut

    def _sut(self, keep_outputs: bool, keep_top1: bool) -> Sut | PipelineSut:
        cfg = self.cfg
        if not self.full:
            return make_sut(self.instances, self.library, self.lg, cfg.batch_size,
                            cfg.batch_timeout_us, keep_outputs, keep_top1)
        return PipelineSut(self.workload, self.instances.runs(), EncodedLibrary(self.workload),
                           self.lg, cfg.batch_size, cfg.preprocess_workers,
                           cfg.batch_timeout_us, keep_outputs, keep_top1)

    def _note_stuck(self, out: dict, workers: list[str]) -> None:
        """A call the pass left behind: the load generator's issue thread (its reason is already
        in the pass's errors) or worker threads (named here)."""
        reasons = [e for e in out["errors"] if e.startswith("abandoned")] if out["abandoned"] \
            else []
        for name in workers:
            reason = (f"abandoned a stuck call: {name}'s backend call did not return within "
                      f"{CLOSE_GRACE_S} s of the run's end (its thread is left running; its "
                      "backend is never used again)")
            self.doc["invalid_reasons"].append(reason)
            reasons.append(reason)
        for reason in reasons:
            note_abandoned(reason)
        self.stuck = self.stuck or bool(reasons)

    def loadgen_settings(self, **kw: Any):
        """The load generator's settings for a pass of this run (hwbench.harness.settings.build),
        with the arrival process parsed once, in __init__."""
        return settings.build(self.cfg, self.spec, self.workload, arrivals=self.arrivals, **kw)

    def stopped(self) -> bool:
        """Interrupted, or a call is stuck: no further pass or check may run."""
        return bool(self.doc["interrupted"]) or self.stuck

    def calibrate(self) -> float:
        """Samples per second of a short Offline pass, for settings the user did not give."""
        base = self.loadgen_settings()
        base.scenario = Scenario.Offline
        base.min_duration_s, base.warmup_s, base.warmup_queries = 0.0, 0.0, 2
        base.max_query_count = 0
        n = max(8, 2 * self.cfg.batch_size)
        while True:
            base.min_query_count = n
            out, _ = self.loadgen_pass(base, "calibrating")
            m = out["summary"]
            if out["errors"] or self.doc["interrupted"]:
                raise PassStopped(out["errors"] or ["interrupted while calibrating"])
            if m.duration_s >= 0.5 or n >= (1 << 20):
                break
            n *= 8
        qps = m.samples_per_second
        self.say.info(f"calibrated: {qps:,.1f} samples/s at batch size {self.cfg.batch_size}")
        return qps

    def accuracy(self) -> None:
        s = self.loadgen_settings(accuracy=True)
        out, sut = self.loadgen_pass(s, "accuracy", keep_outputs=True)
        self.accuracy_outputs = sut.outputs  # by sample index (hwbench.audit compares them)
        self.accuracy_answers = getattr(sut, "answers", None)  # --pipeline full: post-processed
        self.samples["samples_accuracy.npz"] = document.samples_columns(
            out["records"], out["start_ns"], out.get("stages"))
        self.doc["invalid_reasons"] += [f"accuracy pass: {e}" for e in out["errors"]]
        why_not = self.workload.accuracy_unavailable()
        if not self.backend.info().computes:
            why_not = (f"backend {self.cfg.backend} computes nothing (its outputs are "
                       "placeholders): accuracy not judged")
        if why_not or out["errors"]:
            self.doc["accuracy_note"] = why_not or "the accuracy pass did not complete"
            return
        reference = self.accuracy_reference()
        if reference is None:
            return
        report = self.workload.score(sut.outputs, reference)
        full = {"metric": report.metric, "value": report.value, "reference": report.reference,
                "target": report.target, "passed": report.passed, **report.details}
        self.files["accuracy.json"] = full
        # The result keeps the summary; bulky tables (a confusion matrix) live in accuracy.json.
        self.doc["accuracy"] = {k: v for k, v in full.items() if k != "confusion"}
        self.doc["validated"]["accuracy"] = report.passed
        if not report.passed:
            self.doc["invalid_reasons"].append(
                f"accuracy {report.metric} {report.value:.4f} is below the target {report.target:.4f}")

    def accuracy_reference(self) -> AccuracyReference | None:
        """The workload's known reference, else the model's FP32 accuracy on the same samples
        through the FP32 reference session (None, with the reason noted, when that fails)."""
        known = self.workload.accuracy_reference()
        if known is not None:
            return known
        try:
            return reference.fp32_accuracy(self.workload, self.workload.artifact(),
                                           self.cfg.batch_size, self.say.info)
        except Exception as exc:  # a model the reference session cannot run
            why = (f"accuracy not judged: the FP32 reference accuracy could not be computed "
                   f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]})")
            self.doc["accuracy_note"] = why
            self.doc["invalid_reasons"].append(why)
            return None

    def performance(self, target_qps: float = 1.0, keep_outputs: bool = False) -> dict:
        """The performance pass; with ``keep_outputs`` its last output for each sample index is
        kept in ``performance_outputs`` (an audit compares them with the accuracy pass's)."""
        expected = self.cfg.expected_qps or 1.0
        calibrated = self.spec.loadgen_scenario == "Offline" and self.cfg.expected_qps is None
        if calibrated:
            expected = OFFLINE_CALIBRATION_MARGIN * self.calibrate()
        s = self.loadgen_settings(target_qps=target_qps, expected_qps=expected)
        if calibrated and not s.max_query_count:
            s.max_query_count = OFFLINE_SAMPLE_CAP  # the load generator caps the query's size
        out = self.sampled_pass(s, keep_outputs)
        if calibrated:
            out = self.resize_offline(s, out, keep_outputs)
        self.doc["settings"]["loadgen"] = settings.to_dict(s)
        shortfalls = settings.mlperf_shortfalls(s, self.spec, self.workload)
        self.doc["settings"]["meets_mlperf_minimums"] = not shortfalls
        self.doc["settings"]["mlperf_shortfalls"] = shortfalls
        m = out["summary"]
        self.doc["metrics"] = document.metrics(m, out["stale_completions"], out["spin_ns"])
        started = out.get("started_ns")
        self.doc["metrics"]["client_queueing"] = (None if started is None else
                                                  queueing.summary(out["records"], started))
        self.doc["validated"]["performance"] = bool(m.valid)
        self.samples["samples.npz"] = document.samples_columns(out["records"], out["start_ns"],
                                                               out.get("stages"))
        if out.get("top1") is not None:  # a soak: each sample's answer, for the drift check
            self.samples["samples.npz"]["top1"] = out["top1"]
        if s.scenario == Scenario.Server:
            self._windows(s)
        if self.telemetry is not None:
            self.doc["power"], self.doc["telemetry"], self.samples["telemetry.npz"] = \
                self.telemetry.results(out["start_ns"], self.doc["metrics"])
        return out

    def _windows(self, s) -> None:
        """Latency per window; for non-stationary arrivals, the verdict per window too."""
        # A generative run's bounds are per token, judged over the whole run: no query latency
        # bound to judge a window against (unless --latency-bound-ms gave one).
        judge = not self.arrivals.stationary and s.latency_bound_s > 0
        section = windows.latency_windows(self.samples["samples.npz"], self.cfg.window_s,
                                          s.latency_bound_s, s.target_latency_percentile, judge)
        section["arrivals"] = self.arrivals.describe()
        self.doc["latency_windows"] = section
        failing = windows.invalid_reasons(section)
        if failing:
            self.doc["invalid_reasons"] += failing
            self.doc["validated"]["performance"] = False

    def resize_offline(self, s, out: dict, keep_outputs: bool = False) -> dict:
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
            out = self.sampled_pass(s, keep_outputs)
        return out

    def sampled_pass(self, s, keep_outputs: bool = False) -> dict:
        """The performance pass, with the telemetry sampler running beside it."""
        if self.telemetry is not None:
            self.telemetry.start()
        soak = self.cfg.soak_minutes is not None
        try:
            out, sut = self.loadgen_pass(s, "soak" if soak else "performance", keep_outputs,
                                         keep_top1=soak)
        finally:
            if self.telemetry is not None:
                self.telemetry.stop()
        if keep_outputs:
            self.performance_outputs = sut.outputs
        top1 = getattr(sut, "top1", None)  # a streaming SUT keeps none: answers are tokens
        if top1 is not None:
            out["top1"] = top1.window(out["first_seq"], len(out["records"]["index"]))
        # A streaming SUT's log is empty unless its backend makes requests wait (client
        # queueing is then None, as for a SUT that stamps nothing).
        started = getattr(sut, "started", None)
        out["started_ns"] = (None if started is None else
                             started.column(out["first_seq"], len(out["records"]["index"])))
        return out

    def server_qps(self) -> float:
        if self.cfg.target_qps is not None:
            return self.cfg.target_qps
        a = self.arrivals
        if a.trace is not None:  # replayed as recorded
            return a.trace.rate or 1.0
        if a.kind == "ramp":  # the ramp names its own rates; this one is only recorded
            return max(a.param("from"), a.param("to"))
        qps = 0.5 * self.calibrate()
        self.say.info(f"no --target-qps given: using half the calibrated throughput, {qps:,.1f}")
        self.doc["settings"]["target_qps_calibrated"] = qps
        return qps
