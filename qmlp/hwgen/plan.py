"""The hardware plan: every hardware fact of a folded Dataflow, decided once.

``build_plan(df)`` turns a folded, verified IR into frozen values: per layer the padded sizes,
folds, the library unit (``Unit``), weight and threshold storage (``Memory``), widths, adder-tree
pipeline depth and standalone latency; for the whole design the chain of streaming stages
(``StagePlan``: dwc / fifo / layer / argmax, with beats and widths) and the two AXI-Stream ends.

A fully parallel layer is ``Unit.CONST``: its weights become constants of a shared adder graph
(``qmlp.hwgen.cmvm``) that the plan builds once, registered for the dataflow's clock, and carries
(``LayerPlan.graph``). With BIPOLAR inputs and an activation it takes the popcount form like
``Unit.POPCOUNT`` (``counted_form``): the graph sums ``W c`` over the input codes ``c`` in
{0, 1}, one bit narrower per input than the values -1/+1, and the thresholds absorb the row
constants.

Everything downstream reads this plan and re-derives nothing: ``emit`` renders it as Verilog,
``cycles`` steps its stage chain, ``estimate`` prices it, ``sim.rtl``, IP-XACT and the reports
read it. Imports run one way: ir -> plan -> {estimate, cycles, emit} -> fold (the search) ->
pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from ..datatypes import BIPOLAR, TERNARY, UINT, DataType
from ..errors import FoldingError
from ..ir import Dataflow, Folding, Layer
from .cmvm import LayerGraph, layer_graph, signed_width
from .popcount import MAX_LEVELS_PER_STAGE as POPCOUNT_LEVELS_PER_STAGE, PopcountForm, popcount_form, popcount_levels
from .thresholds import MAX_SEARCH_LANES, ThresholdTable, constant_columns, hardware_table, linear_words, search_depth

__all__ = [
    "Unit", "Storage", "StageKind", "Memory", "ThresholdUnit", "ThresholdPlan", "LayerPlan", "StagePlan", "StreamEnd",
    "HardwarePlan", "build_plan", "plan_layer", "check_folded", "weight_storage_dtype", "padded_weights",
    "threshold_table", "uses_popcount", "uses_planes", "input_slice", "input_fifo_depth", "PLANE_MAX_IN_BITS", "counted_form", "graph_input_dtype", "output_dtype", "element_kind",
    "tree_levels", "tree_stages", "memory_storage",
    "is_fully_parallel",
    "FIFO_MIN_DEPTH", "LUTROM_MAX_DEPTH", "LUTROM_SEARCH_MAX_DEPTH", "BRAM18_WORTH_LUTS",
]

FIFO_MIN_DEPTH = 2
# A ROM deeper than this is never built from LUTs by the rule (a LUT6 holds 64 words of one bit).
LUTROM_MAX_DEPTH = 64
# The fold search may still build a ROM up to this deep in LUTs (two LUT6 and a MUXF7 per bit)
# when the fold search prefers LUTs (qmlp.hwgen.fold.objective); deeper ones stay in block RAM, where a LUT ROM
# would need a mux tree per bit (the seed network at 100 k/s: 4 BRAM36 and 1,889 Yosys LUT, or
# 4,620 LUT with every ROM in LUTs).
LUTROM_SEARCH_MAX_DEPTH = 128
# A deeper ROM goes to block RAM unless its LUT version is smaller than this many LUTs: below
# that a BRAM18 would be the larger share of the device for the same bits.
BRAM18_WORTH_LUTS = 64


class Unit(Enum):
    """The library unit a layer becomes."""

    MVAU = "qmlp_mvau"  # folded; weights in a ROM, SIMD products summed by a pipelined tree
    CONST = "qmlp_const_layer"  # fully parallel; weights are constants of a shared adder graph (cmvm)
    POPCOUNT = "qmlp_popcount"  # a qmlp_mvau for BIPOLAR inputs: bit-plane popcounts, no products

    @property
    def module(self) -> str:
        """The Verilog module a layer of this unit instantiates."""
        return Unit.MVAU.value if self is Unit.POPCOUNT else self.value


class Storage(Enum):
    """How a table of constants is built."""

    CONSTANT = "constant"  # one word: the values are wiring, synthesis folds them in
    LUT = "lut"  # a ROM in LUTs (rom_style "logic")
    BRAM = "bram"  # a ROM in block RAM (rom_style "block")


class StageKind(Enum):
    DWC = "dwc"
    FIFO = "fifo"
    LAYER = "layer"
    ARGMAX = "argmax"


@dataclass(frozen=True)
class Memory:
    kind: Storage
    width: int  # bits per word
    depth: int  # words
    # bit columns equal in every word (a threshold table's direction bits when no channel of a
    # lane is negated): Yosys ties them off, so a block RAM holds ``width - constant_bits``
    constant_bits: int = 0

    @property
    def bits(self) -> int:
        return self.width * self.depth


class ThresholdUnit(Enum):
    """How a layer's activation is built (qmlp/hwgen/rtl/README.md)."""

    COMPARE = "qmlp_threshold"  # a comparator per threshold, combinational (outputs < 4 bits)
    SEARCH = "qmlp_threshold_search"  # pipelined binary search, a comparator per level


