"""Random IRs and zoo models through the emitted RTL (Verilator), bit-exact under random
back-pressure; measured cycles equal the cycle model beat for beat; AXI-Lite counters correct.

One Verilator build per configuration (cached by content hash), many vectors per build."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.hwgen.cycles import cycle_model, simulate_cycles
from qmlp.hwgen.emit import emit_rtl
from qmlp.hwgen.plan import build_plan, output_dtype
from qmlp.ir import SCHEMA_VERSION, Folding, StreamFormat
from qmlp.sim.bitaccurate import run_integer, simulate
from qmlp.sim.rtl import run_beats, simulate_rtl
from qmlp.testing import random_dataflow

pytestmark = pytest.mark.slow

BATCH = 160
TIMING_BATCH = 12


def folded(df, folds, argmax=False):
    layers = tuple(replace(layer, folding=f) for layer, f in zip(df.layers, folds))
    return replace(df, layers=layers, argmax=argmax,
                   stream=StreamFormat(folds[0].simd, 1 if argmax else folds[-1].pe))


def random_inputs(df, n, seed):
    rng = np.random.default_rng(seed)
    if df.input.dtype == BIPOLAR:
        return rng.choice([-1, 1], size=(n, df.input.features))
    q = rng.integers(df.input.qmin, df.input.qmax + 1, size=(n, df.input.features))
    q[0], q[1] = df.input.qmin, df.input.qmax  # the input extremes
    return q


def expected(df, q):
    _, acts = run_integer(df, q)
    return np.argmax(acts[-1], axis=1)[:, None] if df.argmax else acts[-1]


CONFIGS = {
    # pe = simd = 1 everywhere, argmax on: the slowest, smallest design
    "fully_folded_ternary_argmax": lambda: folded(
        random_dataflow(1, widths=(12, 9, 7, 3)), [Folding(1, 1)] * 3, argmax=True),
    # partial folding with zero-padding on both dimensions, bipolar input and activations
    "partial_padded_bipolar_int4_int2": lambda: folded(
        random_dataflow(3, widths=(37, 29, 5), weight_dtypes=(INT(4), INT(2)), input_dtype=BIPOLAR,
                        act_dtype=BIPOLAR, negate=0.4),
        [Folding(4, 5, pad_out=3, pad_in=3), Folding(2, 3, pad_out=1, pad_in=1)]),
    # fully parallel: the ternary/bipolar constant-weight units, signed 3-bit activations, 4-bit input
    "fully_parallel_ternary_bipolar": lambda: folded(
        random_dataflow(2, widths=(37, 29, 5), weight_dtypes=(TERNARY, BIPOLAR), input_dtype=UINT(4),
                        act_dtype=INT(3), negate=0.4),
        [Folding(29, 37), Folding(5, 29)]),
    # mixed: 1-bit unsigned input, INT2 -> TERNARY -> INT8 weights, a fully parallel INT8 MVAU, argmax
    "mixed_uint1_int2_int8_argmax": lambda: folded(
        random_dataflow(4, widths=(16, 11, 8, 6), weight_dtypes=(INT(2), TERNARY, INT(8)), input_dtype=UINT(1),
                        act_dtype=INT(2)),
        [Folding(11, 4), Folding(2, 11), Folding(6, 8)], argmax=True),
    # gathering converters (a consumer beat of whole producer beats) with padding: 4 -> 8 over 10
    # elements (the producer's last beat half padding, the consumer's last beat a quarter filled),
    # 1 -> 4 over 6; plane sums (UINT2 x INT2, TERNARY); a register slice at s_axis before a
    # folded first layer whose vector is one beat (SF = 1, 3 output folds)
    "gather_padded_planes_slice": lambda: folded(
        random_dataflow(5, widths=(9, 10, 6, 3), weight_dtypes=(INT(2), INT(2), TERNARY), input_dtype=UINT(2),
                        act_dtype=UINT(2)),
        [Folding(4, 9, pad_out=2), Folding(1, 8, pad_in=6), Folding(3, 4, pad_in=2)]),
    # activations of every width from 1 to 8 bits, 40% of channels negated: comparator units
    # (folded and constant) below 4 bits, the binary search from 4 bits on, in folded MVAUs (one
    # and several table rows, padded rows) and fully parallel ternary layers
    "acts_1_to_8_bits_negated": lambda: folded(
        random_dataflow(7, widths=(14, 12, 11, 10, 9, 9, 8, 8, 7, 5),
                        weight_dtypes=(TERNARY, INT(2), TERNARY, INT(3), TERNARY, BIPOLAR, TERNARY, INT(2), TERNARY),
                        input_dtype=INT(8), negate=0.4,
                        act_dtype=(BIPOLAR, UINT(2), INT(3), UINT(4), INT(5), UINT(6), INT(7), UINT(8))),
        [Folding(3, 7), Folding(11, 4), Folding(10, 11), Folding(3, 5), Folding(9, 9), Folding(3, 3, pad_out=1),
         Folding(1, 8), Folding(7, 2), Folding(5, 7)]),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_random_ir_bit_exact_cycles_and_counters(name, tmp_path):
    df = CONFIGS[name]()
    emit_rtl(df, tmp_path)
    q = random_inputs(df, BATCH, seed=len(name))

    # bit-exact under random back-pressure on both streams
    result = simulate_rtl(df, tmp_path, q, backpressure=True, seed=3)
    assert np.array_equal(result.outputs, expected(df, q))
    regs = result.registers
    assert regs["ID"] == 0x514D4C50 and regs["VERSION"] == (SCHEMA_VERSION << 16) | len(df.layers)
    assert regs["INFERENCES"] == BATCH and regs["LAST_LATENCY"] == result.latency[-1]
    assert result.total_cycles <= regs["CYCLES"] <= result.total_cycles + 20  # read a few cycles later
    assert regs["INFERENCES_AFTER_CLEAR"] == 0 and regs["LAST_LATENCY_AFTER_CLEAR"] == 0
    assert 0 < regs["CYCLES_AFTER_CLEAR"] < 20

    # without back-pressure: every beat's handshake cycle is what the cycle model predicts
    timing = simulate_rtl(df, tmp_path, q[:TIMING_BATCH], backpressure=False)
    assert np.array_equal(timing.outputs, expected(df, q[:TIMING_BATCH]))
    in_cycles, out_cycles = simulate_cycles(df, TIMING_BATCH)
    assert np.array_equal(timing.beats.in_cycles, in_cycles)
    assert np.array_equal(timing.beats.out_cycles, out_cycles)
    model = cycle_model(df, vectors=TIMING_BATCH)
    assert timing.latency[0] == model.latency
    assert model.ii == max(p.cycles for p in build_plan(df).layers)  # full throughput
    completions = timing.beats.out_cycles[timing.beats.out_last]
    assert completions[-1] - completions[-2] == model.ii


def test_low_level_beats_api_round_trip(tmp_path):
    """The DMA stand-in path: packed beats in, packed beats out, TLAST per vector."""
    from qmlp.packing import pack, unpack

    df = CONFIGS["fully_folded_ternary_argmax"]()
    emit_rtl(df, tmp_path)
    q = random_inputs(df, 9, seed=1)
    beats = pack(q, df.input.dtype, df.stream.in_elems_per_beat).reshape(-1, 1)
    res = run_beats(tmp_path, beats, out_bytes=1, n_out_beats=9, out_beats_per_vector=1, seed=5)
    assert res.out_last.all() and len(res.in_cycles) == len(beats)
    assert output_dtype(df) == UINT(2)  # class index of 3 classes
    labels = unpack(res.out_beats.reshape(9, 1, 1), UINT(2), 1, 1)
    assert np.array_equal(labels, expected(df, q))


ZOO_MODELS = ("ternary_w2a2", "bipolar_all", "ternary_a8")


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_model_through_rtl(name, zoo, tmp_path):
    from qmlp.frontend import import_model
    from qmlp.hwgen.fold import fold
    from qmlp.sim.reference import sample_inputs

    df = fold(import_model(zoo(name)), target_fps=2e6, clock_mhz=200)
    emit_rtl(df, tmp_path)
    x = sample_inputs(df, 300, seed=2)
    sim = simulate(df, x)
    result = simulate_rtl(df, tmp_path, sim.inputs, backpressure=True, seed=4)
    ref = np.argmax(sim.activations[-1], axis=1)[:, None] if df.argmax else sim.activations[-1]
    assert np.array_equal(result.outputs, ref)
    assert result.registers["INFERENCES"] == 300


def test_clear_errors_before_any_build(tmp_path):
    from qmlp.errors import ToolError

    df = CONFIGS["fully_folded_ternary_argmax"]()
    with pytest.raises(ToolError, match="no qmlp_top.v; run qmlp.hwgen.emit.emit_rtl"):
        simulate_rtl(df, tmp_path, random_inputs(df, 2, seed=0))
    with pytest.raises(ToolError, match="no stream format"):
        simulate_rtl(replace(df, stream=None), tmp_path, random_inputs(df, 2, seed=0))
    with pytest.raises(ValueError, match=r"q must be \(batch >= 1, 12\) integers"):
        simulate_rtl(df, tmp_path, np.zeros((2, 5), dtype=np.int64))


def test_every_activation_width_uses_the_intended_threshold_unit_and_lints_clean(tmp_path):
    from qmlp.sim.rtl import lint

    df = CONFIGS["acts_1_to_8_bits_negated"]()
    emit_rtl(df, tmp_path)
    lint(tmp_path)  # verilator --lint-only -Wall: ToolError unless clean
    plans = build_plan(df).layers
    assert [(p.unit.name, p.threshold and p.threshold.unit.name, p.threshold_latency) for p in plans] == [
        ("MVAU", "COMPARE", 0), ("POPCOUNT", "COMPARE", 0), ("CONST", "COMPARE", 0), ("MVAU", "SEARCH", 4),
        ("CONST", "SEARCH", 5), ("MVAU", "SEARCH", 6), ("MVAU", "SEARCH", 7), ("MVAU", "SEARCH", 8),
        ("CONST", None, 0)]
