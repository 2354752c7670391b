"""The hardware plan is the only source of hardware facts: emit, cycles and estimate all follow it."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.hwgen.cycles import cycle_model
from qmlp.hwgen.emit import emit_rtl, render_top
from qmlp.hwgen.estimate import estimate, layer_features
from qmlp.hwgen.fold import fold, with_stream
from qmlp.hwgen.plan import Memory, StageKind, Storage, Unit, build_plan, product_width, tree_stages
from qmlp.ir import Folding
from qmlp.testing import random_dataflow

HWGEN = Path(__file__).resolve().parents[2] / "qmlp" / "hwgen"


def folded(df, folds, argmax=False):
    layers = tuple(replace(layer, folding=f) for layer, f in zip(df.layers, folds))
    return with_stream(replace(df, layers=layers, argmax=argmax), 200.0)


def _imports(module: str) -> set[str]:
    tree = ast.parse((HWGEN / f"{module}.py").read_text())
    return {node.module.lstrip(".") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}


def test_imports_run_one_way():
    """ir -> {thresholds, popcount}, cmvm -> plan -> {estimate, cycles, emit, timing} -> fold: nothing
    imports backwards (the adder-graph compiler reads data types and the delay model only)."""
    assert _imports("thresholds") <= {"datatypes", "ir"}
    assert _imports("popcount") <= {"datatypes", "ir"}
    assert _imports("plan") <= {"datatypes", "errors", "ir", "thresholds", "popcount", "cmvm"} | {""}
    for path in (HWGEN / "cmvm").glob("*.py"):
        tree = ast.parse(path.read_text())
        parents = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level >= 2}
        assert parents <= {"datatypes", "synth"}, path.name
    for module in ("estimate", "cycles", "emit", "timing"):
        assert "fold" not in _imports(module) and "pipeline" not in _imports(module), module
    assert "emit" not in _imports("cycles") and "emit" not in _imports("estimate")


def test_changing_a_plan_fact_changes_emit_cycles_and_estimate_together():
    df = folded(random_dataflow(3, widths=(24, 16, 4), weight_dtypes=INT(2)), [Folding(2, 12), Folding(4, 16)])
    hw = build_plan(df)
    l0 = hw.layers[0]
    assert l0.levels_per_stage == 3 and l0.tree_stages == tree_stages(12, 3) == 2
    deeper = replace(l0, levels_per_stage=1, tree_stages=tree_stages(12, 1))  # 4 register stages
    hw2 = replace(hw, layers=(deeper,) + hw.layers[1:])
    # emit renders the new depth, the cycle model steps it, the estimate prices its registers
    assert ".LEVELS_PER_STAGE(3)" in render_top(df, hw) and ".LEVELS_PER_STAGE(1)" in render_top(df, hw2)
    assert deeper.latency == l0.latency + 2
    assert cycle_model(hw2).latency == cycle_model(hw).latency + 2
    assert estimate(df, hw=hw2).ff > estimate(df, hw=hw).ff
    # a storage decision: the same ROM in block RAM
    bram = replace(l0, weights=Memory(Storage.BRAM, l0.weights.width, l0.weights.depth))
    hw3 = replace(hw, layers=(bram,) + hw.layers[1:])
    assert '.ROM_STYLE("logic")' in render_top(df, hw) and '.ROM_STYLE("block")' in render_top(df, hw3)
    assert estimate(df, hw=hw).bram36 == 0 and estimate(df, hw=hw3).bram36 == 1.0  # 48 bits: 72 x 512
    # the SIMD sum's form: layer 1 (UINT2 inputs x INT2) sums its weight bit planes; as products
    df = folded(df, [Folding(2, 12), Folding(2, 8)])
    hw = build_plan(df)
    l1 = hw.layers[1]
    assert l1.planes == 2 and hw.layers[0].planes == 0  # layer 0's inputs are 8 bits wide
    products = replace(l1, planes=0)
    hw4 = replace(hw, layers=hw.layers[:1] + (products,))
    assert ".PLANES(1)" in render_top(df, hw) and ".PLANES(1)" not in render_top(df, hw4)
    assert products.latency == l1.latency - 1 and cycle_model(hw4).latency == cycle_model(hw).latency - 1
    assert layer_features(l1, df.layers[1].weights).small_product_bits == 0
    assert layer_features(products, df.layers[1].weights).small_product_bits > 0


@pytest.mark.parametrize("x, w, planes", [(UINT(2), INT(2), 2), (INT(2), TERNARY, 2), (UINT(1), UINT(2), 2),
                                          (UINT(3), INT(2), 0), (INT(8), INT(2), 0), (UINT(2), INT(4), 0),
                                          (UINT(2), BIPOLAR, 0)])
def test_weight_planes_for_narrow_inputs_times_2_bit_weights_only(x, w, planes):
    df = random_dataflow(4, widths=(12, 6), weight_dtypes=w, input_dtype=x)
    assert build_plan(folded(df, [Folding(2, 4)])).layers[0].planes == planes
    assert build_plan(folded(df, [Folding(2, 1)])).layers[0].planes == 0  # one input per cycle: no tree


def test_padded_bipolar_layer_is_priced_at_its_stored_width():
    # INT2 inputs: an MVAU, whose threshold table does not depend on the storage (with BIPOLAR
    # inputs the POPCOUNT unit's thresholds fold in a row constant that does)
    df = random_dataflow(6, widths=(10, 6, 4), weight_dtypes=BIPOLAR, input_dtype=INT(2), act_dtype=BIPOLAR)
    df = folded(df, [Folding(2, 4, pad_in=2), Folding(2, 3)])
    hw = build_plan(df)
    assert [p.weight_dtype for p in hw.layers] == [TERNARY, BIPOLAR]
    assert hw.layers[0].weights.width == 2 * 4 * 2 and hw.layers[1].weights.width == 2 * 3 * 1
    # the cost model reads the stored width: the same layer unpadded and stored BIPOLAR is cheaper
    unpadded = build_plan(folded(df, [Folding(2, 5), Folding(2, 3)])).layers[0]
    assert unpadded.weight_dtype == BIPOLAR
    assert unpadded.weights.width == 2 * 5 * 1
    padded_rom = layer_features(hw.layers[0], df.layers[0].weights).rom_luts
    assert padded_rom - layer_features(unpadded, df.layers[0].weights).rom_luts == 16 - 10  # same thresholds


def test_stage_chain_and_stream_ends():
    df = folded(random_dataflow(0, widths=(12, 9, 7, 3)), [Folding(3, 4), Folding(7, 9), Folding(1, 7)], argmax=True)
    hw = build_plan(df)
    assert [s.kind for s in hw.stages] == [
        StageKind.FIFO, StageKind.LAYER, StageKind.DWC, StageKind.FIFO, StageKind.LAYER,  # 7 x 1 beat in: no dwc
        StageKind.FIFO, StageKind.LAYER, StageKind.ARGMAX, StageKind.FIFO]
    assert [p.unit for p in hw.layers] == [Unit.MVAU, Unit.CONST, Unit.MVAU]
    assert hw.input.beats == 3 and hw.output.dtype == UINT(2) and hw.output.beats == 1
    top = render_top(df, hw)
    for stage in hw.stages:  # every planned stage is a wire bundle of the top, in order
        assert f"wire [{stage.width_out - 1}:0] {stage.name}_data;" in top
    # 3 -> 9 elements per beat: whole producer beats per consumer beat, a qmlp_gather
    # a register slice before the fully parallel layer 1, a FIFO before the folded layer 2 (its
    # vector is one beat too, but a slice there would chain the readies on): layer 0, the gather,
    # the slice and layer 1 are one ready chain
    assert hw.stages[2].is_gather and [s.depth for s in hw.stages if s.kind is StageKind.FIFO] == [4, 1, 2, 2]
    assert hw.ready_chain == 4
    assert top.count("qmlp_fifo #(") == 4 and top.count("qmlp_gather #(") == 1 and "qmlp_dwc #(" not in top


def test_timing_aware_folding_meets_the_clock():
    """A faster clock gets shallower adder-tree stages, and the estimated fmax reaches it."""
    df = random_dataflow(2024, widths=(40, 256, 64, 4), weight_dtypes=INT(2), input_dtype=INT(8), act_dtype=UINT(2))
    levels = {}
    for clock in (100, 150, 200):  # the AXI-Lite glue tops out near 210 MHz on xcup (estimate)
        f = fold(df, target_fps=5e6 * clock / 200, clock_mhz=clock, family="xcup")
        est = estimate(f, "xcup")
        assert est.fmax_mhz >= clock, (clock, est.timing.critical)
        levels[clock] = [l.folding.levels_per_stage for l in f.layers]
    assert max(levels[200]) < max(levels[100])
    # 7-series is slower per level: at the same clock it needs at least as many registers
    slow = fold(df, target_fps=1e6, clock_mhz=100, family="xc7")
    assert estimate(slow, "xc7").fmax_mhz >= 100


@pytest.mark.slow
def test_pipelined_mvaus_are_bit_exact_under_backpressure_and_cycle_exact(tmp_path):
    from qmlp.sim.bitaccurate import simulate
    from qmlp.sim.rtl import simulate_rtl

    df = random_dataflow(31, widths=(20, 17, 9, 3), weight_dtypes=(INT(2), INT(2), TERNARY), input_dtype=INT(8),
                         act_dtype=UINT(2))
    # SIMD 20: 5 tree levels in 5 stages; SIMD 17: 5 levels in 3 stages; last layer: an adder graph (CONST)
    df = folded(df, [Folding(3, 20, pad_out=1, levels_per_stage=1), Folding(2, 17, pad_out=1, levels_per_stage=2),
                     Folding(3, 9, levels_per_stage=1)])
    hw = build_plan(df)
    assert [p.tree_stages for p in hw.layers[:2]] == [5, 3] and hw.layers[2].unit is Unit.CONST
    emit_rtl(df, tmp_path)
    x = np.random.default_rng(3).normal(0, 40, size=(60, 20)).astype(np.float32)
    golden = simulate(df, x)
    pressured = simulate_rtl(df, tmp_path, golden.inputs, backpressure=True, seed=5)
    assert np.array_equal(pressured.outputs, golden.activations[-1])
    free = simulate_rtl(df, tmp_path, golden.inputs[:6], backpressure=False)
    model = cycle_model(hw, vectors=6)
    assert free.latency[0] == model.latency
    last = free.beats.out_cycles.reshape(6, -1)[:, -1]
    assert last[-1] - last[-2] == model.ii


@pytest.mark.parametrize("x, w, bits", [
    (UINT(2), TERNARY, 3),  # [-3, 3]
    (UINT(2), INT(2), 4),  # [-6, 3]
    (BIPOLAR, BIPOLAR, 2),  # [-1, 1]
    (UINT(8), TERNARY, 9),  # [-255, 255]
    (INT(4), INT(4), 8),  # [-56, 64]: -8 * -8 needs the eighth bit
    (INT(8), INT(8), 16),  # [-16256, 16384]
    (UINT(1), UINT(1), 2),  # [0, 1] as a signed leaf
])
def test_product_width_holds_every_product_and_no_more(x, w, bits):
    products = [a * b for a in range(x.min, x.max + 1) for b in range(w.min, w.max + 1)]
    lo, hi = min(products), max(products)
    assert product_width(x, w) == bits
    assert -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1))  # holds every product
    assert not (-(1 << (bits - 2)) <= lo and hi < (1 << (bits - 2)))  # one bit fewer would not
