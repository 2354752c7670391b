"""FINN's own example MLPs (tests/finn_zoo.py) compile in qmlp: bnn_pynq TFC/SFC/LFC at w1a1,
w1a2, w2a2 (TensorNorm's constant Pow folded, the 2x - 1 preprocessing absorbed into the host
quantizer) and FINN's UNSW-NB15 MLP agree with execute_onnx; TFC w1a1, w2a2 and UNSW also
through the RTL, bit-exactly. User patterns: back-to-back quantizers and BatchNorm after an
activation lower exactly, or are refused with a one-line fix."""

from __future__ import annotations

import pytest

from qmlp.commands.verify import verify_model
from qmlp.errors import ModelError
from qmlp.frontend import import_model

FC = [f"{net}_{bits}" for net in ("tfc", "sfc", "lfc") for bits in ("w1a1", "w1a2", "w2a2")]


@pytest.mark.parametrize("name", FC + ["unsw_mlp_w2a2", "requant_relu_identity", "bn_after_act_quant"])
def test_finn_examples_agree_with_execute_onnx(finn_zoo, name):
    result = verify_model(finn_zoo(name), samples=200)
    assert result.ok and result.input_mismatches == 0
    assert all(layer.mismatches == 0 for layer in result.layers)


def test_tfc_preprocessing_is_on_the_host_and_the_input_is_bipolar(finn_zoo):
    df = import_model(finn_zoo("tfc_w1a1"))
    assert [(op.op, op.const.tolist()) for op in df.input.pre] == [("Mul", [2.0]), ("Sub", [1.0])]
    assert df.input.dtype.name == "BIPOLAR" and df.input.features == 784
    assert [layer.weights.shape for layer in df.layers] == [(64, 784), (64, 64), (64, 64), (10, 64)]


def test_unsw_mlp_shape(finn_zoo):
    df = import_model(finn_zoo("unsw_mlp_w2a2"))
    assert [op.op for op in df.input.pre] == ["Add", "Div"]
    assert [layer.weights.shape for layer in df.layers] == [(64, 600), (64, 64), (64, 64), (1, 64)]
    assert df.layers[-1].activation is not None and df.layers[-1].activation.out_dtype.name == "BIPOLAR"


def test_batchnorm_between_activation_and_layer_is_refused(finn_zoo):
    with pytest.raises(ModelError, match=r"node '/3/BatchNormalization' \(BatchNorm\) after activation quantizer "
                                         r"'.*' feeds node '/4/MatMul' \(MatMul\): a float op between a quantizer "
                                         r"and the next layer cannot be lowered to integers exactly; move it before "
                                         r"the activation or add a QuantIdentity after it"):
        import_model(finn_zoo("bn_after_act_matmul"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tfc_w1a1", "tfc_w2a2", "unsw_mlp_w2a2"])
def test_finn_examples_through_the_rtl(finn_zoo, tmp_path, name):
    from qmlp.hwgen.pipeline import CompileOptions, run_build
    from qmlp.sim.verify_rtl import verify_compiled

    out = tmp_path / name
    run_build(CompileOptions(model=finn_zoo(name), board="zcu104", out=out), log=lambda line: None)
    report = verify_compiled(out, samples=300, seed=2, log=None)
    assert report.ok and report.rtl_mismatches == 0 and report.reference.ok
