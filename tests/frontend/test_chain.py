"""extract_chain / check_supported_ops: structure of each export style and one test per error."""

import numpy as np
import pytest

from qmlp.errors import ModelError, UnsupportedOpError
from qmlp.frontend import lower
from qmlp.frontend.chain import check_supported_ops, extract_chain
from qmlp.datatypes import BIPOLAR, INT, TERNARY

from .builders import GraphBuilder, small_mlp


def step_types(chain):
    return [type(s).__name__ for s in chain.steps]


def test_small_mlp_chain_structure():
    chain = extract_chain(small_mlp())
    assert step_types(chain) == ["QuantStep", "MatMulStep", "BatchNormStep", "ReluStep", "QuantStep", "MatMulStep"]
    first, matmul = chain.steps[0], chain.steps[1]
    assert (first.qmin, first.qmax, first.dtype) == (-128, 127, INT(8))
    assert matmul.weights.shape == (5, 6) and matmul.weight_dtype == TERNARY
    assert chain.input_shape == (6,) and chain.output_shape == (3,)


def test_weight_integers_equal_the_quantizer(tmp_path):
    """integer = round(clip(W / s)) exactly, per output channel scale kept separately."""
    rng = np.random.default_rng(3)
    w = rng.uniform(-2, 2, (4, 6)).astype(np.float32)
    scale = np.array([[0.5], [0.25], [1.0], [0.125]], dtype=np.float32)
    g = GraphBuilder()
    y = g.dense(g.quant("x", 0.1, 8), w, scale, bits=3, narrow=False)
    step = extract_chain(g.model(y, (6,), (4,))).steps[1]
    assert np.array_equal(step.weights, np.clip(np.round(w / scale), -4, 3))
    assert np.array_equal(step.scale, scale.ravel().astype(np.float64))
    assert step.weight_dtype == INT(3)


def test_gemm_bias_becomes_an_add_step():
    g = GraphBuilder()
    rng = np.random.default_rng(1)
    y = g.dense(g.quant("x", 0.1, 4), rng.uniform(-1, 1, (3, 5)), 0.5, gemm=True, bias=[1.0, 2.0, 3.0])
    chain = extract_chain(g.model(y, (5,), (3,)))
    assert step_types(chain) == ["QuantStep", "MatMulStep", "AffineStep"]
    assert chain.steps[2].op == "Add" and np.array_equal(chain.steps[2].const, [1.0, 2.0, 3.0])


def test_one_bit_signed_quant_is_bipolar():
    """qonnx executes a 1-bit signed Quant as sign(x) in {-1, +1}."""
    g = GraphBuilder()
    y = g.dense(g.quant("x", 1.0, 1, signed=True), np.ones((2, 3)), 1.0, bits=1)
    chain = extract_chain(g.model(y, (3,), (2,)))
    assert chain.steps[0].bipolar and chain.steps[0].dtype == BIPOLAR
    assert chain.steps[1].weight_dtype == BIPOLAR


def test_unsupported_op_names_node_and_supported_set():
    g = GraphBuilder()
    h = g.node("Sigmoid", [g.quant("x", 0.1, 8)])
    model = g.model(g.dense(h, np.ones((2, 3)), 1.0), (3,), (2,))
    with pytest.raises(UnsupportedOpError, match=r"node 'sigmoid_\d+' \(Sigmoid\) is not supported; qmlp lowers only "
                                                  r"Quant, BipolarQuant, .*Relu"):
        check_supported_ops(model)


@pytest.mark.parametrize("scale, shown", [(np.inf, "inf"), (np.nan, "nan"), (0.0, "0.0"), (-0.5, "-0.5")])
def test_bad_scale(scale, shown):
    with pytest.raises(ModelError, match=rf"node 'quant_\d+' \(Quant\): scale must be finite and positive, got {shown}"):
        lower(small_mlp(in_scale=scale))


def test_nonzero_zero_point():
    with pytest.raises(ModelError, match=r"\(Quant\): nonzero zero-point 3.0 is not supported; use a symmetric"):
        lower(small_mlp(zero_point=3.0))


def test_rounding_mode():
    with pytest.raises(ModelError, match=r"\(Quant\): rounding_mode FLOOR is not supported; qmlp lowers ROUND"):
        lower(small_mlp(rounding="FLOOR"))


@pytest.mark.parametrize("bits", [9, 16])
def test_activation_bit_width(bits):
    with pytest.raises(ModelError, match=rf"\(Quant\): activation bit width {bits} is outside 1..8"):
        lower(small_mlp(act_bits=bits))


