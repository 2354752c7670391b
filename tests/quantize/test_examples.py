"""The shipped example models: small, self-describing, loadable, and their test vectors hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qmlp.frontend import import_model
from qmlp.quantize.export import read_metadata
from qmlp.sim.bitaccurate import simulate
from qmlp.sim.reference import run_reference

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# name -> (weight type of every layer, accuracy the issue asks for)
MODELS = {"can_ids_ternary": ("TERNARY", 0.999), "can_ids_w2a2": ("INT2", 0.999), "digits_ternary": ("TERNARY", 0.95)}


@pytest.mark.parametrize("name", MODELS)
def test_example_model(name):
    path = EXAMPLES / f"{name}.onnx"
    assert path.stat().st_size < 1_000_000
    meta = read_metadata(path)
    wtype, target = MODELS[name]
    assert float(meta["qmlp.accuracy"]) >= target
    assert meta["qmlp.command"].startswith("qmlp train ") and f"-o examples/{name}.onnx" in meta["qmlp.command"]
    assert len(json.loads(meta["qmlp.class_names"])) == (4 if name.startswith("can") else 10)
    df = import_model(path)
    assert {layer.weight_dtype.name for layer in df.layers} == {wtype}
    if name.startswith("can"):
        assert [layer.out_features for layer in df.layers] == [256, 128, 64, 32, 4] and df.input.features == 40

    vectors = np.load(EXAMPLES / f"{name}.npz")
    x, y, expected = vectors["x"], vectors["y"], vectors["expected"]
    assert x.shape[0] == y.shape[0] == expected.shape[0] == 200
    ref = run_reference(path, x)
    # `expected` came from batch-1 execute_onnx calls; a batched call sums the float32 MatMul in
    # another order, so the last bit may differ: equal to float32 rounding, same decisions.
    np.testing.assert_allclose(ref.outputs, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    assert np.array_equal(ref.outputs.argmax(1), expected.argmax(1))
    sim = simulate(df, x)
    for index in range(len(df.layers)):
        assert np.array_equal(sim.activations[index], ref.activations[index]), f"layer {index}"
    assert np.array_equal(sim.outputs.argmax(1), expected.argmax(1))
    assert (expected.argmax(1) == y).mean() >= target - 0.02  # 200 samples of a >= target model
