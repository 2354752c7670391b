"""The onnxruntime engine computes exactly what the numpy reference path computes: every layer's
accumulators and output values, on random IRs of every weight, input and activation type, with
inputs far outside the quantizer range."""

from __future__ import annotations

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.ir import accumulator_range, replace
from qmlp.sim import engine
from qmlp.sim.bitaccurate import simulate, simulate_outputs
from qmlp.testing import random_dataflow

CASES = [  # (widths, weight types, input type, activation type, negated share)
    ((40, 256, 128, 64, 32, 4), INT(2), INT(8), UINT(2), 0.0),  # the seed topology
    ((20, 16, 9, 4), (TERNARY, INT(3), BIPOLAR), INT(8), INT(2), 0.0),  # signed activations with a bias
    ((12, 9, 7, 3), TERNARY, UINT(8), BIPOLAR, 0.0),  # bipolar activations: 2 * count - 1
    ((10, 8, 5), BIPOLAR, BIPOLAR, UINT(3), 0.0),  # bipolar input, 7 threshold steps
    ((9, 7, 3), INT(8), INT(8), UINT(2), 0.0),  # weights beyond +-63: split into int8 pieces
    ((6, 5, 4), INT(4), UINT(4), UINT(4), 0.0),  # 15 steps
    ((7, 13, 5, 3), TERNARY, INT(4), UINT(1), 0.0),  # odd widths, 1-bit activations, a narrow input
    ((11, 6, 3), (INT(2), TERNARY), INT(8), UINT(2), 0.5),  # channels comparing the negated accumulator
    ((9, 10, 2), BIPOLAR, BIPOLAR, INT(3), 0.3),  # bipolar input, signed 3-bit activations, negated
]


def _wide_inputs(df, rows: int, seed: int) -> np.ndarray:
    """Inputs spanning 3x the quantizer's range (so clipping is exercised), with zeros, a
    round-half-to-even tie and infinities."""
    rng = np.random.default_rng(seed)
    in_type = df.input.dtype
    span = 3 * max(abs(in_type.min), abs(in_type.max), 1) * float(df.input.scale.max())
    x = rng.uniform(-span, span, size=(rows, df.input.features)).astype(np.float32)
    x[:5] = 0.0
    x[5, 0] = df.input.scale[0] * 2.5  # a tie: round half to even
    x[6, :2] = np.inf, -np.inf  # saturate
    return x


def _assert_engine_equals_numpy(df, x):
    ref, fast = simulate(df, x, engine="numpy"), simulate(df, x, engine="onnxruntime")
    assert np.array_equal(ref.inputs, fast.inputs)
    for a, b in zip(ref.accumulators + ref.activations, fast.accumulators + fast.activations):
        assert a.dtype == b.dtype == np.int64 and np.array_equal(a, b)
    assert np.array_equal(ref.outputs, fast.outputs)
    assert np.array_equal(simulate_outputs(df, x, engine="numpy"), simulate_outputs(df, x, engine="onnxruntime"))
    for rows in (1, 2, engine.SMALL_ROWS, engine.SMALL_ROWS + 1):  # the small-batch graph, twice (bound buffers)
        for _ in range(2):
            assert np.array_equal(simulate_outputs(df, x[:rows], engine="onnxruntime"), ref.outputs[:rows])


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c[0])))
@pytest.mark.parametrize("seed", range(3))
def test_engine_equals_numpy_bit_for_bit(case, seed):
    widths, wtypes, in_type, act_type, negate = case
    df = random_dataflow(seed, widths=widths, weight_dtypes=wtypes, input_dtype=in_type, act_dtype=act_type,
                         negate=negate)
    assert engine.engine_for(df) is not None and engine.engine_for(df, keep=True) is not None
    # 3000 rows: several engine blocks
    _assert_engine_equals_numpy(df, _wide_inputs(df, 3000, seed))


def _line_thresholds(rng, low, high, steps: int, integer_spacing: bool = False) -> np.ndarray:
    """Thresholds as BatchNorm + a uniform quantizer make them: ceil(t0 + k * d), per channel,
    at least 2 accumulator values apart (finer steps than the accumulator may have no line);
    ``integer_spacing``: d rounded to an integer."""
    span = np.maximum(high - low, 1)
    d = np.maximum(rng.uniform(0.3, 1.5, size=len(low)) * span / steps, 2.0)
    d = np.round(d) if integer_spacing else d
    t0 = low + rng.uniform(-0.2, 0.6, size=len(low)) * span
    return np.ceil(t0[:, None] + np.arange(steps)[None, :] * d[:, None]).astype(np.int64)


