"""Typed, frozen configuration. Strings are parsed here, at the edge, and nowhere else."""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hwbench.errors import UsageError

SCENARIOS = ("single-stream", "multi-stream", "server", "offline")
MODES = ("performance", "accuracy", "both", "find-peak")
PROFILES = ("quick", "mlperf")
# model: MLPerf's timed path (preprocessed inputs in memory -> the backend); full: from each
# sample's encoded file through decode, preprocessing, batching, the backend and post-processing;
# both: model, then full, on the same samples and settings (docs/pipeline.md).
PIPELINES = ("model", "full", "both")
PRECISIONS = ("fp32", "fp16", "int8")  # of the artifact every backend runs (hwbench.passes.precision)
MAX_TELEMETRY_HZ = 1000.0
MAX_SPIN_US = 10000.0  # a longer busy-wait only takes a core from the system under test
PTD_SOURCE = "ptdaemon"  # the power source that --ptd points at
LLM_PROFILES = ("default", "interactive")  # a generative workload's token bounds (docs/llm.md)


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario definition (scenarios/*.toml) with a profile applied."""

    name: str
    loadgen_scenario: str
    description: str
    profile: str
    min_duration_s: float
    min_query_count: int
    target_latency_percentile: float
    samples_per_query: int = 1
    warmup_s: float = 0.0
    mlperf_min_duration_s: float = 0.0
    mlperf_min_query_count: int = 0


_SPEC_KEYS = {f.name for f in dataclasses.fields(ScenarioSpec)} - {
    "profile", "mlperf_min_duration_s", "mlperf_min_query_count"}


def load_scenario(name: str, profile: str = "quick") -> ScenarioSpec:
    """Reads a built-in scenario by name, or a TOML file by path, and applies `profile`."""
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"scenario file {name} not found: give an existing .toml path")
        text = path.read_text()
    elif name in SCENARIOS:
        text = resources.files("hwbench.scenarios").joinpath(f"{name}.toml").read_text()
    else:
        raise UsageError(f"unknown scenario {name!r}: use one of {', '.join(SCENARIOS)} "
                         "or a path to a .toml file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"scenario {name}: invalid TOML ({exc}); fix the file") from None
    profiles = data.pop("profiles", {})
    base = {k: v for k, v in data.items() if k in _SPEC_KEYS}
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise UsageError(f"scenario {name}: unknown keys {sorted(unknown)}; "
                         f"valid keys are {sorted(_SPEC_KEYS)}")
    merged = dict(base)
    if profile != "mlperf":
        merged.update(profiles.get(profile, {}))
    try:
        return ScenarioSpec(profile=profile,
                            mlperf_min_duration_s=float(base.get("min_duration_s", 0.0)),
                            mlperf_min_query_count=int(base.get("min_query_count", 0)),
                            **merged)
    except TypeError as exc:
        raise UsageError(f"scenario {name}: {exc}; fix the file") from None


def parse_backend_options(pairs: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """'KEY=VALUE' strings to pairs; the backend validates keys and values."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--backend-opt {pair!r}: write it as KEY=VALUE")
        out.append((key.strip(), value.strip()))
    return tuple(out)


def parse_input_shapes(items: list[str] | tuple[str, ...]
                       ) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """'NAME=DxD' strings (``--input-shape``, the per-sample shape of one input, without the
    batch) to ``(name, dims)`` pairs; the workload checks the names against the model."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, text = item.rpartition("=")
        parts = text.lower().split("x")
        if (not sep or not name.strip() or not all(p.strip().isdigit() for p in parts)
                or not all(int(p) > 0 for p in parts)):
            raise UsageError(f"--input-shape {item!r}: write it as NAME=DxD, the input's "
                             "per-sample sizes (positive integers; the batch is --batch-size), "
                             "e.g. input_ids=128")
        if name.strip() in out:
            raise UsageError(f"--input-shape {name.strip()} is given twice: give each input once")
        out[name.strip()] = tuple(int(p) for p in parts)
    return tuple(out.items())


def parse_host_port(text: str | None) -> tuple[str | None, int | None]:
    """'HOST:PORT' (IPv6 as [ADDR]:PORT) to a pair; None to (None, None)."""
    if text is None:
        return None, None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--ptd {text!r}: write it as HOST:PORT, e.g. 127.0.0.1:8888")
    return host, int(port)


def _positive(name: str, value: float | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    bad = not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero)
    if bad:
        need = ">= 0" if allow_zero else "> 0"
        raise UsageError(f"{name} must be {need} (got {value})")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run was asked to do. Saved beside its results."""

    workload: str = "resnet50"
    scenario: str = "offline"
    backend: str = "cpu"
    mode: str = "performance"
    profile: str = "quick"
    model: str | None = None
    dataset: str | None = None
    # --workload onnx: per-sample shapes of inputs with dynamic dimensions, and the npz of tensors
    # to feed instead of synthetic ones.
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = field(default_factory=tuple)
    inputs: str | None = None
    duration_s: float | None = None
    max_duration_s: float | None = None
    min_query_count: int | None = None
    target_qps: float | None = None
    expected_qps: float | None = None
    latency_bound_ms: float | None = None
    # Generative workloads: Server's p99 time-to-first-token and time-per-output-token bounds
    # (default: the workload's, per size and --llm-profile; docs/llm.md).
    ttft_bound_ms: float | None = None
    tpot_bound_ms: float | None = None
    llm_profile: str = "default"
    batch_size: int = 1
    instances: int = 1
    batch_timeout_us: float = 0.0
    precision: str = "fp32"
    warmup_s: float | None = None
    sample_timeout_s: float = 60.0
    # The longest the load generator's issue thread busy-waits (before a Server arrival, for a
    # SingleStream/MultiStream completion); 0 never. See docs/loadgen.md "The issue thread's spin".
    spin_us: float = 20.0
    # Server's arrival process (hwbench.harness.arrivals): poisson, gamma:cv=X, onoff:...,
    # ramp:..., or a trace .csv; and the window that latency is reported (and, for
    # non-stationary arrivals, judged) per.
    arrivals: str = "poisson"
    window_s: float = 10.0
    # A soak: the measured window lasts this long, and drift over it is judged per window_s
    # (hwbench.results.drift).
    soak_minutes: float | None = None
    performance_sample_count: int | None = None
    pipeline: str = "model"
    preprocess_workers: int = 2  # threads decoding and preprocessing in --pipeline full
    seed: int = 1
    backend_options: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    output: str | None = None
    robustness: bool = False
    robustness_samples: int | None = None
    # Telemetry. No power_sources: every built-in source is tried, and reported if unavailable.
    power_sources: tuple[str, ...] = ()
    no_power: bool = False
    ptd_host: str | None = None
    ptd_port: int | None = None
    rapl_root: str = "/sys/class/powercap"
    jetson_root: str = "/sys/bus/i2c/drivers"
    telemetry_hz: float = 10.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.mode == "find-peak" and self.scenario != "server":
            raise UsageError("--mode find-peak searches Server's peak QPS: use --scenario server")
        _positive("--duration", self.duration_s, allow_zero=True)
        _positive("--max-duration", self.max_duration_s, allow_zero=True)
        _positive("--target-qps", self.target_qps)
        _positive("--expected-qps", self.expected_qps)
        _positive("--latency-bound-ms", self.latency_bound_ms)
        _positive("--ttft-bound-ms", self.ttft_bound_ms)
        _positive("--tpot-bound-ms", self.tpot_bound_ms)
        if self.llm_profile not in LLM_PROFILES:
            raise UsageError(f"unknown --llm-profile {self.llm_profile!r}: use one of "
                             f"{', '.join(LLM_PROFILES)}")
        _positive("--warmup", self.warmup_s, allow_zero=True)
        _positive("--sample-timeout", self.sample_timeout_s)
        _positive("--spin-us", self.spin_us, allow_zero=True)
        _positive("--window-s", self.window_s)
        _positive("--soak-minutes", self.soak_minutes)
        if self.soak_minutes is not None and self.duration_s is not None:
            raise UsageError("--soak-minutes sets the measured window's length: give it or "
                             "--duration, not both")
        if self.soak_minutes is not None and self.mode == "find-peak":
            raise UsageError("--soak-minutes holds one load for minutes; --mode find-peak "
                             "searches many: run the soak at the rate find-peak found")
        kind = self.arrivals.partition(":")[0]
        if kind != "poisson" and self.scenario in ("single-stream", "multi-stream", "offline"):
            raise UsageError(f"--arrivals shapes Server's arrivals; {self.scenario} issues "
                             "queries as the last completes: use --scenario server")
        if self.mode == "find-peak" and kind not in ("poisson", "gamma"):
            raise UsageError(f"--mode find-peak needs a steady arrival rate; --arrivals "
                             f"{self.arrivals} is not stationary: use poisson or gamma:cv=X")
        if self.spin_us > MAX_SPIN_US:
            raise UsageError(f"--spin-us must be <= {MAX_SPIN_US:g} (got {self.spin_us:g})")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1 (got {self.batch_size})")
        if self.instances < 1:
            raise UsageError(f"--instances must be >= 1 (got {self.instances})")
        _positive("--batch-timeout-us", self.batch_timeout_us, allow_zero=True)
        if self.precision not in PRECISIONS:
            raise UsageError(f"unknown precision {self.precision!r}: use one of "
                             f"{', '.join(PRECISIONS)}")
        if self.min_query_count is not None and self.min_query_count < 1:
            raise UsageError(f"--min-queries must be >= 1 (got {self.min_query_count})")
        if self.performance_sample_count is not None and self.performance_sample_count < 1:
            raise UsageError("--performance-samples must be >= 1")
        self._check_pipeline()
        if self.robustness_samples is not None:
            if self.robustness_samples < 1:
                raise UsageError(f"--robustness-samples must be >= 1 "
                                 f"(got {self.robustness_samples})")
            if not self.robustness:
                raise UsageError("--robustness-samples limits the robustness pass: "
                                 "add --robustness")
        self._check_telemetry()

    def _check_pipeline(self) -> None:
        if self.pipeline not in PIPELINES:
            raise UsageError(f"unknown pipeline {self.pipeline!r}: use one of "
                             f"{', '.join(PIPELINES)}")
        if self.preprocess_workers < 1:
            raise UsageError(f"--preprocess-workers must be >= 1 (got {self.preprocess_workers})")
        if self.pipeline == "both" and self.scenario == "server" and self.mode != "find-peak":
            raise UsageError("--pipeline both in Server compares the two paths' peak rates, not "
                             "two runs at one rate: add --mode find-peak")
        if self.pipeline == "both" and self.soak_minutes is not None:
            raise UsageError("--soak-minutes with --pipeline both would soak each path in turn: "
                             "soak the path you deploy (--pipeline full, or model)")

    def _check_telemetry(self) -> None:
        _positive("--telemetry-hz", self.telemetry_hz, allow_zero=True)
        if self.telemetry_hz > MAX_TELEMETRY_HZ:
            raise UsageError(f"--telemetry-hz must be <= {MAX_TELEMETRY_HZ:g} "
                             f"(got {self.telemetry_hz:g})")
        named = bool(self.power_sources or self.ptd_host)
        if self.telemetry_hz == 0 and named:
            raise UsageError("--telemetry-hz 0 turns sampling off, which power sources need: "
                             "drop --power-source/--ptd or give a rate")
        if self.no_power and named:
            raise UsageError("--no-power contradicts --power-source/--ptd: give one or the other")
        if PTD_SOURCE in self.power_sources and self.ptd_host is None:
            raise UsageError(f"--power-source {PTD_SOURCE} needs the analyzer's address: "
                             "add --ptd HOST:PORT")

    def requested_power_sources(self) -> set[str]:
        """Sources the user named: they must work, or the run says so."""
        return set(self.power_sources) | ({PTD_SOURCE} if self.ptd_host else set())

    def power_source_names(self, builtin: list[str]) -> list[str]:
        """Sources to open: the named ones, or every built-in when none was named."""
        if not self.power_sources:
            return list(builtin)
        return list(dict.fromkeys([*self.power_sources, *sorted(self.requested_power_sources())]))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["backend_options"] = dict(self.backend_options)
        d["input_shapes"] = {k: list(v) for k, v in self.input_shapes}
        d["power_sources"] = list(self.power_sources)
        return d


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def default(name: str) -> Any:
    """RunConfig's default for setting `name`: the one source of defaults. ``hwbench run``'s
    options, the index's hashes (hwbench.results.identity) and the telemetry sources' roots read
    it, so a default changed here changes everywhere at once."""
    f = _FIELDS[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def from_table(values: dict[str, Any], where: str) -> RunConfig:
    """A RunConfig from a TOML table of ``hwbench run`` settings, by RunConfig's own field names
    (a qualification profile's runs and a fleet sweep's runs): unknown keys, values of the wrong
    type and bad values are usage errors that name `where`. backend_options is a table of
    strings (numbers are written as strings), power_sources a list."""
    values = dict(values)
    unknown = set(values) - set(_FIELDS) - {"output"}
    if unknown or "output" in values:
        bad = sorted(unknown | ({"output"} & set(values)))
        raise UsageError(f"{where}: unknown keys {bad}; valid: {sorted(set(_FIELDS) - {'output'})}")
    opts = values.get("backend_options")
    if isinstance(opts, dict):
        values["backend_options"] = tuple((str(k), _option_text(v)) for k, v in opts.items())
    elif opts is not None and not isinstance(opts, tuple):
        raise UsageError(f"{where}: backend_options must be a table, e.g. {{threads = \"2\"}}")
    shapes = values.get("input_shapes")
    if isinstance(shapes, dict):
        values["input_shapes"] = parse_input_shapes(
            [f"{k}={'x'.join(map(str, v)) if isinstance(v, list) else v}"
             for k, v in shapes.items()])
    if isinstance(values.get("power_sources"), list):
        values["power_sources"] = tuple(str(v) for v in values["power_sources"])
    for name, value in values.items():
        kind = type(_FIELDS[name].default)
        if value is not None and kind in (str, bool) and not isinstance(value, kind):
            raise UsageError(f"{where}: {name} = {value!r}: give a {kind.__name__}")
    try:
        return RunConfig(**values)
    except TypeError as exc:
        raise UsageError(f"{where}: {exc}") from None
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
