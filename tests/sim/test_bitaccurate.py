"""The golden model itself: exact integer products, thresholds, input quantizer, bipolar."""

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.ir import InputQuant, Thresholds, frozen_array
from qmlp.sim.bitaccurate import (apply_thresholds, exact_matmul, quantize_input, run_integer, simulate)
from qmlp.testing import random_dataflow


@pytest.mark.parametrize("bound_bits", [10, 23, 30, 52, 60])
def test_exact_matmul_equals_int64(bound_bits):
    """Each precision regime (float32, float64, int64) is exact right up to its bound."""
    rng = np.random.default_rng(bound_bits)
    k = 16
    mag = (1 << bound_bits) // k // 2  # |q| * |w| * k stays below 2^bound_bits
    w_max = int(np.sqrt(mag))
    q = rng.integers(-w_max, w_max + 1, (50, k))
    w = rng.integers(-w_max, w_max + 1, (7, k))
    q[0], w[0] = w_max, w_max  # the extreme partial sum
    bound = int(np.abs(w).sum(axis=1).max()) * w_max
    assert np.array_equal(exact_matmul(q, w, bound), q.astype(np.int64) @ w.T.astype(np.int64))


def test_exact_matmul_float32_limit_is_respected():
    q = np.full((1, 2), 4097, dtype=np.int64)
    w = np.full((1, 2), 4097, dtype=np.int64)  # 2 * 4097^2 > 2^24: float32 would round
    bound = 2 * 4097 * 4097
    assert exact_matmul(q, w, bound)[0, 0] == 2 * 4097 * 4097


@pytest.mark.parametrize("out_dtype, steps", [(UINT(2), 3), (UINT(4), 15), (UINT(5), 31), (UINT(8), 255), (INT(3), 7)])
def test_thresholds_small_and_many_steps(out_dtype, steps):
    """<= 16 steps use the broadcast compare, more use per-channel binary search: same rule."""
    rng = np.random.default_rng(steps)
    values = np.sort(rng.integers(-300, 300, (6, steps)), axis=1)
    bias = out_dtype.min if out_dtype.signed else 0
    act = Thresholds(values=frozen_array(values, np.int64), out_dtype=out_dtype, bias=bias)
    acc = rng.integers(-320, 320, (200, 6))
    acc[0] = values[:, 0]  # exactly on a threshold counts as reached
    expected = (acc[:, :, None] >= values[None, :, :]).sum(axis=2) + bias
    assert np.array_equal(apply_thresholds(act, acc), expected)


def test_bipolar_activation_is_two_count_minus_one():
    act = Thresholds(values=frozen_array([[0], [5]], np.int64), out_dtype=BIPOLAR, bias=0)
    assert apply_thresholds(act, np.array([[-1, 5], [0, 4]])).tolist() == [[-1, 1], [1, -1]]


def test_quantize_input_is_qonnx_quant():
    quant = InputQuant(dtype=INT(4), scale=frozen_array([0.5, 0.25], np.float32), qmin=-8, qmax=7)
    x = np.array([[0.25, 0.375], [0.75, -0.125], [100.0, -100.0], [-0.25, 0.125]], np.float32)
    # x / s = [0.5, 1.5], [1.5, -0.5], clipped, [-0.5, 0.5]: ties to even
    assert quantize_input(quant, x).tolist() == [[0, 2], [2, 0], [7, -8], [0, 0]]


def test_quantize_input_bipolar_zero_is_plus_one():
    quant = InputQuant(dtype=BIPOLAR, scale=frozen_array([1.0] * 3, np.float32), qmin=-1, qmax=1)
    assert quantize_input(quant, np.array([[0.0, -0.0, -1e-30]], np.float32)).tolist() == [[1, 1, -1]]


@pytest.mark.parametrize("seed", range(3))
def test_simulate_equals_a_plain_integer_model(seed):
    df = random_dataflow(seed, widths=(20, 16, 9, 4), weight_dtypes=(TERNARY, INT(3), BIPOLAR), act_dtype=INT(2))
    x = np.random.default_rng(seed).normal(0, 5, (300, 20)).astype(np.float32)
    result = simulate(df, x)
    q = np.clip(np.round(x / df.input.scale), df.input.qmin, df.input.qmax).astype(np.int64)
    assert np.array_equal(result.inputs, q)
    for layer, acc, act in zip(df.layers, result.accumulators, result.activations):
        assert np.array_equal(acc, q @ layer.weights.T)
        if layer.activation is not None:
            t = layer.activation
            q = (acc[:, :, None] >= t.values[None]).sum(axis=2) + t.bias
        else:
            q = acc
        assert np.array_equal(act, q)
    y = (q * df.output.scale + df.output.bias).astype(np.float32)
    assert np.array_equal(result.outputs, y)


def test_simulate_rejects_wrong_shape():
    df = random_dataflow(0)
    with pytest.raises(ValueError, match=r"input shape \(3, 11\) does not match \(batch, 12\)"):
        simulate(df, np.zeros((3, 11), np.float32))


def test_run_integer_returns_every_layer():
    df = random_dataflow(5, widths=(8, 6, 5, 3))
    accs, acts = run_integer(df, np.zeros((2, 8), np.int64))
    assert [a.shape for a in accs] == [(2, 6), (2, 5), (2, 3)] and len(acts) == 3


@pytest.mark.parametrize("input_dtype, weights, act", [
    (INT(8), (TERNARY, INT(3), BIPOLAR), UINT(2)),
    (INT(8), (INT(4), INT(4), INT(4)), UINT(5)),  # 31 steps: the per-channel search path
    (INT(8), (INT(4), TERNARY, INT(2)), INT(4)),  # signed output, bias -8 in the int8 counter
    (INT(16), (INT(8), INT(8), INT(8)), INT(8)),  # partial sums beyond 2^24: the float64 path
    (BIPOLAR, (BIPOLAR, BIPOLAR, BIPOLAR), BIPOLAR),
])
def test_fast_paths_equal_a_plain_int64_model(monkeypatch, input_dtype, weights, act):
    import qmlp.sim.bitaccurate as bitaccurate
    from qmlp.sim.bitaccurate import simulate_outputs
    monkeypatch.setattr(bitaccurate, "CHUNK", 37)  # blocks that do not divide the batch
    df = random_dataflow(4, widths=(40, 23, 17, 5), weight_dtypes=weights, input_dtype=input_dtype, act_dtype=act,
                         negate=0.4)  # 40% of the channels compare -acc
    assert df.layers[0].activation.negate.any()
    x = np.random.default_rng(1).normal(0, 200, (301, 40)).astype(np.float32)
    result = simulate(df, x)
    q = result.inputs
    for layer, acc, out in zip(df.layers, result.accumulators, result.activations):
        expected = q @ layer.weights.T
        assert acc.dtype == np.int64 and np.array_equal(acc, expected)
        if layer.activation is not None:
            oriented = np.where(layer.activation.negate, -expected, expected)
            q = layer.activation.output_value((oriented[:, :, None] >= layer.activation.values[None]).sum(axis=2))
        else:
            q = expected
        assert out.dtype == np.int64 and np.array_equal(out, q)
    assert np.array_equal(simulate_outputs(df, x), result.outputs)