@pytest.mark.parametrize("bits", range(1, 9))
def test_staircase_layers_of_1_to_8_bit_activations_are_exact(bits):
    """Thresholds that are one rounded line per channel run as one requantized column per channel,
    unsigned and signed, with negated channels, uniform input scale and preprocessing ops; equal
    to the numpy path bit for bit. A line's offset must be a multiple of 1 / (weight multiple):
    BatchNorm-like steps find one up to 4-bit activations (15 steps); from 5 bits this test uses
    integer-spaced steps (other wide staircases have no such line and run on the numpy path)."""
    from qmlp.ir import PreOp, frozen_array

    rng = np.random.default_rng(bits)
    for act_type in (UINT(bits), INT(bits)) if bits > 1 else (UINT(1),):
        df = random_dataflow(bits, widths=(17, 24, 11, 3), weight_dtypes=INT(3), act_dtype=act_type, negate=0.3)
        df = _with_line_thresholds(df, rng, integer_spacing=bits > 4)
        quant = replace(df.input, scale=frozen_array(np.full(17, 0.05), np.float32),
                        pre=(PreOp("Sub", frozen_array(rng.normal(0, 1, 17), np.float32)),
                             PreOp("Div", frozen_array([1.7], np.float32))))
        df = replace(df, input=quant)
        assert engine.engine_for(df).activations == ("staircase", "staircase", "none")
        _assert_engine_equals_numpy(df, _wide_inputs(df, 2000, bits))


def _with_line_thresholds(df, rng, integer_spacing: bool = False):
    """``df`` with every activation's thresholds replaced by ``_line_thresholds`` over the range
    its (oriented) accumulator can reach."""
    from qmlp.ir import frozen_array

    layers = []
    for layer in df.layers:
        if layer.activation is not None:
            sign = np.where(layer.activation.negate, -1, 1)
            low, high = accumulator_range(sign[:, None] * layer.weights, layer.in_dtype)
            values = _line_thresholds(rng, low, high, layer.activation.steps, integer_spacing)
            layer = replace(layer, activation=replace(layer.activation, values=frozen_array(values, np.int64)))
        layers.append(layer)
    return replace(df, layers=tuple(layers))


def test_staircase_with_weights_beyond_int8_pieces():
    """INT8 weights (beyond +-63) split into int8 pieces and still take one line per channel."""
    df = _with_line_thresholds(random_dataflow(3, widths=(9, 12, 5), weight_dtypes=INT(8)), np.random.default_rng(3))
    assert engine.engine_for(df).activations == ("staircase", "none")
    _assert_engine_equals_numpy(df, _wide_inputs(df, 1000, 3))


