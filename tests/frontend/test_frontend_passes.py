"""The passes that let FINN's example models in: constant folding, input preprocessing absorbed
into the host quantizer, back-to-back quantizers merged (each checked on hand-built graphs for
structure and, end to end, bit-exactly against execute_onnx)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from qmlp.commands.verify import verify_model
from qmlp.errors import ModelError
from qmlp.frontend import import_model, lower, to_chain
from qmlp.frontend.constant_fold import fold_constants
from qmlp.frontend.requant import RequantStep
from qmlp.frontend.chain import QuantStep

from .builders import GraphBuilder, save


def _tensor_norm_mlp(pre: list[tuple[str, float]] = ()) -> onnx.ModelProto:
    """x(6) [-> pre ops] -> Quant INT4 -> ternary MatMul -> (x - m) / Pow(v, 0.5) * w + b -> y(3)."""
    rng = np.random.default_rng(1)
    g = GraphBuilder()
    h = "x"
    for op, value in pre:
        h = g.node(op, [h, g.const(value)])
    h = g.quant(h, 0.25, 4)
    h = g.dense(h, rng.uniform(-1, 1, (3, 6)), 0.5)
    root = g.node("Pow", [g.const([2.7]), g.const(0.5)])  # constant: running_var + eps, squared root
    h = g.node("Div", [g.node("Sub", [h, g.const([0.3])]), root])
    h = g.node("Add", [g.node("Mul", [h, g.const([1.5])]), g.const([0.1])])
    return g.model(h, (6,), (3,))


def test_fold_constants_evaluates_like_onnxruntime():
    import onnxruntime as ort  # noqa: F401  (the folding's evaluator)

    model = _tensor_norm_mlp()
    folded = fold_constants(model)
    assert "Pow" not in [n.op_type for n in folded.graph.node] and "Pow" in [n.op_type for n in model.graph.node]
    pow_out = next(n.output[0] for n in model.graph.node if n.op_type == "Pow")
    value = next(numpy_helper.to_array(i) for i in folded.graph.initializer if i.name == pow_out)
    assert value.dtype == np.float32 and value.tolist() == [np.float32(np.power(np.float32(2.7), np.float32(0.5)))]
    assert fold_constants(folded) == folded  # nothing left to fold: an equal copy


def test_fold_constants_leaves_data_and_quantizers_alone():
    model = _tensor_norm_mlp()
    kinds = [n.op_type for n in fold_constants(model).graph.node]
    assert kinds.count("Quant") == 2 and "MatMul" in kinds and "Sub" in kinds and "Div" in kinds


def test_tensor_norm_model_lowers_exactly(tmp_path):
    result = verify_model(save(_tensor_norm_mlp(), tmp_path / "tn.onnx"), samples=300)
    assert result.ok and result.input_mismatches == 0


def test_preprocessing_moves_into_the_host_quantizer(tmp_path):
    model = _tensor_norm_mlp([("Mul", 2.0), ("Sub", 1.0)])
    chain = to_chain(model)
    assert [(op.op, op.const.tolist()) for op in chain.pre] == [("Mul", [2.0]), ("Sub", [1.0])]
    assert isinstance(chain.steps[0], QuantStep)
    df = lower(model)
    assert [op.op for op in df.input.pre] == ["Mul", "Sub"]
    result = verify_model(save(model, tmp_path / "pre.onnx"), samples=300)
    assert result.ok and result.input_mismatches == 0


def test_preprocessing_round_trips_through_dataflow_json(tmp_path):
    from qmlp.ir import load, save as save_ir

    df = lower(_tensor_norm_mlp([("Add", 1.0), ("Div", 2.0)]))
    save_ir(df, tmp_path / "d.json")
    again = load(tmp_path / "d.json")
    assert [(op.op, op.const.tolist()) for op in again.input.pre] == [("Add", [1.0]), ("Div", [2.0])]
    save_ir(lower(_tensor_norm_mlp()), tmp_path / "plain.json")  # no preprocessing: no key, older readers fine
    assert '"pre"' not in (tmp_path / "plain.json").read_text()


def test_requantization_becomes_one_layer(tmp_path):
    rng = np.random.default_rng(2)
    g = GraphBuilder()
    h = g.dense(g.quant("x", 0.1, 4), rng.uniform(-1, 1, (5, 6)), 0.5)
    h = g.quant(g.node("Relu", [h]), 0.3, 3, signed=False)  # QuantReLU
    h = g.quant(h, 0.45, 2, signed=True, narrow=True)  # then QuantIdentity
    y = g.dense(h, rng.uniform(-1, 1, (3, 5)), 0.5)
    model = g.model(y, (6,), (3,))
    chain = to_chain(model)
    assert [type(s).__name__ for s in chain.steps] == ["QuantStep", "MatMulStep", "ReluStep", "RequantStep",
                                                       "QuantStep", "MatMulStep"]
    assert isinstance(chain.steps[3], RequantStep) and chain.steps[3].quant.qmax == 7
    df = lower(model)
    assert len(df.layers) == 2 and df.layers[0].activation.out_dtype.name == "INT2"
    result = verify_model(save(model, tmp_path / "rq.onnx"), samples=400)
    # acc * 0.05 / 0.3 = acc / 6 sits exactly on .5 for odd multiples of 3: float32 (the
    # reference) and float64 (the thresholds) may round that inner tie apart; nothing else differs
    assert result.ok and result.layers[0].mismatches == result.layers[0].ties == 4


def test_float_op_after_the_last_quantizer_is_refused():
    rng = np.random.default_rng(3)
    g = GraphBuilder()
    h = g.dense(g.quant("x", 0.1, 4), rng.uniform(-1, 1, (5, 6)), 0.5)
    h = g.quant(g.node("Relu", [h]), 0.3, 3, signed=False)
    y = g.node("Mul", [h, g.const([2.0])])
    with pytest.raises(ModelError, match=r"node 'mul_\d+' \(Affine\) after activation quantizer 'quant_\d+' ends the "
                                         r"model: a float op between a quantizer and the next layer cannot be lowered"):
        lower(g.model(y, (6,), (5,)))


def test_constant_expression_onnxruntime_cannot_run_is_one_error():
    g = GraphBuilder()
    bad = g.node("Pow", [g.const([2.0]), g.const([0.5])])
    g.nodes[-1].op_type = "Sqrt"  # Sqrt with two inputs: onnxruntime rejects the node
    h = g.dense(g.quant("x", 0.1, 4), np.ones((3, 6)), 0.5)
    y = g.node("Add", [h, bad])
    with pytest.raises(ModelError, match=r"node 'pow_\d+' \(Sqrt\): cannot evaluate this constant expression \(.*\); "
                                         r"simplify the model before export"):
        fold_constants(g.model(y, (6,), (3,)))
