"""A fully parallel layer as a constant adder graph: the graph and its schedule.

The graph of a layer depends only on its (padded) weights, input type, clock and whether
thresholds follow (they set the depth its stages hold); building it takes tens of seconds on
the largest seed layer, so graphs are cached per (weights, input range, clock, activation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...datatypes import BIPOLAR, DataType
from .cse import build_graph, unshared_depth
from .cost import graph_cost
from .graph import AdderGraph
from .schedule import Schedule, deepest, schedule

__all__ = ["LayerGraph", "layer_graph", "input_range", "const_lut_bound", "clear_cache", "DEFAULT_CLOCK_MHZ",
           "ROW_HEIGHTS", "SEEDS", "SHARING_BOUND", "SHARING_LEVELS"]

DEFAULT_CLOCK_MHZ = 200.0  # when the dataflow has no clock yet (the boards' PL default)
# The shared graph's counted LUTs over the unshared one's (one tree per row): 0.41 to 0.69 on the
# ten layers of the two seed models (trained ternary and int2). A bound for pruning, with margin.
SHARING_BOUND = 0.3


@dataclass(frozen=True)
class LayerGraph:
    """The adder graph of one layer (padded rows and columns included) and where its
    registers go at the layer's clock."""

    graph: AdderGraph
    schedule: Schedule

    @property
    def latency(self) -> int:
        """Cycles from a vector accepted to its output valid (graph banks + output register)."""
        return self.schedule.stages


ROW_HEIGHTS = (0, 2, 6)  # candidate row-tree heights (cmvm.rows), measured on the seed layers
# Adder levels sharing may add to the unshared graph before the stage count is fixed: the greedy
# without a bound added 0-5 on the seed layers within the same stages; with 1 every seed layer
# keeps its stages (fc3 would lose one at 0, for 16 % more LUTs).
SHARING_LEVELS = 1
# Extra orders of equally valuable patterns tried on the best row height (cse ``seed``): the
# greedy's ties swing a layer's LUTs by 1-2 %; each seed costs one more graph build.
SEEDS = 3


@lru_cache(maxsize=64)
def _best(weights: bytes, shape: tuple[int, int], lo: int, hi: int, clock_mhz: float, activation: bool) -> LayerGraph:
    w = np.frombuffer(weights, dtype=np.int64).reshape(shape)
    depth = deepest(unshared_depth(w) + SHARING_LEVELS, clock_mhz, activation=activation)

    def build(height: int, seed: int) -> tuple[tuple[int, int], int, LayerGraph]:
        g = build_graph(w, [lo] * shape[1], [hi] * shape[1], row_height=height, depth=depth, seed=seed)
        option = LayerGraph(g, schedule(g, clock_mhz, activation=activation))
        return (option.schedule.stages, graph_cost(g, None).lut), height, option

    # a row tree deeper than ``depth`` before any sharing needs more stages than height 0: skip it
    heights = [h for h in ROW_HEIGHTS if h == 0 or unshared_depth(w, h) <= depth]
    best = min((build(h, 0) for h in heights), key=lambda c: c[0])
    for seed in range(1, SEEDS + 1):
        best = min(best, build(best[1], seed), key=lambda c: c[0])
    return best[2]


@lru_cache(maxsize=64)
def _unshared_lut(weights: bytes, shape: tuple[int, int], lo: int, hi: int) -> int:
    w = np.frombuffer(weights, dtype=np.int64).reshape(shape)
    return graph_cost(build_graph(w, [lo] * shape[1], [hi] * shape[1], cse=False), None).lut


def const_lut_bound(weights: np.ndarray, in_dtype: DataType) -> float:
    """A cheap lower estimate of the counted LUTs of ``layer_graph`` for this matrix, without
    building it: ``SHARING_BOUND`` x the unshared graph's count (each row its own tree, which
    takes well under a second on the largest seed layer where the shared graph takes ~25 s)."""
    w = np.ascontiguousarray(weights, dtype=np.int64)
    return SHARING_BOUND * _unshared_lut(w.tobytes(), w.shape, *input_range(in_dtype))


def clear_cache() -> None:
    """Forget every cached graph (benchmarks time graph construction from scratch)."""
    _best.cache_clear()
    _unshared_lut.cache_clear()


def input_range(dtype: DataType) -> tuple[int, int]:
    """Values an input element takes (a BIPOLAR code 0/1 means -1/+1)."""
    return (-1, 1) if dtype == BIPOLAR else (dtype.min, dtype.max)


def layer_graph(weights: np.ndarray, in_dtype: DataType, *, activation: bool, clock_mhz: float | None) -> LayerGraph:
    """The graph of a fully parallel layer (``weights``: its padded integer matrix, inputs of
    ``in_dtype``, thresholds after it when ``activation``) scheduled for ``clock_mhz`` (200 MHz
    when None), cached: of the candidates, the one with the fewest pipeline stages, then the
    fewest LUTs (``cost``). The candidates are one graph per ``ROW_HEIGHTS``, then ``SEEDS``
    more tie orders on the best height. Each may be as deep as the stages of the unshared graph
    plus ``SHARING_LEVELS`` hold (``schedule.deepest``): sharing and chained sums use those
    levels, so a deeper graph costs no stage."""
    w = np.ascontiguousarray(weights, dtype=np.int64)
    lo, hi = input_range(in_dtype)
    clock = clock_mhz or DEFAULT_CLOCK_MHZ
    return _best(w.tobytes(), w.shape, lo, hi, clock, activation)
