"""The adder graph of a constant matrix-vector product ``y = W @ x`` (values, no hardware yet).

Nodes ``0 .. n_inputs-1`` are the inputs ``x[k]``; every later node is one two-input adder

    value(node) = value(a) + value(b),   value(Operand) = (-1)^neg * (value(node) << shift)

and output ``c`` is one signed, shifted operand (or ``None`` when row ``c`` of ``W`` is zero).
Every node carries its exact range ``[lo, hi]`` over the box of input ranges: a node is a linear
form ``sum_k coef[k] * x[k]`` in independent inputs, so its extremes are
``sum_k min/max(coef[k] * lo_k, coef[k] * hi_k)`` — exact, not an interval-arithmetic bound.
A node that is never negative is unsigned (plain binary), otherwise two's complement; its width
is the smallest that holds its range, so no adder is wider than its values need and none is
narrower (tests evaluate the graph on extreme inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Operand", "Node", "AdderGraph", "signed_width", "range_width", "coefficients", "exact_ranges",
           "evaluate"]


def signed_width(lo: int, hi: int) -> int:
    """Bits of the smallest two's-complement type holding every integer in [lo, hi] (>= 1)."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def range_width(lo: int, hi: int) -> int:
    """Bits of [lo, hi]: plain binary when lo >= 0, else two's complement (>= 1)."""
    return max(1, hi.bit_length()) if lo >= 0 else signed_width(lo, hi)


@dataclass(frozen=True)
class Operand:
    """A signed, shifted reference to a node: ``(-1)^neg * (node << shift)``."""

    node: int
    shift: int = 0
    neg: bool = False


@dataclass(frozen=True)
class Node:
    """An input (``a`` and ``b`` None) or an adder ``a + b``; ``lo``/``hi`` its exact range,
    ``level`` its adder depth (inputs 0), ``tag`` where it comes from (``cse`` or ``sum``)."""

    a: Operand | None
    b: Operand | None
    lo: int
    hi: int
    level: int
    tag: str = "input"

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def width(self) -> int:
        return range_width(self.lo, self.hi)


@dataclass(frozen=True)
class AdderGraph:
    """Nodes in topological order (inputs first) and one operand (or None) per output."""

    n_inputs: int
    nodes: tuple[Node, ...]
    outputs: tuple[Operand | None, ...]

    @property
    def adders(self) -> tuple[Node, ...]:
        return self.nodes[self.n_inputs:]

    @property
    def depth(self) -> int:
        """Adder levels from the inputs to the deepest output (0 without adders)."""
        return max((self.nodes[o.node].level for o in self.outputs if o is not None), default=0)

    def output_range(self, c: int) -> tuple[int, int]:
        """Exact range of output ``c`` (its operand's sign and shift applied)."""
        o = self.outputs[c]
        if o is None:
            return 0, 0
        node = self.nodes[o.node]
        lo, hi = node.lo << o.shift, node.hi << o.shift
        return (-hi, -lo) if o.neg else (lo, hi)


def coefficients(graph: AdderGraph) -> np.ndarray:
    """(nodes, n_inputs) int64: every node's value as a linear form of the inputs."""
    coef = np.zeros((len(graph.nodes), graph.n_inputs), dtype=np.int64)
    coef[np.arange(graph.n_inputs), np.arange(graph.n_inputs)] = 1
    for i, node in enumerate(graph.adders, start=graph.n_inputs):
        for op in (node.a, node.b):
            coef[i] += (-1 if op.neg else 1) * (coef[op.node] << op.shift)
    return coef


def exact_ranges(coef: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact (min, max) of each linear form ``coef @ x`` over the box ``lo <= x <= hi``."""
    a, b = coef * lo[None, :], coef * hi[None, :]
    return np.minimum(a, b).sum(axis=1), np.maximum(a, b).sum(axis=1)


def evaluate(graph: AdderGraph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate node by node on a batch ``x`` (batch, n_inputs) of integers; returns
    (node values (batch, nodes), outputs (batch, len(outputs))), all int64."""
    x = np.asarray(x, dtype=np.int64)
    values = np.zeros((x.shape[0], len(graph.nodes)), dtype=np.int64)
    values[:, : graph.n_inputs] = x

    def operand(op: Operand) -> np.ndarray:
        v = values[:, op.node] << op.shift
        return -v if op.neg else v

    for i, node in enumerate(graph.adders, start=graph.n_inputs):
        values[:, i] = operand(node.a) + operand(node.b)
    out = np.zeros((x.shape[0], len(graph.outputs)), dtype=np.int64)
    for c, op in enumerate(graph.outputs):
        if op is not None:
            out[:, c] = operand(op)
    return values, out
