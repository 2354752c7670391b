"""QONNX execute_onnx (the float reference) vs the bit-accurate simulator of the lowered IR."""

from dataclasses import replace

import numpy as np
import pytest

import qmlp.sim.reference as reference
from qmlp.datatypes import UINT
from qmlp.errors import ModelError
from qmlp.frontend import import_model, load_model, lower
from qmlp.ir import frozen_array
from qmlp.sim.bitaccurate import simulate
from qmlp.sim.reference import compare, run_reference, sample_inputs
from zoo import NAMES
from frontend.builders import GraphBuilder

SAMPLES = 1000


def assert_agrees(model, df, x):
    ref, sim = run_reference(model, x), simulate(df, x)
    assert np.array_equal(ref.inputs, sim.inputs)
    for index, (a, b) in enumerate(zip(ref.activations, sim.activations)):
        rate = np.mean(a != b)
        assert np.array_equal(a, b), f"layer {index}: mismatch rate {rate:.4%}"
    # float32 host arithmetic (MatMul sums, affine ops) differs from the float64 dequant by ~1e-7
    # relative to the largest term; 1e-5 of the output's magnitude leaves 100x margin.
    scale = np.abs(ref.outputs).max(axis=0, keepdims=True)
    np.testing.assert_allclose(sim.outputs, ref.outputs, rtol=1e-5, atol=1e-5 * float(scale.max()))
    result = compare(model, df, ref, sim)
    assert result.ok and all(layer.mismatches == 0 for layer in result.layers)
    return ref, sim


@pytest.mark.parametrize("name", NAMES)
def test_zoo_model_matches_execute_onnx(zoo, name):
    path = zoo(name)
    df = import_model(path)
    x = sample_inputs(df, SAMPLES, seed=1)
    ref, sim = assert_agrees(load_model(path), df, x)
    hidden = [act for layer, act in zip(df.layers, sim.activations) if layer.activation is not None]
    assert all(len(np.unique(act)) > 1 for act in hidden), "a hidden layer is constant: the zoo model is trivial"


def handmade_model():
    """Things no zoo model has: a (batch, 4, 3) input flattened, an unsigned 1-bit input quantizer,
    Mul/RSub/Div between MatMul and ReLU, Identity on the path, and a final unsigned output
    quantizer with per-channel scales."""
    rng = np.random.default_rng(7)
    g = GraphBuilder()
    h = g.node("Flatten", ["x"], axis=1)
    h = g.quant(h, 0.5, 1, signed=False)  # {0, 1}
    h = g.dense(h, rng.uniform(-1, 1, (9, 12)), rng.uniform(0.2, 0.6, (9, 1)), bits=3, narrow=False)
    h = g.node("Mul", [h, g.const(rng.uniform(-2, 2, 9))])
    h = g.node("Sub", [g.const(rng.normal(0, 1, 9)), h])
    h = g.node("Identity", [g.node("Div", [h, g.const(0.75)])])
    h = g.quant(g.node("Relu", [h]), 0.25, 2, signed=False)
    h = g.dense(h, rng.uniform(-1, 1, (4, 9)), 0.5, bits=2, narrow=True, gemm=True, bias=rng.normal(0, 1, 4))
    y = g.quant(g.node("Relu", [h]), np.array([0.1, 0.2, 0.3, 0.4]), 3, signed=False)
    return g.model(y, (4, 3), (4,))


def test_handmade_model_matches_execute_onnx():
    model = handmade_model()
    df = lower(model, name="handmade")
    assert df.input.dtype == UINT(1) and df.input_shape == (4, 3)
    x = sample_inputs(df, SAMPLES, seed=2)
    assert x.shape == (SAMPLES, 4, 3)
    assert_agrees(model, df, x)


