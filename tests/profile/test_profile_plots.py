"""The report figures are legible: legend texts say what is drawn, and a latency histogram with
spread (and a few slow outliers) has many bars, not one."""

from __future__ import annotations

import numpy as np

from qmlp.hwgen.estimate import estimate, plot_layer_resources, resources_figure
from qmlp.hwgen.fold import fold
from qmlp.profile.plots import histogram_range, latency_figure, latency_histogram
from qmlp.testing import random_dataflow


def _bars(ax) -> list[float]:  # noqa: ANN001
    return [patch.get_height() for patch in ax.patches if patch.get_height() > 0]


def test_latency_histogram_with_a_tail_has_many_bars_and_says_what_it_cut(tmp_path):
    rng = np.random.default_rng(0)
    spread = 20e-6 + rng.gamma(4.0, 0.5e-6, size=1000)
    spread[::200] = 5e-3  # five scheduler hiccups, 250x the typical run
    fixed = np.full(1000, 3e-6)  # the deterministic RTL: one value
    fig = latency_figure({"fabric": fixed, "end_to_end": spread}, title="t")
    fabric_ax, e2e_ax = fig.axes
    assert len(_bars(fabric_ax)) == 1
    assert len(_bars(e2e_ax)) >= 10  # without the cut: 1 bar of 995 runs + 1 of 5
    texts = [t.get_text() for t in e2e_ax.get_legend().get_texts()]
    assert any(t.startswith("5 slower runs (> ") and t.endswith(" us) drawn in the last bar") for t in texts)
    assert any(t.startswith("p50 ") and t.endswith(" us") for t in texts)
    assert latency_histogram({"e": spread}, tmp_path / "h.png", title="t").stat().st_size > 0


def test_histogram_range_keeps_the_whole_range_without_a_tail():
    data = np.linspace(1.0, 2.0, 1000)
    assert histogram_range(data) == (1.0, 2.0, 0)


def test_resources_legend_names_each_quantity_without_scale_factors(tmp_path):
    est = estimate(fold(random_dataflow(1, widths=(32, 16, 4)), target_fps=1e5, clock_mhz=200.0))
    fig = resources_figure(est)
    legend = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert legend == ["LUT", "FF", "BRAM36 (right axis)"]
    assert not any(" x " in text for text in legend)
    plot_layer_resources(est, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0
