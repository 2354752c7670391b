"""PNG figures of a numeric trace: one per quantizer or layer (qmlp.sim.trace)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .trace import CodeUse, InputTrace, LayerTrace

__all__ = ["plot_input", "plot_layer"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _codes(ax, use: CodeUse, title: str) -> None:  # noqa: ANN001 - a matplotlib Axes
    """Bars per output code; unused codes marked red on the axis."""
    codes, counts = np.array(use.codes), np.array(use.counts)
    ax.bar(codes, counts, width=0.9 if len(codes) < 64 else 1.0, color="#4878a8", label="samples per code")
    if use.unused:
        ax.plot(list(use.unused), [0] * len(use.unused), "|", color="#c04040", markersize=8,
                label=f"{len(use.unused)} of {len(codes)} codes never used")
    if len(codes) <= 16:
        ax.set_xticks(codes)
    ax.set_xlabel("code")
    ax.set_ylabel("values")
    ax.set_title(title, fontsize="small")
    ax.legend(fontsize="x-small")


def plot_input(inp: InputTrace, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3))
    _codes(ax, inp.codes, f"input quantizer {inp.dtype}: clipped {inp.clipped_low:.1%} low, "
                          f"{inp.clipped_high:.1%} high")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_layer(layer: LayerTrace, acc: np.ndarray, path: Path) -> Path:
    """Accumulator histogram against the type's range, and the output codes (if any)."""
    plt = _pyplot()
    panels = 2 if layer.codes is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3), squeeze=False)
    ax = axes[0, 0]
    ax.hist(acc.ravel(), bins=60, color="#4878a8")
    for bound in layer.acc_type_range:
        ax.axvline(bound, color="#c04040", linestyle="--")
    ax.set_xlim(layer.acc_type_range[0] * 1.05 - 1, layer.acc_type_range[1] * 1.05 + 1)
    ax.set_xlabel(f"accumulator ({layer.acc_dtype}, dashed: type range)")
    ax.set_ylabel("values")
    ax.set_title(f"{layer.name}: reached {list(layer.acc_reached)}, {layer.acc_range_used:.0%} of the range; "
                 f"{len(layer.dead_channels)} dead", fontsize="small")
    if layer.codes is not None:
        _codes(axes[0, 1], layer.codes, f"{layer.name} output codes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
