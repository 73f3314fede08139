"""One run's telemetry: which sources open, sampling around performance passes, and the result
sections. A source the user asked for by name (--power-source, --ptd) must open, or the run
stops before measuring with the reason; once measuring, its failure makes the run invalid. Other
sources are best effort: unavailable or faulted ones are reported with the reason, nothing more.
"""
from __future__ import annotations

from typing import Any

from hwbench.config import RunConfig
from hwbench.errors import SourceUnavailable, UsageError
from hwbench.telemetry import power, registry, stats
from hwbench.telemetry.base import Source
from hwbench.telemetry.sampler import Sampler, Track


class Session:
    """The sources a run opened, their sampler, and the sections built from the last pass."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.unavailable: list[dict[str, Any]] = []
        self.tracks: list[Track] = []
        try:
            self._open(registry.system_source_class()(), "system", False, True)
            for name in cfg.power_source_names(registry.names()):
                requested = name in cfg.requested_power_sources()
                cls = registry.source_class(name)
                if cfg.no_power and not cls.telemetry:
                    continue
                self._open(cls.from_config(cfg), name, requested, not cfg.no_power)
        except BaseException:
            self.close()
            raise
        self.sampler = Sampler(self.tracks, cfg.telemetry_hz)

    def _open(self, source: Source, name: str, requested: bool, listed: bool) -> None:
        try:
            layout = source.open()
        except SourceUnavailable as exc:
            if requested:
                raise UsageError(f"power source {name} is unavailable: {exc}") from None
            if listed:
                self.unavailable.append(power.unavailable(name, source.kind, str(exc), False))
            return
        self.tracks.append(Track(source, layout, requested, listed=listed and source.power))

    def start(self) -> None:
        self.sampler.start()

    def stop(self) -> None:
        self.sampler.stop()

    def close(self) -> None:
        for track in self.tracks:
            try:
                track.source.close()
            except Exception:  # best effort: what was read is kept
                pass
        self.tracks = []

    def results(self, start_ns: int, metrics: dict[str, Any]) -> tuple[Any, Any, dict]:
        """(power section or None, telemetry section, timeline columns) of the last pass."""
        a, b = start_ns, start_ns + int(round(metrics["duration_s"] * 1e9))
        return (self._power(a, b, metrics), self._telemetry(a, b),
                stats.timeline(self.tracks, a, b - a))

    def _power(self, a: int, b: int, metrics: dict[str, Any]) -> dict[str, Any] | None:
        if self.cfg.no_power:
            return None
        entries = []
        for track in self.tracks:
            if track.listed:
                entries += power.channel_results(track, a, b, metrics)
        tot, note = power.total(entries, (b - a) / 1e9, metrics) if b > a else (None, "no total: "
                                                                               "empty window")
        for e in entries:
            e.pop("role", None)
        return {"window_s": (b - a) / 1e9, "sources": entries + self.unavailable, "total": tot,
                "total_note": note}

    def _telemetry(self, a: int, b: int) -> dict[str, Any]:
        doc: dict[str, Any] = {"sample_rate_hz": self.cfg.telemetry_hz, "cpu_util_pct": None,
                               "process_cpu_pct_of_core": None, "peak_rss_bytes": None,
                               "gpus": [], "throttled": None, "throttle_reasons": [],
                               "overhead_pct_of_core": self._overhead(),
                               "timeline_file": stats.TIMELINE_FILE, "notes": []}
        if b <= a:
            doc["notes"].append("the measured window is empty: nothing to summarise")
            return doc
        reasons: set[str] = set()
        seen_gpus = False
        for track in self.tracks:
            try:
                if stats.SYSTEM_COLUMN in track.layout.stats:
                    doc.update(stats.system_stats(track, a, b))
                elif track.layout.gpus:
                    gpus, why = stats.gpu_stats(track, a, b)
                    doc["gpus"] += gpus
                    reasons |= why
                    seen_gpus = True
            except ValueError as exc:
                doc["notes"].append(f"{track.source.name}: {track.fault or exc}")
        if seen_gpus:
            doc["throttled"], doc["throttle_reasons"] = bool(reasons), sorted(reasons)
        else:
            doc["notes"].append("throttling unknown: no GPU clock-event reasons without NVML")
        return doc

    def _overhead(self) -> float | None:
        s = self.sampler
        return 100 * s.cpu_s / s.wall_s if s.wall_s > 0 else None

