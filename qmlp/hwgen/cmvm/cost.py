"""What an adder graph costs, counted on the structure that is emitted (so it cannot drift).

* ``adder_bits``: the sum of every adder's exact width.
* ``lut``: Yosys ``synth_xilinx`` maps an adder to a carry chain whose bit ``i`` needs a LUT
  only where *both* operands are non-constant: below an operand's shift its bits are zero, and
  above a plain-binary (unsigned) operand's top bit they are zero too, so the chain passes the
  other operand through; a two's-complement operand's sign extension is not constant, so it
  costs a LUT on every bit up to the adder's top, except that the top bit of a sum of two sign
  extensions comes out of the carry chain. A subtrahend that is plain binary and ends below the
  top turns into constant ones there: one LUT more (``adder_lut``). Measured on single adders
  (Yosys 0.70, xcup): 6u+6u 6, 6s-6s 7, 6u+(6u<<2) 4, 8u+2u 2, 8u-2u 3, 8s+2u 2, 8u+3s 8,
  6u-6u 7, 8s+8s 8, 8s-8s 9, 8s+(8s<<1) 8, 12s+8s 12 LUT; negating an output costs no LUT.
* ``ff``: the pipeline registers and delay lines the schedule places inside the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import AdderGraph, Node, range_width
from .schedule import Schedule

__all__ = ["GraphCost", "graph_cost", "adder_lut"]


@dataclass(frozen=True)
class GraphCost:
    adders: int
    adder_bits: int
    lut: int
    ff: int
    depth: int


def adder_lut(a: tuple[int, int, int], b: tuple[int, int, int], subtract: bool) -> int:
    """LUTs of ``a ± b`` for operands given as (lo, hi, shift) of the *unshifted* node range;
    ``b`` is the subtrahend when ``subtract``."""
    (alo, ahi, sa), (blo, bhi, sb) = a, b
    lo_b, hi_b = (-(bhi << sb), -(blo << sb)) if subtract else (blo << sb, bhi << sb)
    top = range_width((alo << sa) + lo_b, (ahi << sa) + hi_b)

    def span(lo: int, hi: int, shift: int) -> tuple[int, int]:
        return shift, top if lo < 0 else min(top, shift + range_width(lo, hi))

    (a0, a1), (b0, b1) = span(alo, ahi, sa), span(blo, bhi, sb)
    if subtract:
        extra = 1 if blo >= 0 and b1 < top else 0
    else:  # two sign extensions: the top bit comes out of the carry chain
        extra = -1 if a1 == b1 == top else 0
    return max(1, min(a1, b1) - max(a0, b0) + extra)


def node_lut(graph: AdderGraph, node: Node) -> int:
    """``adder_lut`` of one adder node of ``graph``."""
    a, b = graph.nodes[node.a.node], graph.nodes[node.b.node]
    return adder_lut((a.lo, a.hi, node.a.shift), (b.lo, b.hi, node.b.shift), node.b.neg)


def _register_bits(graph: AdderGraph, sched: Schedule) -> int:
    home, need = sched.homes(graph), sched.last_use(graph)
    return sum((stop - start) * node.width for node, start, stop in zip(graph.nodes, home, need))


def graph_cost(graph: AdderGraph, sched: Schedule | None) -> GraphCost:
    """LUT / FF / adder counts of ``graph`` registered as ``sched`` says (no registers: None)."""
    return GraphCost(adders=len(graph.adders), adder_bits=sum(n.width for n in graph.adders),
                     lut=sum(node_lut(graph, n) for n in graph.adders),
                     ff=_register_bits(graph, sched) if sched is not None else 0, depth=graph.depth)
