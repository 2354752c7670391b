"""Timing estimate of a hardware plan: each unit's register-to-register paths in logic levels.

A path is counted the way Yosys ``ltp`` counts it on the ``synth_xilinx`` netlist (with the
flip-flops deleted, qmlp/hwgen/synth.py): LUT levels plus carry cells. An adder of ``b`` bits is
one LUT level and ``ceil(b / 4)`` carry cells (Yosys 0.70 maps carry chains to CARRY4 cells on
both families, as its netlists of the calibration sweep show). The
period of a path is the family's delay model (``synth.DELAY_MODELS``, the same formula as the
``--synth`` report) plus a per-family margin fitted on the calibration sweep (bench/calibrate.py)
so that these paths are not shorter than Yosys' measured depth; fmax here is an ESTIMATE of an
estimate, never checked against a placed design.

Paths per unit (qmlp/hwgen/rtl/README.md):

* MVAU: the first adder-tree stage (product + up to ``levels_per_stage`` adds), later tree stages,
  the accumulator (add + first-fold select), the activation (fold select of the threshold word,
  compare, count, bias add).
* TERNARY: input negation + first tree stage, later stages, compare against constants.
* POPCOUNT: like the MVAU, its levels those of qmlp_popcount: the leaf counts (one LUT, no carry),
  the count tree, the plane combination (an adder of the accumulator width).
* The glue (FIFOs, converters, 32-bit AXI-Lite counters): a fixed short path; the ready chain
  through fully parallel layers with no FIFO between them: one LUT per unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .calibration import load_calibration
from .plan import HardwarePlan, LayerPlan, Storage, ThresholdUnit, Unit
from .synth import fmax_estimate

__all__ = ["Path", "TimingEstimate", "layer_paths", "design_timing", "path_margin_ns", "CARRY_CHAIN"]

CARRY_CHAIN = {"xcup": 4, "xc7": 4}  # bits per carry cell in Yosys' netlist
# The glue's longest path (AXI-Lite control: 32-bit subtract then compare/select), as Yosys
# measures it on the smallest designs of the sweep: 4 LUT levels + two 32-bit carry chains.
_GLUE = (4, (32, 32))


@dataclass(frozen=True)
class Path:
    where: str  # layer name or "glue"
    what: str  # which stage, in words
    lut_levels: int
    carry_cells: int
    fmax_mhz: float
    adders: int = 0  # adder levels on the path (the calibrated per-level delay applies to them)


@dataclass(frozen=True)
class TimingEstimate:
    family: str
    paths: tuple[Path, ...]

    @property
    def critical(self) -> Path:
        return min(self.paths, key=lambda p: p.fmax_mhz)

    @property
    def fmax_mhz(self) -> float:
        return self.critical.fmax_mhz


def _carries(bits: int, family: str) -> int:
    return math.ceil(bits / CARRY_CHAIN[family])


def path_margin_ns(family: str) -> tuple[float, float]:
    """(ns per path, ns per adder level) added to the delay model: the family's calibration
    (``timing`` of its JSON), i.e. how much longer Yosys' netlist depth is than these paths."""
    timing = load_calibration(family).get("timing", {})
    return float(timing.get("margin_ns", 0.0)), float(timing.get("ns_per_adder_level", 0.0))


def chain_compare_levels(bits: int) -> int:
    """LUT levels of a compare against a constant as qmlp_threshold builds it (CONSTANT = 1): an
    AND/OR chain from the LSB, each LUT6 taking the lower bits' verdict and five more bits."""
    return max(1, math.ceil((bits - 1) / 5))


def _path(where: str, what: str, family: str, luts: int, adder_widths: list[int], *, tree: bool = True) -> Path:
    """A path through ``luts`` LUT levels and adders of ``adder_widths``; the calibrated
    per-level delay applies to datapath adders (``tree``), not to the glue's counters."""
    carries = sum(_carries(b, family) for b in adder_widths)
    levels = luts + len(adder_widths)
    margin, per_level = path_margin_ns(family)
    adders = len(adder_widths) if tree else 0
    period = 1000.0 / fmax_estimate(family, levels, carries) + margin + per_level * adders
    return Path(where, what, levels, carries, round(1000.0 / period, 1), adders)


def _tree_paths(p: LayerPlan, family: str, leaf: int, first_luts: int, first_what: str) -> list[Path]:
    """The tree's stages: the first also carries the leaf logic (product or negation)."""
    paths = []
    widths = [min(p.acc_bits, leaf + level) for level in range(1, p.tree_levels + 1)]
    for stage in range(max(1, p.tree_stages)):
        chunk = widths[stage * p.levels_per_stage:(stage + 1) * p.levels_per_stage]
        if stage == 0:
            paths.append(_path(p.name, f"{first_what} + {len(chunk)} adder levels (adder tree stage 1)", family,
                               first_luts, [leaf] * (first_luts > 0) + chunk))
        else:
            paths.append(_path(p.name, f"{len(chunk)} adder levels (adder tree stage {stage + 1})", family, 0, chunk))
    return paths


