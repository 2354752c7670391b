"""Every recipe's export loads in the frontend, and the bit-accurate simulator agrees with
Brevitas' own forward pass and with qonnx execute_onnx, on data that uses every level."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qmlp.datatypes import BIPOLAR, TERNARY, DataType
from qmlp.frontend import import_model
from qmlp.ir import verify
from qmlp.quantize.export import export_model, read_metadata
from qmlp.quantize.model import ModelSpec, build_mlp
from qmlp.sim.bitaccurate import simulate
from qmlp.sim.reference import run_reference

CASES = [
    # weights, acts, input bits, signed input, input max, expected IR weight type
    ("ternary", 2, 8, True, 127.0, TERNARY),
    ("int2", 2, 8, True, 127.0, DataType.parse("INT2")),
    ("bipolar", 2, 8, False, 1.0, BIPOLAR),
    ("ternary", 1, 1, True, 1.0, TERNARY),
    ("int2", 4, 8, False, 1.0, DataType.parse("INT2")),
    ("ternary", 3, 4, True, 2.0, TERNARY),
    ("int3", 3, 8, True, 127.0, DataType.parse("INT3")),
    ("int4", 8, 8, False, 1.0, DataType.parse("INT4")),
]


def _inputs(rng: np.random.Generator, spec: ModelSpec, n: int) -> np.ndarray:
    if spec.input_bits == 1:
        return rng.normal(0, 1, (n, spec.in_features)).astype(np.float32)
    if spec.input_signed:
        return rng.uniform(-spec.input_max, spec.input_max, (n, spec.in_features)).astype(np.float32)
    return rng.uniform(0, spec.input_max, (n, spec.in_features)).astype(np.float32)


def _trained_model(spec: ModelSpec, x: np.ndarray, seed: int):
    """A few optimizer steps on random labels: BatchNorm statistics, activation scales and weights
    all move away from their initial values, like in a real run."""
    torch.manual_seed(seed)
    model = build_mlp(spec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(np.random.default_rng(seed).integers(0, spec.classes, len(x)))
    model.train()
    for step in range(12):
        idx = slice((step * 64) % len(x), (step * 64) % len(x) + 64)
        loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _brevitas_levels(model, x: np.ndarray) -> list[np.ndarray]:
    """Integer levels of every QuantReLU, read from Brevitas' forward pass (value / its scale)."""
    levels = []
    hooks = [block[2].register_forward_hook(
        lambda mod, inp, out: levels.append(torch.round(out / mod.act_quant.scale()).detach().numpy().astype(np.int64)))
        for block in model.blocks]
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    for hook in hooks:
        hook.remove()
    return levels + [logits]


@pytest.mark.parametrize("weights, acts, in_bits, signed, in_max, wtype", CASES)
def test_recipe_export_is_bit_exact(tmp_path, weights, acts, in_bits, signed, in_max, wtype):
    spec = ModelSpec(24, (32, 16), 4, weights=weights, acts=acts, input_bits=in_bits, input_signed=signed,
                     input_max=in_max)
    rng = np.random.default_rng(7)
    x = _inputs(rng, spec, 768)
    model = _trained_model(spec, x, seed=3)
    path = tmp_path / f"{weights}.onnx"
    export_model(model, path, spec.in_features, {"qmlp.dataset": "random", "qmlp.accuracy": "0.5"})
    assert read_metadata(path)["qmlp.dataset"] == "random"

    df = import_model(path)
    verify(df)
    assert [layer.weight_dtype for layer in df.layers] == [wtype] * 3
    assert [layer.out_features for layer in df.layers] == [32, 16, 4]
    expected_act = BIPOLAR if acts == 1 else DataType.parse(f"UINT{acts}")
    assert all(layer.activation.out_dtype == expected_act for layer in df.layers[:-1])
    expected_in = BIPOLAR if in_bits == 1 else DataType.parse(f"{'INT' if signed else 'UINT'}{in_bits}")
    assert df.input.dtype == expected_in

    sim = simulate(df, x)
    *levels, logits = _brevitas_levels(model, x)
    # hidden layers: every integer level equals Brevitas' (several levels in use, so this bites)
    for index, level in enumerate(levels):
        assert len(np.unique(level)) >= 2
        assert np.array_equal(sim.activations[index], level), f"layer {index}"
    np.testing.assert_allclose(sim.outputs, logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())
    assert np.array_equal(sim.outputs.argmax(1), logits.argmax(1))

    ref = run_reference(path, x)
    assert np.array_equal(ref.inputs, sim.inputs)
    for index in range(len(df.layers)):
        assert np.array_equal(ref.activations[index], sim.activations[index]), f"layer {index}"
    np.testing.assert_allclose(sim.outputs, ref.outputs, rtol=1e-6, atol=1e-6 * np.abs(ref.outputs).max())


def test_ternary_weights_use_absmean_scale():
    spec = ModelSpec(20, (30,), 3, weights="ternary")
    torch.manual_seed(0)
    linear = build_mlp(spec).blocks[0][0]
    qw = linear.quant_weight()
    w = linear.weight.detach()
    assert float(qw.scale.detach()) == pytest.approx(float(w.abs().mean()), rel=1e-6)
    ints = torch.round(qw.value / qw.scale)
    assert set(torch.unique(ints).tolist()) == {-1.0, 0.0, 1.0}
    assert torch.equal(ints, torch.clamp(torch.round(w / w.abs().mean()), -1, 1))


def test_int2_uses_minus_two():
    spec = ModelSpec(20, (30,), 3, weights="int2")
    torch.manual_seed(0)
    linear = build_mlp(spec).blocks[0][0]
    qw = linear.quant_weight()
    ints = torch.round(qw.value / qw.scale)
    assert ints.min() == -2 and ints.max() == 1
