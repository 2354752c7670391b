"""The bipolar-input unit (Unit.POPCOUNT): the row constant folded into the thresholds
(qmlp.hwgen.popcount) counts exactly like the IR; the plan picks the unit and its count type;
qmlp_popcount alone through Verilator (tests/hwgen/tb_qmlp_popcount.v) under random enable,
its latency the plan's formula; whole designs bit-exact through Verilator under back-pressure
(odd SIMD, padding, INT2 / TERNARY / BIPOLAR / INT3 weights, negated channels, UNSW's shape)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qmlp.boards import Resources
from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT, DataType
from qmlp.hwgen.cycles import cycle_model
from qmlp.hwgen.emit import LIBRARY_DIR, emit_rtl, hex_words
from qmlp.hwgen.estimate import layer_features
from qmlp.hwgen.fold import fold, with_stream
from qmlp.hwgen.plan import (LUTROM_MAX_DEPTH, Storage, Unit, build_plan, element_kind, plan_layer,
                             weight_storage_dtype)
from qmlp.hwgen.popcount import MAX_LEVELS_PER_STAGE, popcount_form, popcount_levels, popcount_planes, popcount_value
from qmlp.hwgen.thresholds import hardware_table, table_count
from qmlp.ir import Folding
from qmlp.packing import encode
from qmlp.sim.bitaccurate import apply_thresholds, run_integer
from qmlp.sim.rtl import lint, simulate_rtl
from qmlp.testing import random_dataflow
from testbench import build_testbench, verilator_env

TESTBENCH = Path(__file__).parent / "tb_qmlp_popcount.v"


def folded(df, foldings):
    return with_stream(replace(df, layers=tuple(replace(l, folding=f) for l, f in zip(df.layers, foldings))), 100.0)


def small_bipolar_network(seed: int = 5):
    """13 -> 9 -> 7 -> 3: INT2 then BIPOLAR weights on bipolar inputs (both POPCOUNT), a raw
    TERNARY last layer (MVAU); 40% negated channels; odd SIMD, input and output padding."""
    df = random_dataflow(seed, widths=(13, 9, 7, 3), weight_dtypes=(INT(2), BIPOLAR, TERNARY), input_dtype=BIPOLAR,
                         act_dtype=(BIPOLAR, UINT(2)), negate=0.4)
    return folded(df, [Folding(pe=3, simd=5, pad_in=2, levels_per_stage=1),
                       Folding(pe=4, simd=9, pad_out=1, levels_per_stage=2), Folding(pe=1, simd=7)])


@pytest.mark.parametrize("wtype", [INT(2), TERNARY, BIPOLAR, INT(3)])
@pytest.mark.parametrize("pad_in", [0, 2])
def test_thresholds_on_the_count_agree_with_the_ir_for_every_input(wtype, pad_in):
    df = random_dataflow(3, widths=(9, 11, 2), weight_dtypes=wtype, input_dtype=BIPOLAR, act_dtype=UINT(2), negate=0.5)
    layer = replace(df.layers[0], folding=Folding(pe=1, simd=11 if pad_in else 9, pad_in=pad_in))
    storage = weight_storage_dtype(layer)
    form = popcount_form(layer, storage)
    codes = (np.arange(1 << 9)[:, None] >> np.arange(9)) & 1  # every input vector
    acc = (2 * codes - 1) @ layer.weights.T
    p = popcount_value(layer.weights, codes, form.xnor)
    assert np.array_equal(2 * p - form.row_constant, acc)  # acc = 2P - S
    assert p.min() >= form.acc.min and p.max() <= form.acc.max
    assert form.acc.bits <= layer.acc_dtype.bits  # never wider than the accumulator it replaces
    table = hardware_table(form.thresholds, form.acc, 13)  # two padded rows
    ours = table_count(table, np.pad(p, ((0, 0), (0, 2))))
    assert np.array_equal(layer.activation.output_value(ours[:, :11]), apply_thresholds(layer.activation, acc))
    assert np.all(ours[:, 11:] == 0)


def df_layer0():
    return small_bipolar_network().layers[0]


def test_plan_uses_popcount_for_bipolar_inputs_with_an_activation():
    hw = build_plan(small_bipolar_network())
    assert [p.unit for p in hw.layers] == [Unit.POPCOUNT, Unit.POPCOUNT, Unit.MVAU]
    l0, l1 = hw.layers[:2]
    assert (l0.tree_levels, l0.tree_stages, l0.sum_stages) == (popcount_levels(5, INT(2)), 3, 3) == (3, 3, 3)
    assert l1.weight_dtype == BIPOLAR and l1.tree_levels == popcount_levels(9, BIPOLAR) == 3  # leaves, 2 adds, no combine
    assert not l1.acc_signed and l1.acc_bits == 4  # matches of 9: UINT4
    assert Unit.POPCOUNT.module == Unit.MVAU.module == "qmlp_mvau"
    # the unit registers at least every MAX_LEVELS_PER_STAGE levels (fewer LUTs), whatever the clock allows
    deep = plan_layer(0, df_layer0(), Folding(pe=3, simd=13, levels_per_stage=7))
    assert deep.levels_per_stage == MAX_LEVELS_PER_STAGE == 2 and deep.tree_stages == -(-deep.tree_levels // 2)
    # fully parallel: the adder graph (Unit.CONST) wins
    df = random_dataflow(1, widths=(6, 4, 2), weight_dtypes=TERNARY, input_dtype=BIPOLAR)
    assert plan_layer(0, df.layers[0], Folding(pe=4, simd=6)).unit is Unit.CONST


def test_cost_feature_counts_the_pairs():
    df = small_bipolar_network()
    hw = build_plan(df)
    assert layer_features(hw.layers[0], df.layers[0].weights).popcount_bits == 3 * 5 * 2
    assert layer_features(hw.layers[1], df.layers[1].weights).popcount_bits == 4 * 9 * 1
    # one weight word (fully parallel) is an adder graph, not a popcount
    assert plan_layer(0, df.layers[0], Folding(pe=9, simd=13)).unit is Unit.CONST


CORE_CASES = {
    "int2_simd600_lps4": (600, INT(2), 4),
    "ternary_odd7_lps1": (7, TERNARY, 1),
    "bipolar_xnor_simd1": (1, BIPOLAR, 1),
    "bipolar_xnor_simd20_lps2": (20, BIPOLAR, 2),
    "int3_simd2": (2, INT(3), 3),
    "uint2_simd13": (13, UINT(2), 2),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", CORE_CASES)
def test_core_matches_numpy_under_random_enable(name, tmp_path):
    simd, wtype, lps = CORE_CASES[name]
    rng = np.random.default_rng(simd)
    n = 80
    codes = rng.integers(0, 2, size=(n, simd))
    weights = rng.integers(wtype.min, wtype.max + 1, size=(n, simd))
    if wtype == BIPOLAR:
        weights = np.where(weights > 0, 1, -1)
    codes[0], weights[0] = 1, wtype.max  # the extremes
    codes[1], weights[1] = 1, wtype.min
    p = np.array([popcount_value(w[None, :], c[None, :], wtype == BIPOLAR)[0, 0] for w, c in zip(weights, codes)])
    acc_bits = int(np.abs(p).max()).bit_length() + 2
    wcodes = encode(weights, wtype).astype(object)
    stim = [sum(int(c) << s for s, c in enumerate(cv)) | (sum(int(w) << (s * wtype.bits) for s, w in enumerate(wv)) << simd)
            for cv, wv in zip(codes, wcodes)]
    (tmp_path / "stim.mem").write_text(hex_words(stim, simd * (1 + wtype.bits)))
    (tmp_path / "expect.mem").write_text(hex_words([int(v) & ((1 << acc_bits) - 1) for v in p], acc_bits))
    lat = -(-popcount_levels(simd, wtype) // lps)
    params = dict(SIMD=simd, W_BITS=wtype.bits, W_KIND=element_kind(wtype), ACC_BITS=acc_bits, LEVELS_PER_STAGE=lps,
                  LAT=lat, N=n)
    binary = build_testbench("tb_popcount", [TESTBENCH, LIBRARY_DIR / "qmlp_popcount.v"],
                             tuple(f"-G{k}={v}" for k, v in params.items()))
    proc = subprocess.run([str(binary)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=verilator_env())
    assert "PASS" in proc.stdout, proc.stdout[-2000:]


def _through_rtl(df, q, tmp_path):
    emit_rtl(df, tmp_path)
    lint(tmp_path)
    _, acts = run_integer(df, q)
    result = simulate_rtl(df, tmp_path, q, backpressure=True, seed=3)
    assert np.array_equal(result.outputs, acts[-1])
    return result


@pytest.mark.slow
def test_small_bipolar_network_bit_exact_under_backpressure(tmp_path):
    df = small_bipolar_network()
    q = np.random.default_rng(1).choice([-1, 1], size=(60, 13))
    _through_rtl(df, q, tmp_path)
    idle = simulate_rtl(df, tmp_path, q[:1], backpressure=False)
    assert int(idle.latency[0]) == cycle_model(build_plan(df)).latency  # the cycle model knows the unit's depth


@pytest.mark.slow
def test_unsw_shaped_network_bit_exact_under_backpressure(tmp_path):
    df = random_dataflow(2024, widths=(600, 64, 64, 64, 1), weight_dtypes=INT(2), input_dtype=BIPOLAR,
                         act_dtype=UINT(2), negate=0.3)
    # on a part without block RAM (the PYNQ-Z2's would hold these weights: fold's objective)
    no_bram = Resources(lut=53200, ff=106400, bram36=0, uram=0, dsp=220)
    df = fold(df, target_fps=1e6, clock_mhz=100, family="xc7", part=no_bram)
    plan = build_plan(df)
    assert plan.layers[0].unit is Unit.POPCOUNT
    # the search's weight storage reaches the RTL: LUT ROMs, fc0's 96 words past the rule's 64
    assert all(p.weights.kind is Storage.LUT for p in plan.layers) and plan.layers[0].weights.depth > LUTROM_MAX_DEPTH
    q = np.random.default_rng(2).choice([-1, 1], size=(40, 600))
    _through_rtl(df, q, tmp_path)


def test_popcount_rom_is_mapped_apart_then_flattened(tmp_path):
    """The weight ROM (here 40 words in LUTs) is synthesized as its own block (keep_hierarchy,
    rtl/qmlp_mvau.v) and the netlist flattened after mapping: one flat count, no submodule left."""
    from qmlp.hwgen.synth import synthesize

    df = random_dataflow(5, widths=(12, 40, 2), weight_dtypes=INT(2), input_dtype=BIPOLAR, act_dtype=UINT(2))
    df = folded(df, [Folding(pe=1, simd=12), Folding(pe=1, simd=4)])
    rom = build_plan(df).layers[0].weights
    assert rom.kind is Storage.LUT and rom.depth == 40
    emit_rtl(df, tmp_path)
    result = synthesize(tmp_path, family="xc7", timeout=900)
    assert "submodules" not in result.cells and result.lut > 0 and result.ff > 0


def test_fold_records_the_depth_the_unit_uses():
    df = random_dataflow(2024, widths=(600, 64, 1), weight_dtypes=INT(2), input_dtype=BIPOLAR, act_dtype=UINT(2))
    df = fold(df, target_fps=1e6, clock_mhz=100, family="xc7")
    assert df.layers[0].folding.levels_per_stage == build_plan(df).layers[0].levels_per_stage == MAX_LEVELS_PER_STAGE
