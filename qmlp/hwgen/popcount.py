"""The bipolar-input unit (``Unit.POPCOUNT``, rtl/qmlp_popcount.v): what it computes, and the
row constants the plan folds into the thresholds.

A bipolar input ``x = 2c - 1`` (code ``c`` in {0, 1}) makes a row's sum
``acc = sum_k w_k x_k = 2 P - S`` with ``P = sum_k w_k c_k`` and the row constant
``S = sum_k w_k``; for BIPOLAR weight codes ``d`` the unit counts matches instead,
``P = sum_k [c_k == d_k]`` and ``S = K`` (the row length; BIPOLAR weights are stored 1 bit only
without input padding). The unit builds only ``P``: population counts of the weight bit planes
ANDed (or XNORed) with the input bits, no products. The IR's count
``sum_i [sign * acc >= T_i]`` becomes ``sum_i [sign * P >= T'_i]`` with
``T'_i = ceil((T_i + sign * S) / 2)``: ``2P - S >= T`` iff ``P >= (T + S) / 2``, and
``S - 2P >= T`` iff ``-P >= (T - S) / 2``; ceil keeps each row ascending. ``P``'s type is the
narrowest that holds every row's range (about half the accumulator's span: one bit less), and
each partial sum lies between the sums of its terms' extremes, each term's range including 0, so
the unit's modular arithmetic on that width is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datatypes import BIPOLAR, DataType, smallest_type_for_range
from ..ir import Layer, Thresholds, frozen_array

__all__ = ["GROUP", "MAX_LEVELS_PER_STAGE", "PopcountForm", "popcount_form", "popcount_levels", "popcount_planes", "popcount_registers",
           "popcount_value"]

GROUP = 3  # (input, weight bit) pairs counted by one LUT6 per count bit: the tree's leaves
# The unit registers at least every this many levels, even when the clock allows more: without
# the registers Yosys' mapper duplicates logic across the count tree. Measured on UNSW-1M (whole
# design, synth_xilinx -family xc7, fc0 1x600 INT2): 11,031 LUT sites at 1 level per stage,
# 10,522 at 2, 10,860 at 3, 11,551 at 7 (and 7 misses 100 MHz by Yosys' depth).
MAX_LEVELS_PER_STAGE = 2


@dataclass(frozen=True, eq=False)
class PopcountForm:
    """A layer as the popcount unit computes it: ``P``'s type, the row constants ``S``
    (channels,) and the thresholds on ``P`` (same out type, bias and directions)."""

    acc: DataType
    row_constant: np.ndarray
    thresholds: Thresholds
    xnor: bool  # BIPOLAR weight codes: P counts matches


def popcount_planes(storage: DataType) -> int:
    """Bit planes counted: 1 for BIPOLAR (XNOR), else one per stored weight bit."""
    return 1 if storage == BIPOLAR else storage.bits


def popcount_levels(simd: int, storage: DataType) -> int:
    """Logic levels of qmlp_popcount (the RTL's LEVELS): the leaf counts, the pairwise tree over
    ceil(SIMD / GROUP) leaves, and the plane combination (several planes or signed weights)."""
    groups = -(-simd // GROUP)
    combine = popcount_planes(storage) > 1 or (storage != BIPOLAR and storage.signed)
    return 1 + (groups - 1).bit_length() + int(combine)


def popcount_registers(simd: int, storage: DataType, levels_per_stage: int, acc_bits: int) -> int:
    """Flip-flops of one qmlp_popcount: per plane the nodes of every registered level (after each
    ``levels_per_stage`` levels and after the last), plus the combined sum when there is one."""
    levels = popcount_levels(simd, storage)
    count_bits = simd.bit_length()
    tree = (-(-simd // GROUP) - 1).bit_length()
    regs, nodes, width = 0, -(-simd // GROUP), min(2, count_bits)
    for level in range(1, 2 + tree):  # the leaf counts (1), the pairwise tree (2 .. 1 + tree)
        if level > 1:
            nodes, width = -(-nodes // 2), min(count_bits, width + 1)
        if level % levels_per_stage == 0 or level == levels:
            regs += popcount_planes(storage) * nodes * width
    if levels > 1 + tree:  # the plane combination, the last level: always registered
        regs += acc_bits
    return regs


def popcount_value(weights: np.ndarray, codes: np.ndarray, xnor: bool) -> np.ndarray:
    """``P`` of every row for input codes ``codes`` (batch, K) and the IR weights (rows, K):
    the model the RTL is tested against."""
    codes = np.asarray(codes, dtype=np.int64)
    if xnor:
        return ((2 * codes - 1) @ np.asarray(weights, dtype=np.int64).T + weights.shape[1]) // 2
    return codes @ np.asarray(weights, dtype=np.int64).T


def popcount_form(layer: Layer, storage: DataType) -> PopcountForm:
    """Expects a layer with BIPOLAR inputs and an activation, and its weight storage type.
    Guarantees thresholds on ``P`` that count exactly like the IR's on ``acc = 2P - S`` for
    every input, and the narrowest type holding every row's ``P``."""
    w = np.asarray(layer.weights, dtype=np.int64)
    xnor = storage == BIPOLAR
    if xnor:
        s = np.full(w.shape[0], w.shape[1], dtype=np.int64)
        low, high = 0, w.shape[1]
    else:
        s = w.sum(axis=1)
        low, high = int(np.minimum(w, 0).sum(axis=1).min()), int(np.maximum(w, 0).sum(axis=1).max())
    act = layer.activation
    sign = np.where(act.negate, -1, 1)
    shifted = np.asarray(act.values, dtype=np.int64) + (sign * s)[:, None]
    values = -((-shifted) // 2)  # ceil(shifted / 2)
    compared = Thresholds(frozen_array(values, np.int64), act.out_dtype, act.bias, act.negate)
    acc = smallest_type_for_range(min(low, 0), max(high, 0))
    return PopcountForm(acc=acc, row_constant=s, thresholds=compared, xnor=xnor)
