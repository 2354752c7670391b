"""What an adder graph costs, counted on the structure that is emitted (so it cannot drift).

* ``adder_bits``: the sum of every adder's exact width.
* ``lut``: one LUT per adder output bit that needs logic. The low ``s`` bits of
  ``a + (b << s)`` (or ``a - (b << s)``) are copies of ``a``'s bits (wires), and the top bit
  of an adder one bit wider than its operands is the carry out of the chain (no LUT); Yosys
  ``synth_xilinx`` maps each remaining bit to one LUT feeding the carry chain. Calibration on
  the seed's ternary fc3 / fc4 graphs (Yosys 0.70, xcup): 1,509 / 120 counted, 1,565 / 123 in
  the netlist; bench/adder_graph.py reports both for every benchmarked layer.
* ``ff``: the pipeline registers and delay lines the schedule places inside the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import AdderGraph
from .schedule import Schedule

__all__ = ["GraphCost", "graph_cost"]


@dataclass(frozen=True)
class GraphCost:
    adders: int
    adder_bits: int
    lut: int
    ff: int
    depth: int


def _register_bits(graph: AdderGraph, sched: Schedule) -> int:
    home, need = sched.homes(graph), sched.last_use(graph)
    return sum((stop - start) * node.width for node, start, stop in zip(graph.nodes, home, need))


def graph_cost(graph: AdderGraph, sched: Schedule | None) -> GraphCost:
    """LUT / FF / adder counts of ``graph`` registered as ``sched`` says (no registers: None)."""
    lut = sum(max(1, n.width - 1 - max(n.a.shift, n.b.shift)) for n in graph.adders)
    return GraphCost(adders=len(graph.adders), adder_bits=sum(n.width for n in graph.adders), lut=lut,
                     ff=_register_bits(graph, sched) if sched is not None else 0, depth=graph.depth)
