"""Constant matrix-vector multiplication: fully parallel layers as shared adder graphs.

``cse.build_graph`` turns an integer matrix into an adder graph (signed digits, greedy
pairwise common-subexpression elimination, depth-balanced sums, exact widths); ``schedule``
places pipeline registers for a clock; ``verilog`` renders one module per layer; ``cost``
counts its adders, bits and registers; ``layer`` does all of it for an IR layer.

Not yet a unit of the hardware plan on main: its integration (a ``Unit.CONST`` layer shell, cycle
model, per-graph synthesis) was built against an earlier plan and still needs the per-channel
threshold direction and the binary-search threshold unit (issue 17's closing note).
"""

from .cse import build_graph
from .digits import csd_digits
from .graph import AdderGraph, Node, Operand, evaluate, signed_width
from .layer import LayerGraph, input_range, layer_graph
from .schedule import Schedule, schedule
from .verilog import render_graph_module

__all__ = ["build_graph", "csd_digits", "AdderGraph", "Node", "Operand", "evaluate", "signed_width",
           "LayerGraph", "input_range", "layer_graph", "Schedule", "schedule",
           "render_graph_module"]
