"""The onnxruntime engine computes exactly what the numpy reference path computes: every layer's
accumulators and output values, on random IRs of every weight, input and activation type, with
inputs far outside the quantizer range."""

from __future__ import annotations

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.ir import replace
from qmlp.sim import engine
from qmlp.sim.bitaccurate import simulate, simulate_outputs
from qmlp.testing import random_dataflow

CASES = [  # (widths, weight types, input type, activation type)
    ((40, 256, 128, 64, 32, 4), INT(2), INT(8), UINT(2)),  # the seed topology
    ((20, 16, 9, 4), (TERNARY, INT(3), BIPOLAR), INT(8), INT(2)),  # signed activations with a bias
    ((12, 9, 7, 3), TERNARY, UINT(8), BIPOLAR),  # bipolar activations: 2 * count - 1
    ((10, 8, 5), BIPOLAR, BIPOLAR, UINT(3)),  # bipolar input, 7 threshold steps
    ((9, 7, 3), INT(8), INT(8), UINT(2)),  # weights beyond +-63: float32 GEMM instead of int8
    ((6, 5, 4), INT(4), UINT(4), UINT(4)),  # 15 steps
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c[0])))
@pytest.mark.parametrize("seed", range(3))
def test_engine_equals_numpy_bit_for_bit(case, seed):
    widths, wtypes, in_type, act_type = case
    df = random_dataflow(seed, widths=widths, weight_dtypes=wtypes, input_dtype=in_type, act_dtype=act_type)
    assert engine.engine_for(df) is not None and engine.engine_for(df, keep=True) is not None
    rng = np.random.default_rng(seed)
    # 3000 rows: several engine blocks; x spans 3x the quantizer range, so clipping is exercised
    span = 3 * max(abs(in_type.min), abs(in_type.max)) * float(df.input.scale.max())
    x = rng.uniform(-span, span, size=(3000, widths[0])).astype(np.float32)
    x[:5] = 0.0
    x[5, 0] = df.input.scale[0] * 2.5  # a tie: round half to even
    ref, fast = simulate(df, x, engine="numpy"), simulate(df, x, engine="onnxruntime")
    assert np.array_equal(ref.inputs, fast.inputs)
    for a, b in zip(ref.accumulators + ref.activations, fast.accumulators + fast.activations):
        assert a.dtype == b.dtype == np.int64 and np.array_equal(a, b)
    assert np.array_equal(ref.outputs, fast.outputs)
    assert np.array_equal(simulate_outputs(df, x, engine="numpy"), simulate_outputs(df, x, engine="onnxruntime"))
    assert np.array_equal(simulate_outputs(df, x[:1]), ref.outputs[:1])  # batch 1


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