def _popcount_paths(p: LayerPlan, family: str) -> list[Path]:
    """qmlp_popcount's stages: ``levels_per_stage`` of its levels each (rtl/qmlp_popcount.v)."""
    count_bits = p.simd.bit_length()
    tree = [min(count_bits, 2 + level) for level in range(1, (-(-p.simd // 3) - 1).bit_length() + 1)]
    levels = [None] + tree + [p.acc_bits] * (p.tree_levels - 1 - len(tree))  # None: the leaf LUT
    paths = []
    for stage in range(p.tree_stages):
        chunk = levels[stage * p.levels_per_stage:(stage + 1) * p.levels_per_stage]
        adders = [b for b in chunk if b is not None]
        paths.append(_path(p.name, f"{len(chunk)} popcount levels (adder tree stage {stage + 1})", family,
                           len(chunk) - len(adders), adders))
    return paths


def _activation_path(p: LayerPlan, family: str) -> Path | None:
    t = p.threshold
    if t is None:
        return None
    compare = max(p.acc_bits, t.t_bits) + 1
    if t.unit is ThresholdUnit.SEARCH:
        # bounded by: a level's compare addressing the next level's ROM (LUT levels of its read),
        # and the last compare adding the bias into the output register
        deepest = t.memories[-1]
        read = 1 if deepest.kind is not Storage.LUT else max(1, math.ceil(math.log2(deepest.depth) / 6))
        return _path(p.name, "threshold search level: compare + next ROM read / bias", family, read,
                     [compare, p.out_bits + 1])
    # the table row is registered (its ROM is read a stage earlier): compare, count, bias
    count = max(1, math.ceil(math.log2(t.steps + 1) / 3))  # popcount of the compare bits
    return _path(p.name, f"{t.steps}-step compare + count", family, count, [compare, p.out_bits + 1])


def _graph_paths(p: LayerPlan, family: str) -> list[Path]:
    """One path per stage of a CONST layer's adder graph: its adder levels at the widest node of
    each level; the first stage also holds the FIFO's read multiplexer, the last the threshold
    comparators (qmlp/hwgen/cmvm/schedule.py places the registers for that). The per-level
    margin fitted on the MVAU's trees does not apply: the graph's stages were measured on their
    own Yosys netlists (schedule.py)."""
    graph, sched = p.graph.graph, p.graph.schedule
    widest: dict[int, int] = {}
    for node in graph.adders:
        widest[node.level] = max(widest.get(node.level, 1), node.width)
    paths = []
    for stage in range(sched.stages):
        widths = [widest[level] for level in sorted(widest) if sched.stage(level) == stage]
        what = f"{len(widths)} adder levels (adder graph stage {stage + 1})"
        luts = 1 if stage == 0 else 0
        t = p.threshold
        if stage == sched.stages - 1 and t is not None and t.unit is ThresholdUnit.COMPARE:
            count = max(1, math.ceil(math.log2(t.steps + 1) / 3))
            widths += [p.out_bits + 1]
            luts += chain_compare_levels(max(p.acc_bits, t.t_bits) + 1) + count
            what += f" + {t.steps}-step chain compare + count"
        paths.append(_path(p.name, what, family, luts, widths, tree=False))
    return paths


def layer_paths(p: LayerPlan, family: str) -> list[Path]:
    """Every register-to-register path of one planned layer unit."""
    if p.unit is Unit.CONST:
        paths = _graph_paths(p, family)
        search = p.threshold is not None and p.threshold.unit is ThresholdUnit.SEARCH
        return paths + ([_activation_path(p, family)] if search else [])
    if p.unit is Unit.POPCOUNT:
        paths = _popcount_paths(p, family) + [_path(p.name, "accumulator", family, 1, [p.acc_bits])]
    elif p.planes:  # the AND of input and weight bit sits in the first adders' LUTs
        paths = _tree_paths(p, family, p.plane_leaf_bits, 1, "plane mask")
        paths.append(_path(p.name, "plane combination", family, 0, [p.acc_bits] * (p.planes - 1)))
        paths.append(_path(p.name, "accumulator", family, 1, [p.acc_bits]))
    else:
        paths = _tree_paths(p, family, p.product_bits, 2, "product")  # shift-and-add of the ROM word's weight bits
        paths.append(_path(p.name, "accumulator", family, 1, [p.acc_bits]))
    act = _activation_path(p, family)
    return paths + ([act] if act else [])


def design_timing(hw: HardwarePlan, family: str) -> TimingEstimate:
    """All paths of the design (layers and glue); ``.critical`` is the limiting one."""
    paths = [path for p in hw.layers for path in layer_paths(p, family)]
    luts, widths = _GLUE
    paths.append(_path("glue", "AXI-Lite latency counter", family, luts, list(widths), tree=False))
    if hw.ready_chain > 1:  # en = !vout || m_ready per unit: Yosys keeps one LUT per unit (seed
        # at max: 7 levels through 6 units and the output FIFO's full compare, bench/adder_graph.py)
        paths.append(_path("glue", f"ready chain through {hw.ready_chain} units", family,
                           hw.ready_chain + 1, [], tree=False))
    return TimingEstimate(family, tuple(paths))