@dataclass(frozen=True)
class ThresholdPlan:
    """The activation of a layer as built: ``steps`` ascending thresholds of ``t_bits`` per
    channel (``qmlp.hwgen.thresholds``). COMPARE: ``memories`` is one table of ``PE x (steps x
    t_bits + 1)``-bit words, one per output fold (CONSTANT for one fold: wiring), read by all
    lanes. SEARCH: ``memories[k]`` is level k's ROM of one lane (``NF * 2^k`` words), built once
    per lane; ``latency`` = its levels, the extra register stages of the unit."""

    unit: ThresholdUnit
    steps: int
    t_bits: int
    out_bias: int
    memories: tuple[Memory, ...]
    lanes: int  # copies of each memory: 1 (COMPARE) or PE (SEARCH)
    latency: int = 0

    @property
    def block_from(self) -> int:
        """SEARCH: the first level whose ROM is block RAM (32 = none), for the RTL parameter."""
        kinds = [m.kind for m in self.memories]
        return kinds.index(Storage.BRAM) if Storage.BRAM in kinds else 32


@dataclass(frozen=True)
class LayerPlan:
    """How one layer becomes hardware."""

    index: int
    name: str
    unit: Unit
    mw: int  # padded input features
    mh: int  # padded output features
    simd: int
    pe: int
    in_features: int  # unpadded
    out_features: int
    in_bits: int
    in_kind: int  # element_kind of the input
    weight_dtype: DataType  # as stored (BIPOLAR with padded inputs is stored TERNARY)
    acc_bits: int
    acc_signed: bool
    out_bits: int
    weights: Memory
    threshold: ThresholdPlan | None
    levels_per_stage: int  # adder-tree levels between pipeline registers (POPCOUNT: at most its MAX_LEVELS_PER_STAGE)
    tree_levels: int  # ceil(log2(terms)) of the per-channel adder tree
    tree_stages: int  # register stages of that tree (0 for a single term)
    nonzero_weights: int  # nonzero entries of the (unpadded) weight matrix
    product_bits: int  # MVAU: two's-complement width of one input x stored-weight product (at most acc_bits)
    planes: int = 0  # MVAU: weight bit planes summed on trees of their own (``uses_planes``), 0 = one tree of products
    graph: LayerGraph | None = field(default=None, compare=False)  # Unit.CONST: adder graph + schedule

    @property
    def ident(self) -> str:
        """Verilog-safe instance prefix (IR names may hold '/', '.', ...)."""
        return f"l{self.index}"

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def cycles(self) -> int:
        """Cycles per vector (the layer's own initiation interval)."""
        return self.nf * self.sf

    @property
    def w_bits(self) -> int:
        return self.weight_dtype.bits

    @property
    def w_kind(self) -> int:
        return element_kind(self.weight_dtype)

    @property
    def steps(self) -> int:
        return 0 if self.threshold is None else self.threshold.steps

    @property
    def t_bits(self) -> int:
        return 1 if self.threshold is None else self.threshold.t_bits

    @property
    def threshold_latency(self) -> int:
        """Register stages of the threshold unit (the search's levels; 0 for comparators)."""
        return 0 if self.threshold is None else self.threshold.latency

    @property
    def sum_stages(self) -> int:
        """MVAU: registers between the ROM word and the accumulator (the tree's, at least one;
        with planes, one more for their combination)."""
        return max(1, self.tree_stages) + (1 if self.planes else 0)

    @property
    def plane_leaf_bits(self) -> int:
        """A plane tree's leaf: the input masked by one weight bit (a zero sign bit when unsigned)."""
        return self.in_bits if self.in_kind == 1 else self.in_bits + 1

    @property
    def latency(self) -> int:
        """Cycles from the layer's first input beat to its last output beat when it runs alone
        (input always valid, output always ready); qmlp/hwgen/rtl/README.md."""
        extra = self.threshold_latency
        if self.graph is not None:  # graph stages (the last ends in the output register), search levels
            return self.graph.latency + extra
        # last issue at NF*SF - 1; ROM register, sum stages, accumulator, output register
        return self.cycles - 1 + 3 + self.sum_stages + extra


