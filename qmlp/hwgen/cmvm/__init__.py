"""Constant matrix-vector multiplication: fully parallel layers as shared adder graphs.

``cse.build_graph`` turns an integer matrix into an adder graph (signed digits, greedy
pairwise common-subexpression elimination, depth-balanced sums, exact widths); ``schedule``
places pipeline registers for a clock; ``verilog`` renders one module per layer; ``cost``
counts its adders, bits and registers; ``layer`` does all of it for an IR layer.

The hardware plan uses it for every fully parallel layer (``qmlp.hwgen.plan.Unit.CONST``): the
plan builds the layer's graph for the clock, ``emit`` renders it as ``l<i>_graph`` beside the
``qmlp_const_layer`` shell (thresholds, handshake), and the cycle model, timing and estimate read
the same graph. This package imports nothing from the plan or its readers.
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