def test_staircase_line_is_exact_on_every_reachable_accumulator():
    """``_unit_line``'s (unit, M, C): the float32 arithmetic of the requantizer, run on every
    integer of the range, gives every threshold count; regular staircases of up to 15 steps find
    a line, irregular ones may not."""
    rng = np.random.default_rng(0)
    found = regular = 0
    for _ in range(300):
        steps = int(rng.choice([1, 3, 7, 15]))
        lo = int(rng.integers(-3000, 0))
        hi = lo + int(rng.integers(1, 6000))
        values = np.sort(_line_thresholds(rng, np.array([lo]), np.array([hi]), steps)[0])
        irregular = rng.random() < 0.2
        if irregular:  # one step made twice as wide
            values[steps // 2:] += int((hi - lo) // max(steps, 1)) + 1
        line = engine._unit_line(values, lo, hi, steps, 16)
        regular += not irregular
        if line is None:
            assert irregular, (steps, lo, hi, values)
            continue
        found += 1
        unit, scale, add = line
        a = np.arange(lo, hi + 1)
        got = np.clip(np.rint((unit * a + add).astype(np.float32) * scale), 0, steps)
        assert np.array_equal(got, (a[:, None] >= values[None, :]).sum(axis=1)), (steps, lo, hi, values, line)
    assert found >= regular


@pytest.mark.parametrize("bits", (5, 8))
def test_wide_activations_without_a_line_run_on_the_numpy_path(bits):
    """More than MAX_STEPS irregular thresholds: no staircase, too many indicator columns, so the
    engine declines and ``auto`` takes the numpy path."""
    df = random_dataflow(bits, widths=(12, 9, 3), act_dtype=UINT(bits))
    assert engine.engine_for(df) is None
    x = _wide_inputs(df, 100, bits)
    assert np.array_equal(simulate_outputs(df, x), simulate(df, x, engine="numpy").outputs)


def test_concurrent_batch_1_predictions_are_right():
    """The small-batch path reuses bound buffers under a lock; another thread meanwhile takes the
    plain path: every result still equals the numpy path."""
    import threading

    df = random_dataflow(4, widths=(16, 12, 4))
    x = _wide_inputs(df, 400, 4)
    want = simulate_outputs(df, x, engine="numpy")
    bad = []

    def work(offset: int) -> None:
        for row in range(offset, len(x), 2):
            if not np.array_equal(simulate_outputs(df, x[row:row + 1]), want[row:row + 1]):
                bad.append(row)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


def test_output_without_the_lookup_table_is_dequantized_on_the_host(monkeypatch):
    """A last layer whose accumulator ranges make the dequantization table too large hands out
    its float32 accumulators; ``dequantize_output`` then runs in numpy, with the same result."""
    df = random_dataflow(2, widths=(14, 10, 5))
    monkeypatch.setattr(engine, "_TABLE_LIMIT", 0)
    assert engine.engine_for(df).dequantized is False
    _assert_engine_equals_numpy(df, _wide_inputs(df, 300, 2))


def test_engine_refuses_models_where_float32_is_not_exact():
    df = random_dataflow(0, widths=(12, 9, 3))
    wide = replace(df.layers[0], weights=np.full_like(df.layers[0].weights, 1 << 20), weight_dtype=INT(24))
    big = replace(df, layers=(wide, *df.layers[1:]))
    assert engine.engine_for(big) is None
    x = np.zeros((4, 12), np.float32)
    with pytest.raises(ValueError, match="not exact for this model"):
        simulate_outputs(big, x, engine="onnxruntime")
    assert simulate_outputs(big, x).shape == (4, 3)  # auto falls back to numpy


def test_nan_input_takes_the_numpy_path():
    df = random_dataflow(1)
    x = np.zeros((3, 12), np.float32)
    x[1, 2] = np.nan
    assert np.array_equal(simulate_outputs(df, x), simulate_outputs(df, x, engine="numpy"))
    with pytest.raises(ValueError, match="engine 'gpu'"):
        simulate_outputs(df, x, engine="gpu")


@pytest.mark.parametrize("name", ["can_ids_w2a2", "can_ids_ternary", "digits_ternary"])
def test_trained_models_take_the_staircase_path_and_stay_exact(name):
    """Thresholds derived from BatchNorm + a uniform quantizer are one rounded line per channel:
    the engine computes them with QuantizeLinear (exhaustively checked at build time); the
    outputs still equal the numpy path on the example vectors and on wide random inputs."""
    from pathlib import Path

    from qmlp.frontend import import_model

    root = Path(__file__).resolve().parents[2] / "examples"
    df = import_model(root / f"{name}.onnx")
    assert engine.engine_for(df).activations == ("staircase",) * (len(df.layers) - 1) + ("none",)
    x = np.load(root / f"{name}.npz")["x"].astype(np.float32)
    rng = np.random.default_rng(0)
    wide = (rng.normal(0, 1, size=(20000, x.shape[1])) * np.abs(x).max(axis=0) * 2).astype(np.float32)
    for data in (x, wide):
        ref, fast = simulate(df, data, engine="numpy"), simulate(df, data, engine="onnxruntime")
        for a, b in zip(ref.accumulators + ref.activations, fast.accumulators + fast.activations):
            assert np.array_equal(a, b)
        assert np.array_equal(simulate_outputs(df, data, engine="numpy"), simulate_outputs(df, data, engine="onnxruntime"))


def test_predict_accepts_huge_finite_inputs_and_refuses_non_finite_ones():
    """``Model.predict``'s finiteness check is one sum of squares for float32 input: values whose
    squares overflow (1e30) are still finite and predicted like numpy does; inf and NaN are refused."""
    from qmlp.api import Model
    from qmlp.errors import InputError

    df = random_dataflow(5, widths=(8, 6, 3))
    model = Model(dataflow=df)
    x = _wide_inputs(df, 20, 5)[7:]  # no infinities
    x[0, 1], x[1, 2] = 1e30, -3e38
    with np.errstate(over="ignore"):  # the numpy path's x / scale overflows to -inf, then clips
        assert np.array_equal(model.predict(x), simulate_outputs(df, x, engine="numpy"))
    for bad in (np.inf, np.nan):
        x[2, 3] = bad
        with pytest.raises(InputError, match=r"first at index \[2, 3\]"):
            model.predict(x)
