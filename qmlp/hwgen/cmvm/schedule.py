"""Where the pipeline registers of an adder graph go, chosen for a clock from a delay model.

The graph reads the layer's input straight from the FIFO in front of it (a registered memory
behind a small read multiplexer) or, after another fully parallel layer, from that layer's output
register and ends in the shell's output register (``qmlp_const_layer``).
Registers go every ``k`` adder levels; the first stage holds ``k - 1`` levels (the FIFO's read
multiplexer takes one) and the last stage also holds the threshold compare, which costs
``THRESHOLD_LEVELS`` levels (compare LUT + carry, count, bias).

The delay model is the one ``qmlp.hwgen.synth`` uses to estimate fmax from a Yosys netlist (one
fact, one place). A stage of ``k`` levels is planned as ``t_fixed + (k + 3) * t_lut +
(k + 2) * t_carry``: one LUT and one carry cell per level plus up to three LUTs and two carry
cells, measured with Yosys ``ltp`` before the graph's adders were ``(* keep *)`` (ternary fc3, 8
levels in one stage: 10 LUTs, 9 carry cells). Since then (``verilog.py``) a stage of 5 levels
crosses 4-5 LUTs and 5-8 carry cells on every seed layer (fmax estimated 290-357 MHz for the
graphs alone), so the three extra LUTs are now margin for the shell around the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..synth import DELAY_MODELS
from .graph import AdderGraph

__all__ = ["Schedule", "schedule", "levels_per_stage", "deepest", "THRESHOLD_LEVELS"]

THRESHOLD_LEVELS = 3


@dataclass(frozen=True)
class Schedule:
    """``k`` adder levels per stage (``k - 1`` in the first), ``stages`` combinational stages
    from the layer's input to its output register (so the layer's latency is ``stages``)."""

    k: int
    stages: int

    def stage(self, level: int) -> int:
        """Stage in which a node of adder level ``level`` is computed (inputs: stage 0)."""
        return 0 if level < self.k else 1 + (level - self.k) // self.k

    def homes(self, graph: AdderGraph) -> list[int]:
        """The stage each node is computed in (inputs: 0)."""
        return [0 if i < graph.n_inputs else self.stage(n.level) for i, n in enumerate(graph.nodes)]

    def last_use(self, graph: AdderGraph) -> list[int]:
        """The last stage each node is read in (its own stage if never read later): a node
        needs ``last_use - home`` register copies; outputs are read in the last stage."""
        need = self.homes(graph)
        for node in graph.adders:
            for op in (node.a, node.b):
                need[op.node] = max(need[op.node], self.stage(node.level))
        for op in graph.outputs:
            if op is not None:
                need[op.node] = self.stages - 1
        return need

    @property
    def registers_between(self) -> int:
        """Register banks inside the graph (before the shell's output register)."""
        return self.stages - 1


def levels_per_stage(clock_mhz: float, family: str = "xcup") -> int:
    """Adder levels that fit one clock period under the delay model (>= 2)."""
    model = DELAY_MODELS[family]
    budget = 1000.0 / clock_mhz - model.t_fixed_ns - 3 * model.t_lut_ns - 2 * model.t_carry_ns
    return max(2, int(budget // (model.t_lut_ns + model.t_carry_ns)))


def schedule(graph: AdderGraph, clock_mhz: float, *, activation: bool, family: str = "xcup") -> Schedule:
    """Registers every k levels, k from the delay model; the last stage also holds the
    threshold compare when ``activation``."""
    k = levels_per_stage(clock_mhz, family)
    return Schedule(k=k, stages=_stages(graph.depth, k, activation))


def _stages(depth: int, k: int, activation: bool) -> int:
    """Stages of a graph ``depth`` levels deep at ``k`` levels per stage (see ``Schedule``)."""
    return Schedule(k, 1).stage(max(depth + (THRESHOLD_LEVELS if activation else 0), 1)) + 1


def deepest(depth: int, clock_mhz: float, *, activation: bool, family: str = "xcup") -> int:
    """The largest adder depth whose graph ``schedule`` registers in as few stages as a graph of
    ``depth`` levels: the stages hold ``k - 1`` levels, then ``k`` each, the last also the
    threshold compare when ``activation``."""
    k = levels_per_stage(clock_mhz, family)
    return max(depth, k * _stages(depth, k, activation) - 1 - (THRESHOLD_LEVELS if activation else 0))