@dataclass(frozen=True)
class StagePlan:
    """One unit of the chain between s_axis and m_axis. ``name`` names its output stream;
    ``elems_in``/``elems_out`` elements per beat, ``beats_in``/``beats_out`` per vector,
    ``real`` real (unpadded) elements per output vector, ``depth`` FIFO words, ``layer`` the
    layer index of a LAYER stage."""

    kind: StageKind
    name: str
    elems_in: int
    elems_out: int
    bits_in: int
    bits_out: int
    beats_in: int
    beats_out: int
    real: int
    depth: int = 0
    layer: int | None = None

    @property
    def width_out(self) -> int:
        return self.elems_out * self.bits_out

    @property
    def width_in(self) -> int:
        return self.elems_in * self.bits_in

    @property
    def is_gather(self) -> bool:
        """A width converter whose output beat is a whole number of input beats: qmlp_gather,
        a register written a group at a time, whose ready passes through."""
        return self.kind is StageKind.DWC and self.elems_out % self.elems_in == 0

    @property
    def is_slice(self) -> bool:
        """A FIFO of depth 1: qmlp_fifo's register slice, whose ready passes through (``_fifo``)."""
        return self.kind is StageKind.FIFO and self.depth == 1


@dataclass(frozen=True)
class StreamEnd:
    """One AXI-Stream port: element type, elements per beat, beats per vector, TDATA bits."""

    dtype: DataType
    elems: int  # per beat
    beats: int  # per vector
    features: int  # real elements per vector

    @property
    def width(self) -> int:
        return self.elems * self.dtype.bits

    @property
    def tdata_bits(self) -> int:
        return 8 * -(-self.width // 8)


@dataclass(frozen=True)
class HardwarePlan:
    name: str
    clock_mhz: float | None
    layers: tuple[LayerPlan, ...]
    stages: tuple[StagePlan, ...]
    input: StreamEnd
    output: StreamEnd
    argmax: bool
    argmax_signed: bool  # compare the last layer's outputs as signed numbers

    @property
    def ts_depth(self) -> int:
        """Power of two >= inferences that can be in flight: each unit holds parts of at most
        two vectors, a layer brings three units, and a pipeline deeper than the layer's cycles
        per vector holds one more vector per extra ``cycles`` of latency."""
        pipelined = sum(l.latency // l.cycles for l in self.layers)
        return 1 << (6 * (len(self.layers) + 2) + pipelined - 1).bit_length()

    @property
    def ready_chain(self) -> int:
        """Most units in a row whose s_ready is a function of their m_ready (layers, argmax,
        register slices and gathering converters with no FIFO or other converter between them):
        one combinational ready chain."""
        longest = run = 0
        for stage in self.stages:
            passes = stage.kind in (StageKind.LAYER, StageKind.ARGMAX) or stage.is_slice or stage.is_gather
            run = run + 1 if passes else 0
            longest = max(longest, run)
        return longest

    def layer_stage(self, index: int) -> StagePlan:
        return next(s for s in self.stages if s.kind is StageKind.LAYER and s.layer == index)


# --- facts -------------------------------------------------------------------------------------

def element_kind(dtype: DataType) -> int:
    """Element encoding code of the RTL library: 0 UINT, 1 two's complement, 2 BIPOLAR."""
    if dtype == BIPOLAR:
        return 2
    return 1 if dtype.signed else 0


def tree_levels(terms: int) -> int:
    """Adder levels of a balanced binary tree over ``terms`` operands."""
    return (terms - 1).bit_length() if terms > 1 else 0


def tree_stages(terms: int, levels_per_stage: int) -> int:
    """Register stages of ``qmlp_adder_tree``: one after every ``levels_per_stage`` levels and
    one after the last level."""
    return -(-tree_levels(terms) // levels_per_stage)


def weight_storage_dtype(layer: Layer) -> DataType:
    """Type of the ROM words: the weight type, except BIPOLAR layers with padded inputs are stored
    as TERNARY, because a padding column needs weight 0 (BIPOLAR has no zero; the padded input
    elements are code 0 = -1 for a BIPOLAR input and must not count)."""
    if layer.weight_dtype == BIPOLAR and layer.folding is not None and layer.folding.pad_in > 0:
        return TERNARY
    return layer.weight_dtype


def padded_weights(layer: Layer) -> np.ndarray:
    """The zero-padded (MH', MW') weight matrix of a folded layer."""
    f = layer.folding
    w = np.zeros((layer.out_features + f.pad_out, layer.in_features + f.pad_in), dtype=np.int64)
    w[: layer.out_features, : layer.in_features] = layer.weights
    return w


def threshold_table(layer: Layer, mh: int, unit: Unit) -> ThresholdTable:
    """The layer's thresholds as stored for ``mh`` padded channels (qmlp.hwgen.thresholds); a
    unit in popcount form (``counted_form``) compares its count ``P``, with the row constants
    folded in (qmlp.hwgen.popcount)."""
    form = counted_form(layer, unit)
    if form is not None:
        return hardware_table(form.thresholds, form.acc, mh)
    return hardware_table(layer.activation, layer.acc_dtype, mh)


def uses_popcount(layer: Layer) -> bool:
    """A layer with BIPOLAR inputs and an activation: its unit (POPCOUNT, or CONST) sums over the
    input codes and the row constant goes into the thresholds (so a raw last layer keeps the
    values -1/+1: an MVAU, or a CONST graph over them)."""
    return layer.in_dtype == BIPOLAR and layer.activation is not None


def counted_form(layer: Layer, unit: Unit) -> PopcountForm | None:
    """The popcount form (qmlp.hwgen.popcount) of a layer whose ``unit`` sums over BIPOLAR input
    codes, None for the others. A CONST graph adds signed-digit terms ``W c`` for every weight
    type (BIPOLAR weights are the values -1/+1 there, never an XNOR count)."""
    if unit is Unit.MVAU or not uses_popcount(layer):
        return None
    storage = weight_storage_dtype(layer)
    return popcount_form(layer, TERNARY if unit is Unit.CONST and storage == BIPOLAR else storage)


def graph_input_dtype(layer: Layer) -> DataType:
    """The type a CONST graph reads its inputs as: UINT1 codes in popcount form (``counted_form``;
    on 64 rows of random INT2 weights and 75 to 300 inputs its graph counts 0.65 to 0.69 of
    the LUTs of the graph over -1/+1), else the layer's input type."""
    return UINT(1) if uses_popcount(layer) else layer.in_dtype


def memory_storage(width: int, depth: int, choice: str = "auto") -> Storage:
    """Where a ROM of ``depth`` words x ``width`` bits is built: CONSTANT for a single word, else
    ``choice`` (``Folding.weight_storage``: "lut" or "bram"), or for "auto" the rule in the module
    constants."""
    if width == 0 or depth <= 1:
        return Storage.CONSTANT
    if choice != "auto":
        return Storage.LUT if choice == "lut" else Storage.BRAM
    if depth <= LUTROM_MAX_DEPTH or width * math.ceil(depth / 64) < BRAM18_WORTH_LUTS:
        return Storage.LUT
    return Storage.BRAM


def output_dtype(df: Dataflow) -> DataType:
    """Element type on m_axis (docs/interfaces.md): last layer's output, or the class index."""
    if df.argmax:
        return UINT(max(1, (df.layers[-1].out_features - 1).bit_length()))
    return df.layers[-1].out_dtype


def check_folded(df: Dataflow) -> None:
    """Raise FoldingError unless every layer is folded legally and ``df.stream`` is set."""
    for index, layer in enumerate(df.layers):
        f = layer.folding
        where = f"layer {index} ({layer.name})"
        if f is None:
            raise FoldingError(f"{where}: no folding set; run qmlp.hwgen.fold.fold() or apply_folding() first")
        if (layer.out_features + f.pad_out) % f.pe or (layer.in_features + f.pad_in) % f.simd:
            raise FoldingError(f"{where}: PE={f.pe}/SIMD={f.simd} do not divide {layer.out_features}+{f.pad_out} x "
                               f"{layer.in_features}+{f.pad_in}; choose divisors or set the padding")
        if not (0 <= f.pad_out < f.pe and 0 <= f.pad_in < f.simd):
            raise FoldingError(f"{where}: padding pad_out={f.pad_out}, pad_in={f.pad_in} must be below PE/SIMD")
    if df.stream is None:
        raise FoldingError(f"dataflow {df.name}: stream format not set; run qmlp.hwgen.fold.with_stream() first")
    if df.stream.in_elems_per_beat < 1 or df.stream.out_elems_per_beat < 1:
        raise FoldingError(f"dataflow {df.name}: stream elements per beat must be >= 1, got {df.stream}")


# --- layers ------------------------------------------------------------------------------------

def _threshold_plan(layer: Layer, pe: int, mh: int, unit: Unit) -> ThresholdPlan | None:
    """A CONST unit takes the table as parameters (constants)."""
    act = layer.activation
    if act is None:
        return None
    constant = unit is Unit.CONST
    table = threshold_table(layer, mh, unit)
    t_bits = table.t_bits
    nf = mh // pe
    bias = 0 if act.out_dtype == BIPOLAR else act.bias
    levels = search_depth(act)
    if levels and pe > MAX_SEARCH_LANES:
        raise FoldingError(f"layer {layer.name}: {pe} lanes of binary-search thresholds exceed the "
                           f"{MAX_SEARCH_LANES} the RTL names; choose a PE of at most {MAX_SEARCH_LANES}")
    if levels:
        memories = tuple(Memory(memory_storage(t_bits + (k == 0), nf << k), t_bits + (k == 0), nf << k)
                         for k in range(levels))
        return ThresholdPlan(ThresholdUnit.SEARCH, act.steps, t_bits, bias, memories, lanes=pe, latency=levels)
    width = pe * (act.steps * t_bits + 1)
    kind = Storage.CONSTANT if constant else memory_storage(width, nf)
    fixed = 0 if kind is Storage.CONSTANT else constant_columns(*linear_words(table, pe))
    return ThresholdPlan(ThresholdUnit.COMPARE, act.steps, t_bits, bias, (Memory(kind, width, nf, fixed),), lanes=1)


# Inputs of at most this many bits times 2-bit weights are summed per weight bit plane
# (``uses_planes``). Measured, Yosys 0.70 synth_xilinx -family xcup, flat, the seed's fc1 at
# 5 M/s (UINT2 x INT2, PE 26 x SIMD 32, LUT ROM): 11,530 LUT with products and one tree,
# 8,809 with two plane trees (+858 FF of their registers); its fc0 (INT8 x INT2, 7 x 40): 7,224
# with products, 9,549 with planes.
PLANE_MAX_IN_BITS = 2


def uses_planes(in_dtype: DataType, weight_dtype: DataType, unit: Unit, simd: int) -> bool:
    """An MVAU whose SIMD sum is one adder tree per weight bit plane (rtl/qmlp_mvau.v, PLANES):
    2-bit stored weights that are not BIPOLAR, non-BIPOLAR inputs of at most
    ``PLANE_MAX_IN_BITS`` bits, more than one input per cycle."""
    return (unit is Unit.MVAU and simd > 1 and weight_dtype.bits == 2 and weight_dtype != BIPOLAR
            and in_dtype != BIPOLAR and in_dtype.bits <= PLANE_MAX_IN_BITS)


def is_fully_parallel(layer: Layer, folding: Folding) -> bool:
    """PE covers every (padded) output and SIMD every input: one vector per clock."""
    return folding.pe == layer.out_features + folding.pad_out and folding.simd == layer.in_features + folding.pad_in


def plan_layer(index: int, layer: Layer, folding: Folding | None = None, clock_mhz: float | None = None) -> LayerPlan:
    """The plan of one layer under ``folding`` (default: ``layer.folding``, which must be set).

    A fully parallel layer becomes ``Unit.CONST``: its padded weights are constants of a shared
    adder graph (``qmlp.hwgen.cmvm.layer_graph``, cached per matrix) registered for ``clock_mhz``
    (200 MHz when None); the graph's last stage also holds the threshold comparators, or ends in
    the binary search's first register. With BIPOLAR inputs and an activation the graph reads
    the input codes (``graph_input_dtype``) and its accumulator is the popcount form's ``P``.
    Every other layer is a ``Unit.MVAU``, or a ``Unit.POPCOUNT`` for BIPOLAR inputs with an
    activation (``uses_popcount``: its accumulator is the count ``P``, qmlp.hwgen.popcount),
    whose ROM of ``NF*SF`` words x ``PE*SIMD*w`` bits is a LUT ROM or block RAM."""
    f = folding if folding is not None else layer.folding
    if f is None:
        where = f"layer {index} ({layer.name})"
        raise FoldingError(f"{where}: no folding set; run qmlp.hwgen.fold.fold() or apply_folding() first")
    if folding is not None:
        from ..ir import replace
        layer = replace(layer, folding=folding)
    mw, mh = layer.in_features + f.pad_in, layer.out_features + f.pad_out
    cycles = (mw // f.simd) * (mh // f.pe)
    storage = weight_storage_dtype(layer)
    graph = None
    if is_fully_parallel(layer, f):
        unit, weights = Unit.CONST, Memory(Storage.CONSTANT, 0, 1)
        compare = layer.activation is not None and not search_depth(layer.activation)
        graph = layer_graph(padded_weights(layer), graph_input_dtype(layer), activation=compare, clock_mhz=clock_mhz)
    else:
        width = f.pe * f.simd * storage.bits
        unit = Unit.POPCOUNT if uses_popcount(layer) else Unit.MVAU
        weights = Memory(memory_storage(width, cycles, f.weight_storage), width, cycles)
    acc, per_stage = layer.acc_dtype, f.levels_per_stage
    levels = tree_levels(f.simd)
    form = counted_form(layer, unit)
    if form is not None:
        acc = form.acc
    if unit is Unit.POPCOUNT:
        levels = popcount_levels(f.simd, storage)
        per_stage = min(per_stage, POPCOUNT_LEVELS_PER_STAGE)
    if graph is not None:
        per_stage, levels = graph.schedule.k, graph.graph.depth
    return LayerPlan(
        index=index, name=layer.name, unit=unit, mw=mw, mh=mh, simd=f.simd, pe=f.pe,
        in_features=layer.in_features, out_features=layer.out_features,
        in_bits=layer.in_dtype.bits, in_kind=element_kind(layer.in_dtype), weight_dtype=storage,
        acc_bits=acc.bits, acc_signed=bool(acc.signed), out_bits=layer.out_dtype.bits,
        weights=weights, threshold=_threshold_plan(layer, f.pe, mh, unit),
        levels_per_stage=per_stage, tree_levels=levels,
        tree_stages=graph.schedule.registers_between if graph else -(-levels // per_stage),
        nonzero_weights=int(np.count_nonzero(layer.weights)), graph=graph,
        product_bits=min(acc.bits, product_width(layer.in_dtype, storage)),
        planes=storage.bits if uses_planes(layer.in_dtype, storage, unit, f.simd) else 0,
    )


def product_width(x: DataType, w: DataType) -> int:
    """Bits of the smallest two's-complement type holding every product of an ``x`` and a ``w``
    value: the MVAU's products and adder-tree leaves (a ternary weight times UINT2 is 3 bits,
    where the generic ``bits(x) + bits(w) + 1`` bound gives 5)."""
    corners = [a * b for a in (x.min, x.max) for b in (w.min, w.max)]
    return signed_width(min(corners), max(corners))


# --- the stage chain ---------------------------------------------------------------------------

def _converter(src: StagePlan, elems: int, beats: int, name: str) -> StagePlan | None:
    """A width converter from ``src``'s beats to ``elems`` per beat over ``beats`` beats, or None
    when the formats already agree (padding elements then flow into zero weight columns)."""
    if src.elems_out == elems and src.beats_out == beats:
        return None
    return StagePlan(StageKind.DWC, name, src.elems_out, elems, src.bits_out, src.bits_out,
                     src.beats_out, beats, src.real)


def input_slice(unit: Unit, sf: int, first: bool) -> bool:
    """Whether the buffer in front of a layer is a register slice rather than a FIFO (``_fifo``):
    before a fully parallel layer, and at s_axis before a layer whose vector is one beat."""
    return unit is Unit.CONST or (sf == 1 and first)


def input_fifo_depth(beats: int, slice_: bool) -> int:
    """Words of the buffer in front of a layer whose vector is ``beats`` beats (``_fifo``)."""
    return 1 if slice_ else max(FIFO_MIN_DEPTH, beats + 1)


def _fifo(src: StagePlan, name: str, *, slice_: bool = False) -> StagePlan:
    # A whole vector (+1 beat) of the consumer's input fits: the producer never waits while the
    # consumer runs its output folds nf > 0 (which take no input), and the consumer finds its next
    # vector complete, taking one beat per cycle. This keeps II = max over layers of NF*SF.
    # ``slice_``: depth 1, a register slice (qmlp_fifo) in front of a unit whose vector is one beat
    # (SF = 1): a fully parallel layer takes it in every cycle it is not stalled, a folded one holds
    # it in its input register through all its output folds, so the next vector needs one slot
    # only (the seed's fc0 at 5 M/s: a 320-bit FIFO of 23 RAM32M16, 184 LUT sites, becomes
    # flip-flops). A slice passes the ready through, and so does a folded unit: ``_chain`` puts one
    # before a folded layer only at s_axis, so that slices do not chain the readies of folded layers
    # across the network (UNSW with SF = 1 everywhere: 10 units, ~92 MHz by the timing model).
    return StagePlan(StageKind.FIFO, name, src.elems_out, src.elems_out, src.bits_out, src.bits_out,
                     src.beats_out, src.beats_out, src.real, depth=input_fifo_depth(src.beats_out, slice_))


def _chain(df: Dataflow, layers: tuple[LayerPlan, ...], inp: StreamEnd, out: StreamEnd) -> tuple[StagePlan, ...]:
    # The s_axis side as a pseudo stage named "in" (not part of the chain).
    src = StagePlan(StageKind.FIFO, "in", inp.elems, inp.elems, inp.dtype.bits, inp.dtype.bits,
                    inp.beats, inp.beats, inp.features)
    stages: list[StagePlan] = []

    def add(stage: StagePlan | None) -> None:
        nonlocal src
        if stage is not None:
            stages.append(stage)
            src = stage

    prev: LayerPlan | None = None
    for plan in layers:
        conv = _converter(src, plan.simd, plan.sf, f"{plan.ident}_in")
        add(conv)
        # Two fully parallel layers back to back need no FIFO: the consumer takes one vector per
        # cycle straight from the producer's output register and both stall on the same ready
        # chain (``ready_chain``), so a FIFO would only add a cycle and a LUTRAM copy of the vector.
        if not (conv is None and prev is not None and prev.unit is Unit.CONST and plan.unit is Unit.CONST):
            add(_fifo(src, f"{plan.ident}_q", slice_=input_slice(plan.unit, plan.sf, prev is None)))
        add(StagePlan(StageKind.LAYER, f"{plan.ident}_out", plan.simd, plan.pe, plan.in_bits, plan.out_bits,
                      plan.sf, plan.nf, plan.out_features, layer=plan.index))
        prev = plan
    if df.argmax:
        add(StagePlan(StageKind.ARGMAX, "result", src.elems_out, 1, src.bits_out, out.dtype.bits,
                      src.beats_out, 1, 1))
    # Padded output channels are zeroed (or the beat re-packed) before m_axis.
    if (src.elems_out * src.beats_out != src.real and not df.argmax) or src.elems_out != out.elems:
        add(StagePlan(StageKind.DWC, "result_conv", src.elems_out, out.elems, src.bits_out, src.bits_out,
                      src.beats_out, out.beats, src.real))
    add(_fifo(src, "result_q"))
    return tuple(stages)


def build_plan(df: Dataflow) -> HardwarePlan:
    """The hardware plan of a folded Dataflow (FoldingError when it is not folded legally)."""
    check_folded(df)
    layers = tuple(plan_layer(i, layer, clock_mhz=df.clock_mhz) for i, layer in enumerate(df.layers))
    e_in, e_out = df.stream.in_elems_per_beat, df.stream.out_elems_per_beat
    out_dtype = output_dtype(df)
    n_out = 1 if df.argmax else df.layers[-1].out_features
    inp = StreamEnd(df.input.dtype, e_in, -(-df.input.features // e_in), df.input.features)
    out = StreamEnd(out_dtype, e_out, -(-n_out // e_out), n_out)
    last = df.layers[-1].out_dtype
    return HardwarePlan(name=df.name, clock_mhz=df.clock_mhz, layers=layers, stages=_chain(df, layers, inp, out),
                        input=inp, output=out, argmax=df.argmax, argmax_signed=bool(last.signed and last != BIPOLAR))