def test_compare_catches_a_wrong_threshold(zoo):
    """The check can fail: shift one threshold of the first layer by one."""
    path = zoo("ternary_w2a2")
    df = import_model(path)
    layer = df.layers[0]
    values = layer.activation.values.copy()
    x = sample_inputs(df, SAMPLES, seed=3)
    acc = simulate(df, x).accumulators[0]
    channel = int(np.argmax([np.sum(acc[:, c] == values[c, 1]) for c in range(layer.out_features)]))
    values[channel, 1] += 1  # accumulators equal to the old threshold now count one step lower
    broken = replace(df, layers=(replace(layer, activation=replace(layer.activation, values=frozen_array(values, np.int64))),
                                 *df.layers[1:]))
    result = compare(load_model(path), broken, run_reference(path, x), simulate(broken, x))
    assert not result.ok and result.layers[0].unexplained > 0 and result.layers[0].ties == 0


def test_near_boundary_rule():
    y = np.array([0.5, 1.5 + 1e-6, 1.5 + 1e-3, 2.0, -0.5])
    assert reference._near_boundary(y, bipolar=False).tolist() == [True, True, False, False, True]
    assert reference._near_boundary(np.array([0.0, 1e-6, 0.1]), bipolar=True).tolist() == [True, True, False]


def test_sample_inputs_cover_clipping_ties_and_zero(zoo):
    df = import_model(zoo("qcdq_int4in_identity3"))
    x = sample_inputs(df, 2000, seed=0).reshape(2000, -1)
    levels = x / df.input.scale
    assert levels.min() < df.input.qmin - 1 and levels.max() > df.input.qmax + 1  # both clip edges
    assert np.mean(np.abs(levels - np.round(levels)) == 0.5) > 0.05  # exact rounding ties
    assert np.mean(x == 0) > 0.03


def test_chunked_reference_equals_one_shot(zoo, monkeypatch):
    path = zoo("bipolar_all")
    x = sample_inputs(import_model(path), 300, seed=4)
    whole = run_reference(path, x)
    monkeypatch.setattr(reference, "CHUNK", 128)
    chunked = run_reference(path, x)
    assert np.array_equal(whole.outputs, chunked.outputs)
    assert all(np.array_equal(a, b) for a, b in zip(whole.activations, chunked.activations))


def test_reference_rejects_wrong_input_shape(zoo):
    with pytest.raises(ModelError, match=r"input of shape \(4, 3\) does not match the model input .*\(batch, 37\)"):
        run_reference(zoo("ternary_w2a2"), np.zeros((4, 3), np.float32))


def test_compare_excuses_float_ties_only():
    """y = acc / 2 puts every odd accumulator exactly on a .5 rounding boundary. A reference level
    one off there is a float32 tie (excused); one off anywhere else is a real disagreement."""
    from dataclasses import replace as dc_replace

    g = GraphBuilder()
    h = g.dense(g.quant("x", 1.0, 4, signed=False), np.array([[1.0, 1.0], [1.0, -1.0]]), 1.0, bits=2, narrow=True)
    y = g.quant(g.node("Relu", [h]), 2.0, 3, signed=False)  # levels round_half_even(relu(acc) / 2)
    model = g.model(y, (2,), (2,))
    df = lower(model, name="ties")
    x = np.array([[a, b] for a in range(16) for b in range(16)], np.float32)
    sim = simulate(df, x)
    ref = run_reference(model, x)
    assert compare(model, df, ref, sim).ok
    acc = sim.accumulators[0][:, 0]
    level = sim.activations[0][:, 0]
    on_tie = np.flatnonzero((acc % 2 == 1) & (acc < 12))[:5]
    off_tie = np.flatnonzero((acc % 2 == 0) & (acc > 2) & (acc < 12))[:5]
    # at y = k + 0.5 the IR rounds to even; the other neighbour is what float32 noise could give
    other_side = np.where(level[on_tie] == (acc[on_tie] - 1) // 2, (acc[on_tie] + 1) // 2, (acc[on_tie] - 1) // 2)
    cases = ((on_tie, other_side, True), (on_tie, level[on_tie] + 2, False), (off_tie, level[off_tie] + 1, False))
    for rows, wrong, expect_ok in cases:
        levels = ref.activations[0].copy()
        levels[rows, 0] = wrong
        doctored = dc_replace(ref, activations=(levels,))
        result = compare(model, df, doctored, sim)
        layer = result.layers[0]
        assert result.ok is expect_ok
        assert (layer.ties, layer.unexplained) == ((5, 0) if expect_ok else (0, 5))
