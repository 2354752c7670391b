"""Unit.CONST, the adder graphs in the hardware plan: plan facts, the qmlp_const_layer shell
(per-channel direction, comparators and the binary-search unit) bit-exact through Verilator
under back-pressure, the cycle model against Verilator, folding by cost, per-layer synthesis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.hwgen.cmvm import layer_graph
from qmlp.hwgen.cmvm import layer as cmvm_layer
from qmlp.hwgen.cycles import cycle_model
from qmlp.hwgen.emit import emit_layer_rtl, emit_rtl
from qmlp.hwgen.plan import StageKind, ThresholdUnit, Unit, build_plan, graph_input_dtype
from qmlp.hwgen.timing import design_timing
from qmlp.ir import Folding, StreamFormat
from qmlp.sim.bitaccurate import run_integer
from qmlp.sim.rtl import lint, simulate_rtl
from qmlp.testing import random_dataflow


def fully_parallel(df, stream_in: int | None = None):
    layers = tuple(replace(l, folding=Folding(l.out_features, l.in_features)) for l in df.layers)
    return replace(df, layers=layers, clock_mhz=200.0,
                   stream=StreamFormat(stream_in or df.layers[0].in_features, df.layers[-1].out_features))


def _inputs(df, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = rng.integers(df.input.dtype.min, df.input.dtype.max + 1, size=(n, df.input.features))
    if df.input.dtype == BIPOLAR:  # values -1 / +1 only
        q = np.where(q == 0, 1, q)
    q[0], q[1] = df.input.dtype.min, df.input.dtype.max  # extreme inputs
    return q


CASES = {
    # negated channels, 2-bit comparators, 8-bit input
    "ternary_int8_negbn": lambda: random_dataflow(1, widths=(23, 17, 9, 5), weight_dtypes=TERNARY,
                                                  input_dtype=INT(8), negate=0.4),
    # 4..8-bit activations: the binary-search unit after the graph, with negated channels
    "int2_acts_4_to_8": lambda: random_dataflow(2, widths=(13, 21, 11, 9, 7, 4), weight_dtypes=INT(2),
                                                input_dtype=UINT(2), act_dtype=(UINT(4), INT(5), UINT(6), UINT(8)),
                                                negate=0.5),
    "bipolar": lambda: random_dataflow(3, widths=(19, 12, 7), weight_dtypes=BIPOLAR, input_dtype=BIPOLAR,
                                       act_dtype=BIPOLAR),
    # FINN's UNSW shape in small: BIPOLAR inputs into INT2 weights (popcount form), negated channels
    "int2_bipolar_in": lambda: random_dataflow(5, widths=(37, 16, 6), weight_dtypes=INT(2), input_dtype=BIPOLAR,
                                               negate=0.4),
    "int4_zero_rows_cols": lambda: random_dataflow(4, widths=(10, 14, 3), weight_dtypes=INT(4), input_dtype=INT(4),
                                                   negate=0.3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_const_layers_match_the_simulator_in_verilator_under_backpressure(tmp_path, case):
    """Every fully parallel layer is an adder graph in a qmlp_const_layer shell; the whole top
    lints clean (-Wall), equals the bit-accurate simulator under random back-pressure, and its
    latency equals the cycle model."""
    df = CASES[case]()
    if case == "int4_zero_rows_cols":
        first = df.layers[0]
        w = first.weights.copy()
        w[[0, 7]] = 0
        w[:, [3]] = 0
        df = replace(df, layers=(replace(first, weights=w),) + df.layers[1:])
    df = fully_parallel(df, stream_in=5)
    plans = build_plan(df).layers
    assert {p.unit for p in plans} == {Unit.CONST}
    if case == "int2_acts_4_to_8":
        assert [p.threshold.unit for p in plans[:-1]] == [ThresholdUnit.SEARCH] * 4
        assert all(df.layers[i].activation.negate.any() for i in range(4))
    emit_rtl(df, tmp_path)
    lint(tmp_path)
    q = _inputs(df, 150, seed=len(case))
    _, acts = run_integer(df, q)
    result = simulate_rtl(df, tmp_path, q, backpressure=True, seed=3)
    assert np.array_equal(result.outputs, acts[-1])
    free = simulate_rtl(df, tmp_path, q[:4], backpressure=False)
    assert int(free.latency[0]) == cycle_model(df).latency


def test_fully_parallel_layers_follow_each_other_without_a_fifo(tmp_path):
    """A register slice in front of the first layer and a 2-deep FIFO before m_axis only; the
    layers share one ready chain, which the timing model prices. A folded layer among them gets
    its FIFO back; the fully parallel layer after it a register slice. Bit-exact under
    back-pressure and cycle-exact."""
    df = fully_parallel(random_dataflow(6, widths=(12, 9, 7, 5, 3), weight_dtypes=TERNARY, input_dtype=UINT(2)))
    hw = build_plan(df)
    assert [(s.kind, s.depth) for s in hw.stages] == [(StageKind.FIFO, 1)] + [(StageKind.LAYER, 0)] * 4 + [
        (StageKind.FIFO, 2)]
    assert hw.ready_chain == 5
    assert any(p.what == "ready chain through 5 units" for p in design_timing(hw, "xcup").paths)
    assert cycle_model(df).latency == sum(p.latency for p in hw.layers) + 2  # the slice's and the FIFO's cycles
    middle = replace(df.layers[1], folding=Folding(7, 3))
    mixed = replace(df, layers=df.layers[:1] + (middle,) + df.layers[2:])
    kinds = [(s.kind, s.depth) for s in build_plan(mixed).stages]
    assert kinds == [(StageKind.FIFO, 1), (StageKind.LAYER, 0), (StageKind.DWC, 0), (StageKind.FIFO, 4),
                     (StageKind.LAYER, 0), (StageKind.FIFO, 1), (StageKind.LAYER, 0), (StageKind.LAYER, 0),
                     (StageKind.FIFO, 2)]
    assert build_plan(mixed).ready_chain == 4  # the MVAU passes its m_ready to s_ready too
    emit_rtl(mixed, tmp_path)
    lint(tmp_path)
    q = _inputs(mixed, 120, seed=6)
    _, acts = run_integer(mixed, q)
    result = simulate_rtl(mixed, tmp_path, q, backpressure=True, seed=5)
    assert np.array_equal(result.outputs, acts[-1])
    free = simulate_rtl(mixed, tmp_path, q[:4], backpressure=False)
    assert int(free.latency[0]) == cycle_model(mixed).latency


def test_plan_latency_is_graph_stages_plus_search_levels():
    df = fully_parallel(random_dataflow(5, widths=(30, 20, 12, 4), weight_dtypes=TERNARY, input_dtype=UINT(2),
                                        act_dtype=(UINT(2), UINT(5))))
    plans = build_plan(df).layers
    for layer, plan in zip(df.layers, plans):
        compare = plan.threshold is not None and plan.threshold.unit is ThresholdUnit.COMPARE
        g = layer_graph(layer.weights, layer.in_dtype, activation=compare, clock_mhz=200.0)
        assert plan.graph.schedule == g.schedule
        assert plan.latency == g.latency + plan.threshold_latency
        assert plan.tree_stages == g.schedule.registers_between
    assert plans[1].threshold_latency == 5 and plans[0].threshold_latency == 0


def test_bipolar_inputs_with_an_activation_enter_the_graph_as_codes():
    """Popcount form: the graph sums ``W c`` over the codes c in {0, 1} (acc = 2P - S, the
    thresholds absorb S; the Verilator case int2_bipolar_in checks the outputs); cheaper
    than the graph over -1/+1; a raw last layer keeps the values -1/+1."""
    from qmlp.hwgen.cmvm import evaluate
    from qmlp.hwgen.cmvm.cost import graph_cost
    from qmlp.hwgen.popcount import popcount_form

    binary = fully_parallel(CASES["bipolar"]())  # BIPOLAR acts into a raw last layer
    assert [graph_input_dtype(layer) for layer in binary.layers] == [UINT(1), BIPOLAR]
    df = fully_parallel(CASES["int2_bipolar_in"]())
    first = build_plan(df).layers[0]
    assert graph_input_dtype(df.layers[0]) == UINT(1) and first.unit is Unit.CONST
    w = np.asarray(df.layers[0].weights)
    assert first.acc_bits == popcount_form(df.layers[0], INT(2)).acc.bits
    codes = np.random.default_rng(0).integers(0, 2, size=(64, w.shape[1]))
    assert np.array_equal(evaluate(first.graph.graph, codes)[1], codes @ w.T)
    over_values = layer_graph(w, BIPOLAR, activation=True, clock_mhz=200.0)
    assert graph_cost(first.graph.graph, None).lut < graph_cost(over_values.graph, None).lut


def test_folding_builds_no_graph_at_ordinary_rates_and_uses_const_at_max():
    """At 100 k/s the bound on the graph's cost rules the fully parallel candidate out before
    any shared graph is built; at 'max' every layer is CONST."""
    from qmlp.hwgen.fold import fold

    df = random_dataflow(6, widths=(64, 48, 32, 4), weight_dtypes=TERNARY, input_dtype=INT(8))
    cmvm_layer.clear_cache()
    slow = fold(df, target_fps=1e5, clock_mhz=200.0)
    assert cmvm_layer._best.cache_info().misses == 0  # noqa: SLF001 - the cache is the evidence
    assert {p.unit for p in build_plan(slow).layers} == {Unit.MVAU}
    fast = fold(df, target_fps="max", clock_mhz=200.0)
    assert {p.unit for p in build_plan(fast).layers} == {Unit.CONST}
    assert cycle_model(fast).ii == 1


def test_estimate_prices_the_graph_as_counted():
    from qmlp.hwgen.cmvm.cost import graph_cost
    from qmlp.hwgen.estimate import GRAPH_LUT_FACTOR, estimate_layer, layer_features

    df = fully_parallel(random_dataflow(7, widths=(24, 16, 3), weight_dtypes=INT(2), input_dtype=UINT(2)))
    for layer, plan in zip(df.layers, build_plan(df).layers):
        cost = graph_cost(plan.graph.graph, plan.graph.schedule)
        f = layer_features(plan, layer.weights)
        assert f.graph_lut == cost.lut and f.const_ff >= cost.ff
        assert estimate_layer(plan, layer.weights).lut >= round(GRAPH_LUT_FACTOR * cost.lut)


def test_layer_rtl_alone_names_its_graph(tmp_path):
    df = fully_parallel(random_dataflow(8, widths=(9, 6, 3), weight_dtypes=TERNARY, input_dtype=UINT(2)))
    top, paths = emit_layer_rtl(df, 0, tmp_path)
    names = {p.name for p in paths}
    assert top == "l0_top" and {"l0_top.v", "l0_graph.v", "qmlp_const_layer.v"} <= names
    text = (tmp_path / "l0_graph.v").read_text()
    assert "module l0_graph (" in text and "generated by qmlp" in text


def test_black_boxes_are_kept_out_of_counts_and_paths():
    from qmlp.hwgen.synth import _script

    text = _script([Path("a.v")], "qmlp_top", "xcup", ["l0_graph", "l2_graph"])
    lines = text.splitlines()
    assert lines.index("blackbox l0_graph l2_graph") == lines.index("hierarchy -check -top qmlp_top") + 1
    assert "delete t:FD* t:RAMB* t:DSP48* t:l0_graph t:l2_graph" in lines
    assert "blackbox" not in _script([Path("a.v")], "qmlp_top", "xcup")


def test_adder_graphs_synthesize_out_of_context_and_add_up(tmp_path):
    """synthesize_parts: the top with its adder graphs as black boxes plus each graph alone
    counts about what one flat run counts (cross-boundary optimisation is all that differs)."""
    from qmlp.hwgen.synth import synthesize, synthesize_parts

    df = fully_parallel(random_dataflow(6, widths=(16, 12, 5), weight_dtypes=TERNARY, input_dtype=UINT(2)))
    emit_rtl(df, tmp_path)
    parts = ["l0_graph", "l1_graph"]
    split = synthesize_parts(tmp_path, family="xcup", parts=parts)
    flat = synthesize(tmp_path, family="xcup")
    shell = synthesize(tmp_path, family="xcup", blackbox=parts)
    assert split.parts == tuple(parts) and "out of context" in split.one_line()
    assert 0 < shell.lut < split.lut and split.dsp == 0
    assert abs(split.lut - flat.lut) <= 0.1 * flat.lut and abs(split.ff - flat.ff) <= 0.1 * flat.ff


@pytest.mark.parametrize("name", ["ternary_a8", pytest.param("int2_uint4_bias_dynamo", marks=pytest.mark.slow)])
def test_zoo_models_fully_parallel_verify(name, zoo, tmp_path, capsys):
    """Brevitas models with negative BatchNorm scales, 8-bit (binary search) and 3-bit activations,
    compiled at --target-fps max: QONNX reference == simulator == RTL, bit-exact."""
    from qmlp.cli import main
    from qmlp.ir import load

    out = tmp_path / name
    assert main(["compile", str(zoo(name)), "--board", "zcu104", "-o", str(out), "--target-fps", "max",
                 "--allow-overfit"]) == 0
    df = load(out / "dataflow.json")
    assert {p.unit for p in build_plan(df).layers} == {Unit.CONST}
    assert all(layer.activation.negate.any() for layer in df.layers[:-1])
    capsys.readouterr()
    assert main(["verify", str(out), "--samples", "300"]) == 0
    printed = capsys.readouterr().out
    assert "RTL == simulator: yes (300/300 vectors bit-exact)" in printed and "verify: PASS" in printed
