"""Figures for reports, as inline SVG text (matplotlib, imported only when a report is built)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np

_SIZE = (9.0, 3.2)


def _figure(ncols: int = 1):
    from matplotlib.figure import Figure  # heavy: only when a report is drawn
    fig = Figure(figsize=(_SIZE[0], _SIZE[1]), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _svg(fig) -> str:
    import matplotlib
    buf = io.StringIO()
    # Text as SVG text (not glyph paths) keeps the page small and searchable.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def latency_distribution(lat_ms: np.ndarray) -> str:
    """Histogram of latencies, and the percentile curve (latency at each percentile)."""
    fig, (hist, curve) = _figure(2)
    # A few slow outliers would squeeze the body of the distribution into one bar: the histogram
    # stops at p99.5 and says so; the percentile curve shows the tail.
    low, top = float(lat_ms.min()), float(np.percentile(lat_ms, 99.5))
    n = min(60, max(10, len(lat_ms) // 20))
    wide = low > 0 and top / low > 20  # a tail ten times the body reads better on a log axis
    edges = np.geomspace(low, top, n + 1) if wide else np.linspace(low, max(top, low + 1e-9), n + 1)
    hist.hist(np.clip(lat_ms, low, top), bins=edges, color="#3b6ea5")
    if wide:
        hist.set_xscale("log")
    hist.set(xlabel="latency (ms), up to p99.5", ylabel="samples", title="latency distribution")
    pct = np.array([50, 75, 90, 95, 97, 99, 99.5, 99.9, 99.99])
    pct = pct[pct <= 100 * (1 - 1 / max(len(lat_ms), 1))]  # no percentile beyond the data
    values = np.percentile(lat_ms, pct)
    x = -np.log10(1 - pct / 100)  # spreads the tail: 90 -> 1, 99 -> 2, 99.9 -> 3
    curve.plot(x, values, marker="o", color="#a53b3b")
    curve.set_xticks(x, [f"{p:g}" for p in pct], rotation=60, fontsize=7)
    curve.set(xlabel="percentile", ylabel="latency (ms)", title="percentile curve")
    return _svg(fig)


def over_time(t_s: np.ndarray, lat_ms: np.ndarray, bins: int = 40) -> str:
    """Completed samples per second and median / p99 latency, per time slice of the window."""
    fig, (tput, lat) = _figure(2)
    edges = np.linspace(0.0, max(float(t_s.max()), 1e-9), bins + 1)
    which = np.clip(np.digitize(t_s, edges) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    width = edges[1] - edges[0]
    mids = (edges[:-1] + edges[1:]) / 2
    tput.plot(mids, counts / width, color="#3b6ea5")
    tput.set(xlabel="time (s)", ylabel="samples/s", title="throughput over time", ylim=(0, None))
    p50 = [np.median(lat_ms[which == i]) if counts[i] else np.nan for i in range(bins)]
    p99 = [np.percentile(lat_ms[which == i], 99) if counts[i] else np.nan for i in range(bins)]
    lat.plot(mids, p50, label="p50", color="#3b6ea5")
    lat.plot(mids, p99, label="p99", color="#a53b3b")
    lat.set(xlabel="time (s)", ylabel="latency (ms)", title="latency over time", ylim=(0, None))
    lat.legend(fontsize=7)
    return _svg(fig)


def series(t_s: np.ndarray | dict[str, np.ndarray], columns: dict[str, np.ndarray], ylabel: str,
           title: str, xlabel: str = "time (s)") -> str:
    """Lines over time; `t_s` is one time axis for every column, or one per column name."""
    fig, ax = _figure(1)
    for name, values in columns.items():
        t = t_s[name] if isinstance(t_s, dict) else t_s
        ax.plot(t, values, label=name, marker="o" if len(values) < 50 else None)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    return _svg(fig)


def confusion(matrix: Sequence[Sequence[int]]) -> str:
    m = np.asarray(matrix, dtype=float)
    fig, ax = _figure(1)
    fig.set_size_inches(4.2, 3.6)
    im = ax.imshow(m, cmap="Blues")
    ax.set(xlabel="predicted class", ylabel="true class", title="confusion matrix")
    if len(m) <= 20:
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if v > m.max() / 2 else "black")
    fig.colorbar(im, ax=ax)
    return _svg(fig)


def recall_distribution(recall: np.ndarray, support: np.ndarray, min_support: int) -> str:
    """How per-class recall is spread over the classes: a histogram of the classes with at least
    `min_support` samples, and of those with fewer (drawn apart: their recall is coarse)."""
    fig, ax = _figure(1)
    edges = np.linspace(0.0, 1.0, 21)
    enough = support >= min_support
    ax.hist([recall[enough], recall[~enough & (support > 0)]], bins=edges, stacked=True,
            color=["#3b6ea5", "#c9c9c9"],
            label=[f"{int(enough.sum())} classes with {min_support}+ samples",
                   f"{int((~enough & (support > 0)).sum())} with fewer"])
    ax.set(xlabel="recall", ylabel="classes", title="per-class recall", xlim=(0, 1))
    ax.legend(fontsize=7)
    return _svg(fig)


def heatmap(rows: Sequence[str], cols: Sequence[str], values: np.ndarray, title: str,
            label: str) -> str:
    """A grid of values (rows x cols) as colours, each cell also written out."""
    v = np.asarray(values, dtype=float)
    fig, ax = _figure(1)
    fig.set_size_inches(6.0, 0.35 * len(rows) + 1.4)
    im = ax.imshow(v, cmap="RdYlGn", vmin=0.0, vmax=max(1e-9, float(np.nanmax(v))),
                   aspect="auto")
    ax.set_xticks(range(len(cols)), cols, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    for (i, j), x in np.ndenumerate(v):
        if not np.isnan(x):
            ax.text(j, i, f"{x:.3f}", ha="center", va="center", fontsize=6)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=label)
    return _svg(fig)


def stages(names: Sequence[str], mean_ms: Sequence[float], utilisation: Sequence[float | None]
           ) -> str:
    """Where a sample's time goes (mean ms per stage) beside how busy each working stage kept
    its workers (utilisation; waiting stages have none)."""
    fig, (time_ax, util_ax) = _figure(2)
    y = np.arange(len(names))
    time_ax.barh(y, mean_ms, color="#3b6ea5")
    time_ax.set_yticks(y, names, fontsize=7)
    time_ax.invert_yaxis()
    time_ax.set(xlabel="mean ms per sample", title="time per stage")
    busy = [np.nan if u is None else 100 * u for u in utilisation]
    util_ax.barh(y, busy, color="#a53b3b")
    util_ax.set_yticks(y, names, fontsize=7)
    util_ax.invert_yaxis()
    util_ax.set(xlabel="% of the stage's workers' time", title="utilisation", xlim=(0, 100))
    return _svg(fig)