def test_input_bit_width_zero():
    with pytest.raises(ModelError, match=r"bit width must be one integer in 1..64, got \[0.0\]"):
        lower(small_mlp(in_bits=0))


def test_skip_connection_is_not_a_chain():
    g = GraphBuilder()
    q = g.quant("x", 0.1, 8)
    h = g.dense(q, np.ones((3, 3)), 1.0)
    y = g.node("Add", [h, q])
    with pytest.raises(ModelError, match=r"feeds 2 nodes .*qmlp needs a chain of fully-connected layers"):
        lower(g.model(y, (3,), (3,)))


def test_two_data_operands_is_not_a_chain():
    g = GraphBuilder()
    q = g.quant("x", 0.1, 8)
    y = g.node("Mul", [q, q])
    with pytest.raises(ModelError, match=r"combines two data-dependent tensors; qmlp needs a chain"):
        lower(g.model(y, (3,), (3,)))


def test_missing_input_quantizer():
    g = GraphBuilder()
    y = g.dense("x", np.ones((2, 3)), 1.0)
    with pytest.raises(ModelError, match=r"model input 'x' must go straight into an input quantizer .*found node"):
        lower(g.model(y, (3,), (2,)))


def test_float_weights_without_quantizer():
    g = GraphBuilder()
    y = g.node("MatMul", [g.quant("x", 0.1, 8), g.const(np.ones((3, 2)))])
    with pytest.raises(ModelError, match=r"\(MatMul\): weight input 'c_\d+' is a float tensor without a quantizer"):
        lower(g.model(y, (3,), (2,)))


def test_relu_after_last_layer_without_quantizer():
    g = GraphBuilder()
    y = g.node("Relu", [g.dense(g.quant("x", 0.1, 8), np.ones((2, 3)), 1.0)])
    with pytest.raises(ModelError, match=r"\(Relu\) after the last MatMul has no quantizer"):
        lower(g.model(y, (3,), (2,)))


def test_two_matmuls_without_activation_quantizer():
    g = GraphBuilder()
    h = g.dense(g.quant("x", 0.1, 8), np.ones((3, 3)), 1.0)
    y = g.dense(h, np.ones((2, 3)), 1.0)
    with pytest.raises(ModelError, match=r"follows MatMul .* without an activation quantizer"):
        lower(g.model(y, (3,), (2,)))


def test_per_channel_activation_scale_into_matmul():
    g = GraphBuilder()
    h = g.node("Relu", [g.dense(g.quant("x", 0.1, 8), np.ones((3, 3)), 1.0)])
    h = g.quant(h, np.array([0.5, 0.25, 1.0]), 2, signed=False)
    y = g.dense(h, np.ones((2, 3)), 1.0)
    with pytest.raises(ModelError, match=r"per-channel activation scales feeding .* use a per-tensor"):
        lower(g.model(y, (3,), (2,)))


def test_constant_divided_by_data():
    g = GraphBuilder()
    h = g.dense(g.quant("x", 0.1, 8), np.ones((3, 3)), 1.0)
    y = g.node("Div", [g.const(1.0), h])
    with pytest.raises(ModelError, match=r"dividing a constant by the data is not an affine map"):
        lower(g.model(y, (3,), (3,)))


def test_qcdq_nonzero_zero_point():
    g = GraphBuilder()
    q = g.node("QuantizeLinear", ["x", g.const(0.1), g.const(5, np.uint8)])
    d = g.node("DequantizeLinear", [q, g.const(0.1), g.const(5, np.uint8)])
    y = g.dense(d, np.ones((2, 3)), 1.0)
    with pytest.raises(ModelError, match=r"\(QuantizeLinear\): nonzero zero-point 5 is not supported"):
        lower(g.model(y, (3,), (2,)))


def test_post_ops_are_recorded_in_order():
    g = GraphBuilder()
    h = g.dense(g.quant("x", 0.1, 8), np.ones((3, 4)), 1.0)
    h = g.node("Mul", [h, g.const([1.0, -2.0, 3.0])])
    h = g.node("Sub", [g.const(0.5), h])
    h = g.node("Div", [h, g.const(4.0)])
    y = g.node("Relu", [h])
    y = g.quant(y, 0.5, 2, signed=False)
    chain = extract_chain(g.model(y, (4,), (3,)))
    assert [getattr(s, "op", type(s).__name__) for s in chain.steps[2:]] == ["Mul", "RSub", "Div", "ReluStep",
                                                                             "QuantStep"]
