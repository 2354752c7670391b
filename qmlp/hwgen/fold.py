"""Folding passes: choose or apply PE/SIMD per layer (IR -> IR).

A layer with MH outputs and MW inputs processed PE outputs x SIMD inputs per clock needs
``(MH'/PE) * (MW'/SIMD)`` cycles per inference, where ``MH' = MH + pad_out`` and
``MW' = MW + pad_in`` are the zero-padded sizes (FINN's rule is the special case pad = 0, i.e.
PE | MH and SIMD | MW). Padding only ever rounds a dimension up to the next multiple of its
parallelism (pad < PE, pad < SIMD), so a padded layer does exactly the work of
``ceil(MH/PE) * ceil(MW/SIMD)`` cycles and never wastes a whole extra fold.

Timing-aware: every candidate (PE, SIMD, pads) gets the largest ``levels_per_stage`` (adder-tree
levels between registers) whose estimated paths (``qmlp.hwgen.timing``) meet the clock on the
target family, and the search minimises the calibrated cost (``qmlp.hwgen.estimate``) of the
planned unit among candidates that meet both the cycle budget and the clock. The fully parallel
candidate (``Unit.CONST``, an adder graph) is priced last and only built when a cheap bound on its
graph (``cmvm.layer.const_lut_bound``) is below the best folded candidate: at ordinary rates no
graph is built at all. The layers are chosen together (``fold_chain``): a consumer that reads its
producer's beats as they are needs no width converter, which a cheaper folding of either layer
alone may not be worth.

Block RAM against LUTs (``fold``): a layer's cost is LUT + FF/4 + BRAM36 x a price in LUTs. The
network is folded at a few prices (``BRAM_PRICES``: from cheap block RAM up to a BRAM36's share
of the part in LUTs) and the folding kept is the one ``objective`` ranks first: the largest share of the
part any resource takes (in whole percent), where shares below ``SCARCE_SHARE`` count alike, then
the LUT share. So a
design that uses little of the part spends block RAM wherever it saves LUTs, and a large one
balances the resource that runs out first.

Every pass here returns a new Dataflow with ``Layer.folding``, ``Dataflow.stream`` (rule in
docs/interfaces.md) and ``Dataflow.clock_mhz`` set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping, MutableMapping

from ..boards import Resources
from ..errors import FoldingError
from ..untrusted import read_json
from ..ir import Dataflow, Folding, Layer, StreamFormat, replace
from .cycles import cycle_model
from .estimate import Features, NetworkEstimate, estimate, estimate_layer, layer_cost, price, stage_features
from .cmvm.layer import const_lut_bound
from .estimate import GRAPH_LUT_FACTOR
from .plan import (LUTROM_SEARCH_MAX_DEPTH, StageKind, StagePlan, Storage, Unit, graph_input_dtype, input_fifo_depth,
                   input_slice, is_fully_parallel, plan_layer)
from .timing import layer_paths

__all__ = [
    "divisors", "parallelism_options", "fold_cycles", "target_cycles", "fold_layer", "fold",
    "apply_folding", "layer_options", "fold_chain", "read_folding", "folding_config", "write_final_hw_config", "with_stream",
    "default_target_fps", "choose_levels", "slowest_fps", "DMA_FEED_FPS", "storage_options", "reference_part",
    "part_shares", "objective", "bram_prices", "fold_at_price", "BRAM_PRICES", "SCARCE_SHARE", "SHARE_STEP",
]

# What a Zynq host can feed through one AXI DMA, vector by vector: about 1-2 M inferences/s.
# Tiny networks (at most TINY_NETWORK_WEIGHTS weights) are folded for this rate by default;
# anything faster would idle behind the DMA.
DMA_FEED_FPS = 1_000_000
TINY_NETWORK_WEIGHTS = 2048
# Larger networks default to this many clock cycles per inference (200 k inferences/s at
# 200 MHz, 100 k/s at 100 MHz): a few thousand LUTs for an MLP like the seed network.
DEFAULT_CYCLES_PER_INFERENCE = 1000
# The network objective. Below this share of the part no resource is scarce (a few BRAM18s are
# already 1-2% of a ZCU104's block RAM, while the LUTs they save are what designs run out of), so
# the LUT share decides; above it, the resource with the largest share does.
SCARCE_SHARE = 0.10
# Largest shares are compared in whole steps of this size: a BRAM18 or a few hundred LUTs less of
# the scarcest resource (0.16% of a ZCU104's block RAM) is within the estimate's error and must
# not buy hundreds of LUTs more (the ternary-a8 seed at 100 k/s: 0.5 BRAM36 for about 400 LUTs).
SHARE_STEP = 0.01
# The BRAM36 prices the network is folded at, as fractions of the part's LUTs per BRAM36: from
# cheap (a BRAM18 must still save 23 LUTs on a ZCU104: block RAM is never free) to a BRAM36
# costing its share of the part in LUTs. Each price gives one design for ``objective`` to rank;
# with four (1/16, 1/4, 1/2, 1) the UNSW MLP at 1 M/s on a PYNQ-Z2 missed a design between two
# of them with fewer LUTs (14.5 BRAM36, 10.4% of the part, estimated 3,904 LUT against 3,954).
BRAM_PRICES = (1 / 16, 1 / 8, 3 / 16, 1 / 4, 3 / 8, 1 / 2, 3 / 4, 1.0)


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` (FINN's legal PE/SIMD values), ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def parallelism_options(n: int, *, allow_padding: bool = True) -> list[tuple[int, int]]:
    """Legal ``(parallelism, pad)`` pairs for a dimension of size ``n``.

    Without padding: the divisors of n with pad 0. With padding: for every achievable fold count
    f the smallest parallelism reaching it, p = ceil(n / f), padded by ``(-n) % p``; a larger p
    with the same fold count would only add idle lanes, so it is never offered."""
    if not allow_padding:
        return [(d, 0) for d in divisors(n)]
    options = {math.ceil(n / f) for f in range(1, n + 1)}
    return [(p, (-n) % p) for p in sorted(options)]


def fold_cycles(layer: Layer, folding: Folding) -> int:
    """Cycles per inference of one layer: (MH'/PE) * (MW'/SIMD)."""
    out_folds = (layer.out_features + folding.pad_out) // folding.pe
    in_folds = (layer.in_features + folding.pad_in) // folding.simd
    return out_folds * in_folds


def target_cycles(target_fps: float | str, clock_mhz: float) -> int:
    """Cycle budget per inference: floor(clock_hz / target_fps); ``"max"`` means 1.

    Raises FoldingError when the target is not a positive number or exceeds one inference per
    clock (no folding can meet it)."""
    if clock_mhz is None or not clock_mhz > 0:
        raise FoldingError(f"--clock-mhz: {clock_mhz!r} is not a positive frequency; give e.g. --clock-mhz 200")
    if target_fps == "max":
        return 1
    try:
        fps = float(target_fps)
    except (TypeError, ValueError):
        raise FoldingError(f"--target-fps: {target_fps!r} is neither a number nor 'max'") from None
    if not fps > 0 or math.isinf(fps):
        raise FoldingError(f"--target-fps: {target_fps!r} must be a positive number of inferences/s or 'max'")
    budget = math.floor(clock_mhz * 1e6 / fps + 1e-9)
    if budget < 1:
        raise FoldingError(
            f"--target-fps {fps:g} exceeds one inference per clock at {clock_mhz:g} MHz; "
            f"use at most {clock_mhz * 1e6:g} (or 'max') or raise --clock-mhz")
    return budget


def default_target_fps(df: Dataflow, clock_mhz: float) -> float:
    """The default folding target: DMA_FEED_FPS for networks of at most TINY_NETWORK_WEIGHTS
    weights, else DEFAULT_CYCLES_PER_INFERENCE cycles per inference (never above DMA_FEED_FPS)."""
    weights = sum(layer.weights.size for layer in df.layers)
    if weights <= TINY_NETWORK_WEIGHTS:
        return float(DMA_FEED_FPS)
    return min(float(DMA_FEED_FPS), clock_mhz * 1e6 / DEFAULT_CYCLES_PER_INFERENCE)


def slowest_fps(df: Dataflow, clock_mhz: float) -> float:
    """Inferences/s of the slowest legal design (PE = SIMD = 1 everywhere): no folding is slower."""
    return clock_mhz * 1e6 / max(layer.in_features * layer.out_features for layer in df.layers)


def choose_levels(layer: Layer, folding: Folding, *, clock_mhz: float, family: str, index: int = 0) -> Folding:
    """``folding`` with the largest ``levels_per_stage`` whose adder-tree paths are estimated to
    meet ``clock_mhz`` on ``family`` (fewest pipeline registers); 1 when none does. A fully
    parallel folding is returned as is (its adder graph places its own registers)."""
    if is_fully_parallel(layer, folding):
        return folding
    top = plan_layer(index, layer, folding).tree_levels
    for levels in range(max(1, top), 0, -1):
        candidate = replace(folding, levels_per_stage=levels)
        plan = plan_layer(index, layer, candidate)
        if all(p.fmax_mhz >= clock_mhz for p in layer_paths(plan, family) if "adder" in p.what):
            return replace(candidate, levels_per_stage=plan.levels_per_stage)  # as built (POPCOUNT caps it)
    return replace(folding, levels_per_stage=1)


def _input_glue(index: int, layer: Layer, folding: Folding) -> Features:
    """The FIFO in front of a layer (a register slice at s_axis for a one-beat vector, as the plan
    builds it): it grows with SIMD, so the search must see it. (The width
    converter before it depends on the producer's folding too: ``_converter_cost``.)"""
    sf = (layer.in_features + folding.pad_in) // folding.simd
    bits = layer.in_dtype.bits
    # the folded units' rule: a fully parallel candidate is priced with a FIFO (its slice costs less)
    depth = input_fifo_depth(sf, input_slice(Unit.MVAU, sf, index == 0))
    return stage_features(StagePlan(StageKind.FIFO, "q", folding.simd, folding.simd, bits, bits, sf, sf,
                                    layer.in_features, depth=depth))


def _stream_formats(layer: Layer, folding: Folding) -> tuple[tuple[int, int], tuple[int, int]]:
    """(elements per beat, beats) of a folded layer's input and output streams."""
    return ((folding.simd, (layer.in_features + folding.pad_in) // folding.simd),
            (folding.pe, (layer.out_features + folding.pad_out) // folding.pe))


def _converter_cost(elems_in: int, beats_in: int, elems_out: int, beats_out: int, bits: int, real: int,
                    family: str) -> float:
    """LUT + FF/4 of the width converter from ``beats_in`` beats of ``elems_in`` elements of
    ``bits`` to ``beats_out`` beats of ``elems_out`` (``real`` of them real), as the plan builds it."""
    stage = StagePlan(StageKind.DWC, "c", elems_in, elems_out, bits, bits, beats_in, beats_out, real)
    lut, ff = price(stage_features(stage), family)
    return lut + ff / 4


# One storage option of a timed candidate: (folding, misses the clock, LUT + FF/4 with its input
# glue, BRAM36, -fmax); the price of block RAM is applied when ranking.
_Priced = tuple[Folding, bool, float, float, float]


def _priced(index: int, layer: Layer, folding: Folding, clock_mhz: float, family: str) -> list[_Priced]:
    """``folding`` timed for the clock (``choose_levels``) in each of its ``storage_options``."""
    timed = choose_levels(layer, folding, clock_mhz=clock_mhz, family=family, index=index)
    out = []
    for candidate in storage_options(index, layer, timed):
        est = estimate_layer(plan_layer(index, layer, candidate, clock_mhz), layer.weights, family)
        cost = layer_cost(est) + _glue_cost(index, layer, candidate, family)
        out.append((candidate, est.fmax_mhz < clock_mhz, cost, est.bram36, -est.fmax_mhz))
    return out


def storage_options(index: int, layer: Layer, folding: Folding) -> list[Folding]:
    """``folding`` as the plan's rule builds its weight ROM ("auto"), and with the other storage
    when the ROM has more than one word: block RAM for a LUT ROM, LUTs for a block-RAM ROM of at
    most ``LUTROM_SEARCH_MAX_DEPTH`` words. The search prices both (``fold``'s BRAM price sweep)."""
    auto = replace(folding, weight_storage="auto")
    if is_fully_parallel(layer, folding):
        return [auto]
    rom = plan_layer(index, layer, auto).weights
    if rom.kind is Storage.LUT:
        return [auto, replace(folding, weight_storage="bram")]
    if rom.kind is Storage.BRAM and rom.depth <= LUTROM_SEARCH_MAX_DEPTH:
        return [auto, replace(folding, weight_storage="lut")]
    return [auto]


def reference_part(family: str) -> Resources:
    """The part a folding is judged against when no board is named: the largest known board of
    ``family`` (board data, ``qmlp/boards/data``)."""
    from ..boards import get_board, known_boards

    boards = [b for b in map(get_board, known_boards()) if b.family == family]
    if not boards:
        raise FoldingError(f"no known board of family {family!r} to size the design against; pass part=board.resources")
    return max(boards, key=lambda b: b.resources.lut).resources


def bram_prices(part: Resources) -> list[float]:
    """The BRAM36 prices in LUTs ``fold`` sweeps on ``part``: ``BRAM_PRICES`` x its LUTs per
    BRAM36 (on a part without block RAM, only an infinite price)."""
    if not part.bram36:
        return [math.inf]
    return [fraction * part.lut / part.bram36 for fraction in BRAM_PRICES]


def part_shares(est: NetworkEstimate, part: Resources) -> dict[str, float]:
    """The share of ``part`` each resource of ``est`` takes (LUT, FF, BRAM36, DSP; 1.0 = all of it;
    any use of a resource the part lacks is infinite)."""
    used = est.counts()
    return {name: (used[name] / total if total else (math.inf if used[name] else 0.0))
            for name, total in part.counts().items()}


def objective(shares: Mapping[str, float]) -> tuple[float, float, float]:
    """What the fold search minimises over whole networks, lower first: the largest share of the
    part any resource takes, rounded to whole ``SHARE_STEP``s (below ``SCARCE_SHARE`` counted as
    ``SCARCE_SHARE``), then the LUT share, then the sum of the shares."""
    largest = max(shares.values())
    if math.isfinite(largest):
        largest = round(largest / SHARE_STEP) * SHARE_STEP
    return max(SCARCE_SHARE, largest), shares["LUT"], sum(shares.values())


def _glue_cost(index: int, layer: Layer, folding: Folding, family: str) -> float:
    glue_lut, glue_ff = price(_input_glue(index, layer, folding), family)
    return glue_lut + glue_ff / 4


def _const_below(index: int, layer: Layer, folding: Folding, family: str) -> float:
    """A cost the fully parallel candidate cannot undercut, known without building its graph:
    the bound on the graph's LUTs (``const_lut_bound``) plus the FIFO in front of it."""
    bound = const_lut_bound(layer.weights, graph_input_dtype(layer))
    return bound * GRAPH_LUT_FACTOR + _glue_cost(index, layer, folding, family)


# A layer option's rank, lower first: (misses the clock, LUT + FF/4 + BRAM36 x price, -fmax,
# cycles, PE, SIMD).
_Key = tuple[bool, float, float, int, int, int]


def layer_options(layer: Layer, budget: int, *, clock_mhz: float = 200.0, family: str = "xcup", index: int = 0,
                  allow_padding: bool = True, cost: Callable[[Layer, Folding], float] | None = None,
                  lut_per_bram36: float | None = None,
                  memo: MutableMapping[Any, list[_Priced]] | None = None) -> list[tuple[_Key, Folding]]:
    """Every folding of ``layer`` whose cycles per inference are <= ``budget``, each timed for
    ``clock_mhz`` on ``family`` (``choose_levels``) in its cheaper weight storage with a BRAM36 at
    ``lut_per_bram36`` LUTs (default: a BRAM36's share of ``reference_part(family)`` in LUTs),
    ranked, cheapest first. Its cost counts the FIFO in front of it, not the width converter,
    which depends on the producer as well (``fold_chain``). The fully parallel candidate is only
    listed when a cheap bound on its graph is below the best folded one (no graph is built at
    ordinary rates). ``memo`` keeps the priced candidates between calls for the same layer
    (``fold``'s sweep); ``cost`` replaces the calibrated cost and the clock check (for tests and
    experiments). Expects budget >= 1: PE = MH, SIMD = MW always qualifies."""
    if lut_per_bram36 is None:
        lut_per_bram36 = bram_prices(reference_part(family))[-1]
    memo = {} if memo is None else memo
    candidates = []
    for pe, pad_out in parallelism_options(layer.out_features, allow_padding=allow_padding):
        out_folds = (layer.out_features + pad_out) // pe
        if out_folds > budget:
            continue
        max_in_folds = budget // out_folds
        for simd, pad_in in parallelism_options(layer.in_features, allow_padding=allow_padding):
            in_folds = (layer.in_features + pad_in) // simd
            if in_folds <= max_in_folds:
                candidates.append(Folding(pe=pe, simd=simd, pad_out=pad_out, pad_in=pad_in))
    # the fully parallel candidate (an adder graph) last: only built when it can still win
    candidates.sort(key=lambda f: is_fully_parallel(layer, f))
    options: list[tuple[_Key, Folding]] = []
    for folding in candidates:
        if is_fully_parallel(layer, folding) and options and cost is None:
            best = min(key for key, _ in options)
            if not best[0] and _const_below(index, layer, folding, family) >= best[1]:
                continue
        if cost is not None:
            timed = choose_levels(layer, folding, clock_mhz=clock_mhz, family=family, index=index)
            priced_options = [(timed, False, cost(layer, timed), 0.0, 0.0)]
        else:
            slot = (index, folding, clock_mhz, family)
            if slot not in memo:
                memo[slot] = _priced(index, layer, folding, clock_mhz, family)
            priced_options = memo[slot]
        # of a candidate's storage options, the cheaper one at this price
        options.append(min((((misses, logic + (bram36 * lut_per_bram36 if bram36 else 0.0), neg_fmax,
                              fold_cycles(layer, candidate), candidate.pe, candidate.simd), candidate)
                            for candidate, misses, logic, bram36, neg_fmax in priced_options),
                           key=lambda option: option[0]))  # equal keys: the first (the plan's rule)
    if not options:  # unreachable for budget >= 1: PE = MH, SIMD = MW takes one cycle
        raise FoldingError(f"layer {layer.name}: no folding meets {budget} cycles per inference")
    return sorted(options, key=lambda option: option[0])  # stable: of equal keys, the first listed


def fold_layer(layer: Layer, budget: int, **kwargs: Any) -> Folding:
    """The cheapest of ``layer_options`` (same arguments): the layer folded on its own.

    Guarantees the result is legal (pads < PE/SIMD), meets the budget and carries the
    levels_per_stage of ``choose_levels`` and its weight storage; when no folding reaches the
    clock, the fastest; ties on cost go to fewer cycles, then smaller PE."""
    return layer_options(layer, budget, **kwargs)[0][1]


def fold_chain(df: Dataflow, budget: int, *, clock_mhz: float, family: str, allow_padding: bool = True,
               lut_per_bram36: float, memo: MutableMapping[Any, list[_Priced]] | None = None) -> tuple[Folding, ...]:
    """One folding per layer, each meeting ``budget`` cycles, that minimises the network's cost:
    the layers' (``layer_options``) plus the width converters between them.

    A consumer whose SIMD and input folds equal its producer's PE and output folds reads the
    producer's beats as they are; any other pair needs a converter (``_converter_cost``), which
    can cost more than the layers save by folding each its own way. So the search runs over the
    chain (dynamic programming on the producer's output format: PE and output folds), not layer
    by layer. Rank as ``layer_options``: foldings that miss the clock first, then cost."""
    memo = {} if memo is None else memo
    converters: dict[tuple[int, ...], float] = {}

    def converter(*args: int) -> float:
        if args not in converters:
            converters[args] = _converter_cost(*args, family=family)
        return converters[args]

    # best chain so far ending in each output format (PE, output folds): ((misses, cost), foldings)
    best: dict[tuple[int, int], tuple[tuple[int, float], tuple[Folding, ...]]] = {(0, 0): ((0, 0.0), ())}
    for index, layer in enumerate(df.layers):
        options = layer_options(layer, budget, clock_mhz=clock_mhz, family=family, index=index,
                                allow_padding=allow_padding, lut_per_bram36=lut_per_bram36, memo=memo)
        bits = layer.in_dtype.bits
        # the cheapest way to feed each input format (SIMD, input folds)
        feeds: dict[tuple[int, int], tuple[tuple[int, float], tuple[Folding, ...]]] = {}
        for _, folding in options:
            fmt = _stream_formats(layer, folding)[0]
            if fmt in feeds:
                continue
            for (pe, folds), ((misses, cost), chain) in best.items():
                if index > 0 and (pe, folds) != fmt:
                    cost += converter(pe, folds, fmt[0], fmt[1], bits, layer.in_features)
                if fmt not in feeds or (misses, cost) < feeds[fmt][0]:
                    feeds[fmt] = ((misses, cost), chain)
        following: dict[tuple[int, int], tuple[tuple[int, float], tuple[Folding, ...]]] = {}
        for key, folding in options:  # cheapest first: of equal chains, the cheaper layer stays
            fmt, out = _stream_formats(layer, folding)
            (misses, cost), chain = feeds[fmt]
            total = (misses + int(key[0]), cost + key[1])
            if out not in following or total < following[out][0]:
                following[out] = (total, chain + (folding,))
        best = following
    return min(best.values(), key=lambda entry: entry[0])[1]


def with_stream(df: Dataflow, clock_mhz: float | None = None) -> Dataflow:
    """Set ``Dataflow.stream`` from the folding (interfaces.md rule) and the clock.

    Expects every layer folded. Input beats carry the first layer's SIMD elements, output beats
    the last layer's PE elements, or one class index with argmax."""
    out_elems = 1 if df.argmax else df.layers[-1].folding.pe
    stream = StreamFormat(in_elems_per_beat=df.layers[0].folding.simd, out_elems_per_beat=out_elems)
    return replace(df, stream=stream, clock_mhz=df.clock_mhz if clock_mhz is None else float(clock_mhz))


def fold(df: Dataflow, *, target_fps: float | str, clock_mhz: float, family: str = "xcup",
         allow_padding: bool = True, part: Resources | None = None) -> Dataflow:
    """Fold every layer as cheaply as possible on ``part`` while meeting ``target_fps`` at ``clock_mhz``.

    Expects a verified IR. Guarantees the network's steady-state initiation interval, as the
    cycle model of the RTL counts it, is <= floor(clock_hz / target_fps); ``target_fps="max"``
    gives one inference per clock. Each layer's pipeline depth is chosen for the clock on
    ``family`` (``choose_levels``); a layer that cannot reach it is folded for the highest fmax.
    "Cheaply" is ``objective`` on the estimated shares of ``part`` (the board's resources;
    default ``reference_part(family)``), over the foldings at each BRAM36 price of ``bram_prices``;
    of equal ones, the first (lowest price)."""
    budget = target_cycles(target_fps, clock_mhz)
    part = reference_part(family) if part is None else part
    memo: dict[Any, list[_Priced]] = {}
    designs: dict[tuple[Folding | None, ...], Dataflow] = {}
    for lut_per_bram36 in bram_prices(part):
        folded = fold_at_price(df, budget, clock_mhz=clock_mhz, family=family, allow_padding=allow_padding,
                               lut_per_bram36=lut_per_bram36, memo=memo)
        designs.setdefault(tuple(layer.folding for layer in folded.layers), folded)
    return min(designs.values(), key=lambda design: objective(part_shares(estimate(design, family), part)))


def fold_at_price(df: Dataflow, budget: int, *, clock_mhz: float, family: str, allow_padding: bool = True,
                  lut_per_bram36: float, memo: MutableMapping[Any, list[_Priced]] | None = None) -> Dataflow:
    """``fold`` at one BRAM36 price (``lut_per_bram36`` LUTs): the layers by ``fold_chain``, the
    network's II <= ``budget`` cycles.

    Each layer first gets the whole cycle budget. A folded consumer reads its input stream only
    during its first output fold, so a slow producer can stretch the network's II beyond the
    slowest layer's own cycles; when the cycle model shows that, the per-layer budget shrinks in
    proportion and the layers are folded again. ``memo``: as in ``layer_options``."""
    memo = {} if memo is None else memo
    layer_budget = budget
    while True:
        foldings = fold_chain(df, layer_budget, clock_mhz=clock_mhz, family=family, allow_padding=allow_padding,
                              lut_per_bram36=lut_per_bram36, memo=memo)
        layers = tuple(replace(layer, folding=folding) for layer, folding in zip(df.layers, foldings))
        folded = with_stream(replace(df, layers=layers), clock_mhz)
        ii = cycle_model(folded).ii
        if ii <= budget:
            return folded
        if layer_budget == 1:  # not reached by the RTL (fully parallel runs at II 1); a guard
            raise FoldingError(f"no folding of {df.name} meets {budget} cycles per inference (best II {ii:g})")
        layer_budget = max(1, min(layer_budget - 1, math.floor(layer_budget * budget / ii)))


# --- FINN final_hw_config.json ----------------------------------------------------------------

_PAD_KEYS = {"pad_out": "qmlp_pad_out", "pad_in": "qmlp_pad_in"}
# FINN's ram_style of the weight memory <-> Folding.weight_storage
_RAM_STYLES = {"auto": "auto", "distributed": "lut", "block": "bram"}
# FINN attributes that describe implementation choices qmlp makes itself; accepted and ignored.
_IGNORED_KEYS = {"resType", "mem_mode", "runtime_writeable_weights", "inFIFODepths",
                 "outFIFODepths", "depth", "impl_style", "ram_style_thresholds", "preferred_impl_style"}


def _default_value(defaults: Mapping[str, Any], key: str) -> Any:
    # FINN writes defaults as {"PE": [value, ["op types"]]}; accept that and plain values.
    value = defaults.get(key, 1)
    return value[0] if isinstance(value, list) and value else value


def _int_field(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FoldingError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def _check_parallelism(where: str, key: str, dim: str, n: int, value: int, pad: int, pad_key: str) -> None:
    if not 1 <= value <= n:
        raise FoldingError(f"{where}: {key}={value} must be between 1 and {dim}={n} "
                           f"(legal {key}: {_legal_list(n)})")
    if not 0 <= pad < value:
        raise FoldingError(f"{where}: {pad_key}={pad} must be between 0 and {key}-1={value - 1}")
    if (n + pad) % value:
        hint = f"; or set {pad_key}={(-n) % value} to zero-pad" if pad == 0 else ""
        raise FoldingError(f"{where}: {key}={value} does not divide {dim}={n}"
                           f"{f'+{pad_key}={pad}' if pad else ''} (legal {key}: {_legal_list(n)}{hint})")


def _legal_list(n: int) -> str:
    return ", ".join(map(str, divisors(n)))


def apply_folding(df: Dataflow, config: Mapping[str, Any], *, clock_mhz: float | None = None,
                  family: str = "xcup", source: str = "final_hw_config.json") -> Dataflow:
    """Apply a FINN-style folding config ``{"Defaults": {...}, "<layer>": {"PE": n, "SIMD": m}}``.

    Layers missing from the config take "Defaults" (or 1). Optional ``qmlp_pad_out`` /
    ``qmlp_pad_in`` allow a PE/SIMD that does not divide the dimension. The pipeline depth is
    chosen for ``clock_mhz`` on ``family`` as ``fold`` does (``choose_levels``; the IR default
    without a clock). Raises FoldingError naming the layer, the broken constraint and the legal
    values; unknown layer names are errors too."""
    if not isinstance(config, Mapping):
        raise FoldingError(f"{source}: expected a JSON object of layer name -> {{\"PE\": n, \"SIMD\": m}}")
    names = {layer.name for layer in df.layers}
    unknown = sorted(set(config) - names - {"Defaults"})
    if unknown:
        raise FoldingError(f"{source}: no layer named {unknown[0]!r} (layers: {', '.join(l.name for l in df.layers)})")
    defaults = config.get("Defaults", {}) or {}
    layers = []
    for layer in df.layers:
        entry = config.get(layer.name, {})
        where = f"{source}: layer {layer.name}"
        if not isinstance(entry, Mapping):
            raise FoldingError(f"{where}: expected an object like {{\"PE\": 1, \"SIMD\": 1}}, got {entry!r}")
        known = {"PE", "SIMD", "ram_style", *_PAD_KEYS.values(), *_IGNORED_KEYS}
        extra = sorted(set(entry) - known)
        if extra:
            raise FoldingError(f"{where}: unknown key {extra[0]!r} "
                               "(qmlp reads PE, SIMD, ram_style, qmlp_pad_out, qmlp_pad_in)")
        ram_style = entry.get("ram_style", "auto")
        if ram_style not in _RAM_STYLES:
            raise FoldingError(f"{where}: ram_style {ram_style!r} is not one of {', '.join(map(repr, _RAM_STYLES))} "
                               "(qmlp builds weights in LUTs or block RAM)")
        pe = _int_field(where, "PE", entry.get("PE", _default_value(defaults, "PE")))
        simd = _int_field(where, "SIMD", entry.get("SIMD", _default_value(defaults, "SIMD")))
        pad_out = _int_field(where, "qmlp_pad_out", entry.get("qmlp_pad_out", 0))
        pad_in = _int_field(where, "qmlp_pad_in", entry.get("qmlp_pad_in", 0))
        _check_parallelism(where, "PE", "MH", layer.out_features, pe, pad_out, "qmlp_pad_out")
        _check_parallelism(where, "SIMD", "MW", layer.in_features, simd, pad_in, "qmlp_pad_in")
        folding = Folding(pe=pe, simd=simd, pad_out=pad_out, pad_in=pad_in, weight_storage=_RAM_STYLES[ram_style])
        if clock_mhz is not None:
            folding = choose_levels(layer, folding, clock_mhz=clock_mhz, family=family, index=len(layers))
        layers.append(replace(layer, folding=folding))
    return with_stream(replace(df, layers=tuple(layers)), clock_mhz)


def read_folding(path: str | Path) -> dict[str, Any]:
    """Load a final_hw_config.json: InputError (one line) for a missing, oversized, too deeply
    nested or malformed file; apply_folding checks the content."""
    return read_json(path, "--folding")


def folding_config(df: Dataflow) -> dict[str, Any]:
    """The folding of ``df`` in FINN's final_hw_config.json format (pads only when nonzero, the
    weight storage as FINN's ``ram_style`` only when the search chose one)."""
    config: dict[str, Any] = {"Defaults": {}}
    for layer in df.layers:
        f = layer.folding
        if f is None:
            raise FoldingError(f"layer {layer.name}: not folded yet; run fold or apply_folding first")
        entry: dict[str, Any] = {"PE": f.pe, "SIMD": f.simd}
        for attr, key in _PAD_KEYS.items():
            if getattr(f, attr):
                entry[key] = getattr(f, attr)
        if f.weight_storage != "auto":
            entry["ram_style"] = next(k for k, v in _RAM_STYLES.items() if v == f.weight_storage)
        config[layer.name] = entry
    return config


def write_final_hw_config(df: Dataflow, path: str | Path) -> None:
    """Write ``folding_config(df)`` as indented JSON (apply_folding reads it back unchanged)."""
    Path(path).write_text(json.dumps(folding_config(df), indent=2) + "\n")
