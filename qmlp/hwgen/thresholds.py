"""Threshold tables as the RTL threshold units store them (qmlp_threshold, qmlp_threshold_search).

The IR counts ``sum_i [sign[c] * acc >= T[c, i]]`` (``Thresholds.negate``). The hardware never
negates the accumulator, which could need one bit more; it inverts it: ``~acc`` is
``acc_min + acc_max - acc`` in the accumulator's own type (``-acc - 1`` for INTn,
``2^n - 1 - acc`` for UINTn), so ``-acc >= T`` iff ``~acc >= T + acc_min + acc_max``. A negated
channel's thresholds are stored shifted by ``acc_min + acc_max`` with its direction bit set;
then every row is clipped to ``[acc_min, acc_max + 1]``, which keeps the count of every value the
compared operand can take, and padded channels get thresholds that never fire.

Outputs of ``SEARCH_MIN_BITS`` bits or more use the binary search: a row's ``2^L - 1``
thresholds (L = count bits, missing steps padded with never-firing values) are split into L
levels, level k holding ``T_{(2p+1) 2^(L-1-k)}`` for p < 2^k (1-indexed), so the levels partition
the row. File layouts are in qmlp/hwgen/rtl/README.md ("Threshold memory format")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datatypes import DataType, smallest_type_for_range
from ..ir import Thresholds

__all__ = ["SEARCH_MIN_BITS", "search_depth", "ThresholdTable", "hardware_table", "count_bits", "search_levels",
           "linear_words", "constant_columns", "search_words", "search_file", "table_count", "MAX_SEARCH_LANES"]

SEARCH_MIN_BITS = 4  # from 15 thresholds per channel on, a binary search beats a comparator each
MAX_SEARCH_LANES = 10_000  # a search lane's file name carries its index in four digits (0..9999)


def search_depth(act: Thresholds | None) -> int:
    """Pipeline stages of the threshold unit: the binary search's levels for outputs of
    SEARCH_MIN_BITS bits or more, else 0 (combinational comparators)."""
    if act is None or act.out_dtype.bits < SEARCH_MIN_BITS:
        return 0
    return count_bits(act.steps)


@dataclass(frozen=True, eq=False)
class ThresholdTable:
    """One layer's thresholds as stored: ``values`` (rows, steps) ascending per row, in the
    accumulator type's range plus one; ``neg`` (rows,) the direction bit; ``t_bits`` the
    signed width every stored value fits."""

    values: np.ndarray
    neg: np.ndarray
    t_bits: int
    acc: DataType

    @property
    def steps(self) -> int:
        return int(self.values.shape[1])


def hardware_table(act: Thresholds, acc: DataType, rows: int) -> ThresholdTable:
    """Expects a layer's Thresholds, its accumulator type and the padded channel count
    ``rows`` >= channels. Guarantees a ThresholdTable whose count of ``~acc`` (where ``neg``)
    or ``acc`` equals the IR's count for every value of ``acc``'s type."""
    values = np.asarray(act.values, dtype=np.int64) + np.where(act.negate, acc.min + acc.max, 0)[:, None]
    never = acc.max + 1
    table = np.full((rows, act.steps), never, dtype=np.int64)
    table[: values.shape[0]] = np.clip(values, acc.min, never)
    neg = np.zeros(rows, dtype=bool)
    neg[: values.shape[0]] = act.negate
    t_bits = smallest_type_for_range(min(int(table.min()), -1), int(table.max())).bits
    return ThresholdTable(values=table, neg=neg, t_bits=t_bits, acc=acc)


def table_count(table: ThresholdTable, acc: np.ndarray) -> np.ndarray:
    """The count the RTL computes for accumulators ``acc`` (batch, rows): a model of the
    stored form, for tests against the IR semantics."""
    acc = np.asarray(acc, dtype=np.int64)
    value = np.where(table.neg, table.acc.min + table.acc.max - acc, acc)
    return (value[..., None] >= table.values).sum(axis=-1)


def count_bits(steps: int) -> int:
    """Bits of a count of ``steps`` thresholds: the binary search's levels."""
    return max(1, int(steps).bit_length())


def search_levels(table: ThresholdTable) -> list[np.ndarray]:
    """Level k's entries (rows, 2^k): the thresholds the search compares at depth k."""
    levels = count_bits(table.steps)
    full = np.full((table.values.shape[0], (1 << levels) - 1), table.acc.max + 1, dtype=np.int64)
    full[:, : table.steps] = table.values
    out = []
    for k in range(levels):
        stride = 1 << (levels - 1 - k)
        index = (2 * np.arange(1 << k) + 1) * stride - 1  # 0-indexed T_{(2p+1) * stride}
        out.append(full[:, index])
    return out


def _mask(values: np.ndarray, bits: int) -> list[int]:
    return [int(v) & ((1 << bits) - 1) for v in np.asarray(values).reshape(-1)]


def _pack(fields: list[int], bits: int) -> int:
    return sum(f << (i * bits) for i, f in enumerate(fields))


def linear_words(table: ThresholdTable, lanes: int) -> tuple[list[int], int]:
    """(words, bits) of ``<file>.mem`` for qmlp_threshold in a folded unit: word f holds, for
    lane g (LSB first), row ``f * lanes + g`` as ``steps`` thresholds of ``t_bits`` (step 0 in
    the LSBs) with the direction bit above them."""
    entry_bits = table.steps * table.t_bits + 1
    entries = [_pack(_mask(row, table.t_bits), table.t_bits) | (int(neg) << (entry_bits - 1))
               for row, neg in zip(table.values, table.neg)]
    words = [_pack(entries[f * lanes:(f + 1) * lanes], entry_bits) for f in range(len(entries) // lanes)]
    return words, lanes * entry_bits


def constant_columns(words: list[int], bits: int) -> int:
    """How many of the ``bits`` bit columns hold the same value in every word of ``words``."""
    ones = zeros = 0
    for w in words:
        ones |= w
        zeros |= ~w
    return sum(1 for b in range(bits) if not (ones >> b) & 1 or not (zeros >> b) & 1)


def search_file(stem: str, lane: int, k: int) -> str:
    """The file lane ``lane``'s level-``k`` ROM reads (qmlp_threshold_search's LANE_TAG)."""
    if not 0 <= lane < MAX_SEARCH_LANES:  # the plan refuses more lanes (FoldingError)
        raise ValueError(f"search lane {lane} outside 0..{MAX_SEARCH_LANES - 1}")
    return f"{stem}_g{lane:04d}_k{k}.mem"


def search_words(table: ThresholdTable, lanes: int) -> list[list[tuple[list[int], int]]]:
    """Per lane g and level k, (words, bits) of ``search_file(stem, g, k)`` for
    qmlp_threshold_search: word ``f * 2^k + p`` is level k's entry p of row ``f * lanes + g``
    (one entry a word); level 0's entries carry the direction bit above the threshold."""
    rows = table.values.shape[0]
    out: list[list[tuple[list[int], int]]] = [[] for _ in range(lanes)]
    for k, level in enumerate(search_levels(table)):
        entry_bits = table.t_bits + (1 if k == 0 else 0)
        codes = np.array(_mask(level, table.t_bits), dtype=object).reshape(level.shape)
        if k == 0:
            codes[:, 0] |= np.array([int(n) << table.t_bits for n in table.neg], dtype=object)
        by_lane = codes.reshape(rows // lanes, lanes, 1 << k)  # (folds, lanes, 2^k)
        for g in range(lanes):
            out[g].append(([int(c) for c in by_lane[:, g, :].reshape(-1)], entry_bits))
    return out
