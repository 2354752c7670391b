"""The threshold units on their own (tests/hwgen/tb_qmlp_threshold.v through Verilator), against
the IR semantics (qmlp.sim.bitaccurate.apply_thresholds), exhaustively: every value of the
accumulator type at every table row, in random order, under random enable (back-pressure).
Each case mixes negated and plain channels, thresholds below/above the range and repeated ones.
The stored-table model (qmlp.hwgen.thresholds) is checked against the IR without Verilator."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, UINT, DataType
from qmlp.hwgen.emit import LIBRARY_DIR, hex_words
from qmlp.hwgen.thresholds import (count_bits, hardware_table, linear_words, search_levels, search_words,
                                   table_count)
from qmlp.ir import Thresholds, frozen_array
from qmlp.packing import encode
from qmlp.sim.bitaccurate import apply_thresholds
from qmlp.sim.rtl import verilator_command
from testbench import build_testbench, verilator_env

TESTBENCH = Path(__file__).parent / "tb_qmlp_threshold.v"
UNITS = [LIBRARY_DIR / "qmlp_threshold.v", LIBRARY_DIR / "qmlp_threshold_search.v", LIBRARY_DIR / "qmlp_rom.v"]


@dataclass(frozen=True)
class Case:
    search: bool
    acc: DataType
    out: DataType
    steps: int
    rows: int
    lanes: int
    lane: int
    seed: int = 0
    constant: bool = False  # qmlp_threshold's AND/OR-chain compares (fully parallel layers)

    @property
    def bias(self) -> int:
        return self.out.min if self.out.signed and self.out != BIPOLAR else 0


CASES = {
    # the binary search: 15 thresholds (4 levels), signed accumulator, 3 rows of 2 lanes
    "search_uint4_rows3": Case(True, INT(7), UINT(4), 15, rows=3, lanes=2, lane=1),
    # 8-bit signed output (255 thresholds, 8 levels), unsigned accumulator
    "search_int8_unsigned_acc": Case(True, UINT(8), INT(8), 255, rows=2, lanes=3, lane=2),
    # fewer thresholds than levels hold (20 of 31): padding with never-firing entries, INT6 output
    "search_padded_int6": Case(True, INT(6), INT(6), 20, rows=5, lanes=1, lane=0),
    # a 1-level search (BIPOLAR) with one row: the degenerate widths
    "search_bipolar_one_row": Case(True, INT(5), BIPOLAR, 1, rows=1, lanes=4, lane=3),
    # the comparator unit as qmlp_mvau drives it (row ROM), 2- and 3-bit outputs
    "linear_uint2": Case(False, INT(6), UINT(2), 3, rows=4, lanes=2, lane=0),
    "linear_int3_unsigned_acc": Case(False, UINT(5), INT(3), 7, rows=3, lanes=1, lane=0),
    # the chain compares of qmlp_const_layer: the same function of (acc, threshold) for any threshold
    "chain_uint2": Case(False, INT(6), UINT(2), 3, rows=4, lanes=2, lane=1, seed=3, constant=True),
    "chain_int3_unsigned_acc": Case(False, UINT(5), INT(3), 7, rows=3, lanes=1, lane=0, seed=4, constant=True),
    "chain_bipolar_int9": Case(False, INT(9), BIPOLAR, 1, rows=2, lanes=3, lane=2, seed=5, constant=True),
}


def thresholds(case: Case) -> Thresholds:
    """Random IR thresholds over the compared operand's range (-acc for negated channels), a few
    outside it, repeats allowed; both directions present."""
    rng = np.random.default_rng(case.seed)
    channels = case.rows * case.lanes
    negate = rng.random(channels) < 0.5
    negate[case.lane], negate[-1] = True, False
    if case.rows > 1:
        negate[case.lanes + case.lane] = False
    lo, hi = min(case.acc.min, -case.acc.max) - 2, max(case.acc.max, -case.acc.min) + 2
    values = np.sort(rng.integers(lo, hi + 1, size=(channels, case.steps)), axis=1)
    return Thresholds(frozen_array(values, np.int64), case.out, case.bias, frozen_array(negate, bool))


@pytest.mark.parametrize("name", CASES)
def test_stored_table_counts_like_the_ir(name):
    case = CASES[name]
    act = thresholds(case)
    table = hardware_table(act, case.acc, case.rows * case.lanes + 2)  # two padding rows
    acc = np.arange(case.acc.min, case.acc.max + 1)
    grid = np.repeat(acc[:, None], case.rows * case.lanes + 2, axis=1)
    ours = table_count(table, grid)
    assert np.array_equal(act.output_value(ours[:, :-2]), apply_thresholds(act, grid[:, :-2]))
    assert np.all(ours[:, -2:] == 0)  # padded channels never fire
    assert table.values.min() >= case.acc.min and table.values.max() <= case.acc.max + 1


def test_search_levels_partition_the_row():
    act = Thresholds(frozen_array(np.arange(1, 16)[None, :] * 2, np.int64), UINT(4), 0)
    levels = search_levels(hardware_table(act, INT(8), 1))
    assert [lv.tolist() for lv in levels] == [[[16]], [[8, 24]], [[4, 12, 20, 28]], [[2, 6, 10, 14, 18, 22, 26, 30]]]
    assert count_bits(255) == 8 and count_bits(15) == 4 and count_bits(1) == 1 and count_bits(20) == 5


def _parameters(case: Case, t_bits: int, n: int) -> list[str]:
    out_bits = case.out.bits
    values = dict(UNIT=int(case.search), ACC_BITS=case.acc.bits, ACC_SIGNED=int(case.acc.signed), T_BITS=t_bits,
                  LEVELS=count_bits(case.steps), STEPS=case.steps, OUT_BITS=out_bits, OUT_BIAS=case.bias,
                  CONSTANT=int(case.constant), ROWS=case.rows, LANES=case.lanes, LANE=case.lane, N=n)
    return [f"-G{key}={value}" for key, value in values.items()]


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_unit_matches_ir_at_every_accumulator_value_under_backpressure(name, tmp_path):
    case = CASES[name]
    act = thresholds(case)
    table = hardware_table(act, case.acc, case.rows * case.lanes)
    rng = np.random.default_rng(case.seed + 1)
    acc = np.arange(case.acc.min, case.acc.max + 1)
    rows, values = [a.reshape(-1) for a in np.meshgrid(np.arange(case.rows), acc, indexing="ij")]
    order = rng.permutation(rows.size)
    rows, values = rows[order], values[order]
    channel = rows * case.lanes + case.lane
    grid = np.repeat(values[:, None], case.rows * case.lanes, axis=1)
    expected = encode(apply_thresholds(act, grid)[np.arange(rows.size), channel], case.out)

    stim = [(int(r) << case.acc.bits) | (int(v) & ((1 << case.acc.bits) - 1)) for r, v in zip(rows, values)]
    rw = max(1, (case.rows - 1).bit_length())
    (tmp_path / "stim.mem").write_text(hex_words(stim, rw + case.acc.bits))
    (tmp_path / "expect.mem").write_text(hex_words([int(e) for e in expected], case.out.bits))
    if case.search:
        for k, (words, bits) in enumerate(search_words(table, case.lanes)):
            (tmp_path / f"thr_k{k}.mem").write_text(hex_words(words, bits))
    else:
        words, bits = linear_words(table, case.lanes)
        (tmp_path / "thr.mem").write_text(hex_words(words, bits))

    binary = build_testbench("threshold", [*UNITS, TESTBENCH], tuple(_parameters(case, table.t_bits, len(stim))))
    proc = subprocess.run([str(binary), f"+verilator+seed+{case.seed + 5}"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    results = [line for line in proc.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert proc.returncode == 0 and results and results[-1].startswith(f"PASS {len(stim)} "), proc.stdout[-2000:]
    checks = int(results[-1].split()[2])
    assert checks > len(stim)  # the enable was low sometimes: results were held and checked again


@pytest.mark.parametrize("search", [False, True])
def test_units_are_lint_clean(search):
    params = _parameters(CASES["search_uint4_rows3" if search else "chain_uint2"], 8, 16)
    unit = UNITS[1] if search else UNITS[0]
    top = "qmlp_threshold_search" if search else "qmlp_threshold"
    keep = {"-GACC_BITS", "-GACC_SIGNED", "-GT_BITS", "-GOUT_BITS", "-GOUT_BIAS"} | (
        {"-GLEVELS", "-GROWS", "-GLANES", "-GLANE"} if search else {"-GSTEPS", "-GCONSTANT"})
    params = [p for p in params if p.split("=")[0] in keep] + (['-GTABLE_FILE="thr"'] if search else [])
    proc = subprocess.run(verilator_command("--lint-only", "-Wall", "--top-module", top, str(unit), str(UNITS[2]),
                                            *params), capture_output=True, text=True, env=verilator_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_threshold_plan_is_what_emit_cycles_and_estimate_use():
    """8-bit outputs: a SEARCH plan of 8 levels whose ROMs hold NF * 2^k words; emit renders its
    levels and files, the cycle model and the layer latency grow by exactly those 8 stages."""
    from dataclasses import replace

    from qmlp.hwgen.cycles import cycle_model
    from qmlp.hwgen.emit import render_top, threshold_files
    from qmlp.hwgen.fold import with_stream
    from qmlp.hwgen.plan import Storage, ThresholdUnit, build_plan
    from qmlp.ir import Folding
    from qmlp.testing import random_dataflow

    def planned(act):
        df = random_dataflow(9, widths=(12, 9, 3), act_dtype=act, negate=0.5)
        layers = tuple(replace(l, folding=f) for l, f in zip(df.layers, [Folding(3, 4), Folding(1, 9)]))
        df = with_stream(replace(df, layers=layers), 200.0)
        return df, build_plan(df)

    wide_df, wide = planned(UINT(8))
    narrow_df, narrow = planned(UINT(3))
    t = wide.layers[0].threshold
    assert t.unit is ThresholdUnit.SEARCH and t.latency == 8 and t.lanes == 3
    assert [m.depth for m in t.memories] == [3 << k for k in range(8)]
    assert [m.width for m in t.memories] == [t.t_bits + 1] + [t.t_bits] * 7
    kinds = [m.kind for m in t.memories]  # deeper levels may go to block RAM, never back to LUTs
    assert kinds[0] is Storage.LUT and kinds == sorted(kinds, key=[Storage.LUT, Storage.BRAM].index)
    assert narrow.layers[0].threshold.unit is ThresholdUnit.COMPARE and narrow.layers[0].threshold_latency == 0
    top = render_top(wide_df, wide)
    assert ".SEARCH_LEVELS(8)" in top and '.THRESHOLD_FILE("l0_thresholds")' in top
    assert f".SEARCH_BLOCK_FROM({kinds.index(Storage.BRAM) if Storage.BRAM in kinds else 32})" in top
    assert sorted(threshold_files(wide_df.layers[0], wide.layers[0])) == [f"l0_thresholds_k{k}.mem" for k in range(8)]
    assert wide.layers[0].latency == narrow.layers[0].latency + 8
    assert cycle_model(wide).latency == cycle_model(narrow).latency + 8
