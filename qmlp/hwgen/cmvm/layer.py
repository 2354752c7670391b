"""A fully parallel layer as a constant adder graph: the graph and its schedule.

The graph of a layer depends only on its (padded) weights and input type; building it takes
seconds on the largest seed layer, so graphs are cached per (weights, input type).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...datatypes import BIPOLAR, DataType
from .cse import build_graph
from .cost import graph_cost
from .graph import AdderGraph
from .schedule import Schedule, schedule

__all__ = ["LayerGraph", "layer_graph", "input_range", "const_lut_bound", "clear_cache", "DEFAULT_CLOCK_MHZ",
           "ROW_HEIGHTS", "SHARING_BOUND"]

DEFAULT_CLOCK_MHZ = 200.0  # when the dataflow has no clock yet (the boards' PL default)
# The shared graph's counted LUTs over the unshared one's (one tree per row): 0.47 to 0.65 on the
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


@lru_cache(maxsize=64)
def _candidates(weights: bytes, shape: tuple[int, int], lo: int, hi: int) -> tuple[AdderGraph, ...]:
    w = np.frombuffer(weights, dtype=np.int64).reshape(shape)
    return tuple(build_graph(w, [lo] * shape[1], [hi] * shape[1], row_height=h) for h in ROW_HEIGHTS)


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
    _candidates.cache_clear()
    _unshared_lut.cache_clear()


def input_range(dtype: DataType) -> tuple[int, int]:
    """Values an input element takes (a BIPOLAR code 0/1 means -1/+1)."""
    return (-1, 1) if dtype == BIPOLAR else (dtype.min, dtype.max)


def layer_graph(weights: np.ndarray, in_dtype: DataType, *, activation: bool, clock_mhz: float | None) -> LayerGraph:
    """The graph of a fully parallel layer (``weights``: its padded integer matrix, inputs of
    ``in_dtype``, thresholds after it when ``activation``) scheduled for ``clock_mhz`` (200 MHz
    when None): of the candidates (cached), the one with the fewest pipeline stages, then the
    fewest LUTs (``cost``)."""
    w = np.ascontiguousarray(weights, dtype=np.int64)
    lo, hi = input_range(in_dtype)
    options = [LayerGraph(g, schedule(g, clock_mhz or DEFAULT_CLOCK_MHZ, activation=activation))
               for g in _candidates(w.tobytes(), w.shape, lo, hi)]
    return min(options, key=lambda o: (o.schedule.stages, graph_cost(o.graph, None).lut))
