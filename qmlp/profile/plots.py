"""PNG figures of a profile: the latency histogram (one panel per layer) and the rail trace."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .energy import RailTrace

__all__ = ["histogram_range", "latency_histogram", "latency_figure", "power_trace_plot"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def histogram_range(us: np.ndarray) -> tuple[float, float, int]:
    """(low, high, runs above high) for a latency histogram: up to the median + 8 interquartile
    ranges (at most the 99.5th percentile) when a few slow runs (a scheduler hiccup, a page
    fault) would otherwise squeeze every other run into one bar; the whole range otherwise."""
    low, top = float(us.min()), float(us.max())
    p25, p50, p75, p995 = np.percentile(us, [25, 50, 75, 99.5])
    cut = float(min(p995, p50 + 8 * (p75 - p25))) if p75 > p25 else float(p995)
    if top - low > 0 and cut > low and top - low > 4 * (cut - low):
        return low, cut, int(np.count_nonzero(us > cut))
    return low, top, 0


def latency_histogram(samples_s: Mapping[str, np.ndarray], path: Path, *, title: str,
                      labels: Mapping[str, str] | None = None) -> Path:
    """One histogram panel per layer (microseconds), p50/p99 marked. ``samples_s`` without warm-up."""
    fig = latency_figure(samples_s, title=title, labels=labels)
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def latency_figure(samples_s: Mapping[str, np.ndarray], *, title: str, labels: Mapping[str, str] | None = None):  # noqa: ANN201
    """The matplotlib Figure behind ``latency_histogram``."""
    plt = _pyplot()
    names = [n for n, v in samples_s.items() if len(v)]
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.2 * len(names) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        us = np.asarray(samples_s[name], dtype=np.float64) * 1e6
        low, high, tail = histogram_range(us)
        bins = 1 if high == low else min(60, max(10, int(np.sqrt(us.size))))
        ax.hist(np.minimum(us, high), bins=bins, range=(low, high) if high > low else None, color="#4878a8",
                label=f"{tail} slower runs (> {high:.3g} us) drawn in the last bar" if tail else None)
        for q, style in ((50, "-"), (99, "--")):
            value = float(np.percentile(us, q))
            if tail and value > high:  # beyond the cut: named, not drawn
                ax.plot([], [], " ", label=f"p{q} {value:.3g} us (in the last bar)")
            else:
                ax.axvline(value, color="#c04040", linestyle=style, label=f"p{q} {value:.3g} us")
        ax.set_ylabel("runs")
        ax.set_title((labels or {}).get(name, name), fontsize="small")
        ax.legend(fontsize="x-small")
    axes[-1, 0].set_xlabel("latency (us)")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def power_trace_plot(trace: RailTrace, path: Path, *, title: str, rails: tuple[str, ...] | None = None) -> Path:
    """Rail power against time with the idle / active phases shaded."""
    plt = _pyplot()
    shown = rails or trace.rails
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for rail in shown:
        ax.step(trace.times, trace.power[:, trace.rails.index(rail)], where="post", label=rail, linewidth=0.9)
    for mark, colour, label in ((0, "#dddddd", "idle"), (1, "#ffe3b0", "active")):
        where = np.flatnonzero(trace.marks == mark)
        if where.size:
            ax.axvspan(trace.times[where[0]], trace.times[where[-1]], color=colour, alpha=0.6, zorder=0, label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("power (W)")
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="x-small", ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
