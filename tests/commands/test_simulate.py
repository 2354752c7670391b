"""`qmlp simulate`, including a Brevitas model built here with a topology and quantizer set the
zoo does not have (the "model nobody on the team has seen" check)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qmlp.cli import main
from qmlp.frontend import import_model
from qmlp.ir import save
from qmlp.sim.reference import run_reference, sample_inputs

UNSEEN = textwrap.dedent('''
    import sys, torch, brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Uint8ActPerTensorFloat
    torch.manual_seed(11)

    class Unseen(torch.nn.Module):
        """(batch, 5, 8) input flattened; 6-bit signed input; per-channel 3-bit weights with bias;
        BN then 4-bit ReLU; a bias-free 2-bit layer; 3-bit signed HardTanh; a last layer whose
        output is scaled and shifted by constants."""
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=6, return_quant_tensor=True)
            self.fc1 = qnn.QuantLinear(40, 23, bias=True, weight_quant=Int8WeightPerChannelFloat, weight_bit_width=3)
            self.bn1 = torch.nn.BatchNorm1d(23)
            self.act1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
            self.fc2 = qnn.QuantLinear(23, 17, bias=False, weight_bit_width=2)
            self.act2 = qnn.QuantHardTanh(act_quant=Int8ActPerTensorFloat, bit_width=3, max_val=1.0, min_val=-1.0,
                                          return_quant_tensor=True)
            self.fc3 = qnn.QuantLinear(17, 3, bias=True, weight_bit_width=4)

        def forward(self, x):
            x = self.inp(torch.flatten(x, 1))
            x = self.act1(self.bn1(self.fc1(x)))
            x = self.act2(self.fc2(x))
            return self.fc3(x) * 0.5 + 2.0

    net = Unseen()
    with torch.no_grad():
        for p in (net.fc1.weight, net.fc2.weight, net.fc3.weight):
            p.uniform_(-1, 1)
        net.train()
        for _ in range(5):
            net(torch.randn(256, 5, 8) * 3)
        net.bn1.weight.copy_(torch.linspace(-1.5, 1.5, 23))
    export_qonnx(net.eval(), torch.randn(1, 5, 8), export_path=sys.argv[1], dynamo=False)
''')


@pytest.fixture(scope="module")
def unseen_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("unseen")
    path = directory / "unseen.onnx"
    script = directory / "build_unseen.py"
    script.write_text(UNSEEN)
    done = subprocess.run([sys.executable, str(script), str(path)], cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return path


def test_unseen_brevitas_model_through_qmlp_simulate(unseen_model, tmp_path, capsys):
    df = import_model(unseen_model)
    assert df.input_shape == (5, 8) and len(df.layers) == 3
    x = sample_inputs(df, 1500, seed=5)
    np.save(tmp_path / "x.npy", x)
    assert main(["simulate", str(unseen_model), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    assert "1500 samples through unseen (ir)" in capsys.readouterr().out
    y = np.load(tmp_path / "y.npy")
    ref = run_reference(unseen_model, x)
    assert y.shape == ref.outputs.shape == (1500, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref.outputs, rtol=1e-5, atol=1e-5 * float(np.abs(ref.outputs).max()))


def test_simulate_compiled_dir_ir_level(zoo, tmp_path):
    df = import_model(zoo("bipolar_w_signed_a2"))
    out = tmp_path / "out"
    out.mkdir()
    save(df, out / "dataflow.json")
    x = sample_inputs(df, 50, seed=0)
    np.save(tmp_path / "x.npy", x)
    assert main(["simulate", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    ref = run_reference(zoo("bipolar_w_signed_a2"), x).outputs
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


def test_rtl_level_needs_compiled_directory(zoo, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 37), np.float32))
    code = main(["simulate", str(zoo("ternary_w2a2")), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"), "--level", "rtl"])
    assert code == 2
    assert "qmlp: error: --level rtl needs a compiled OUT directory" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()


def test_wrong_input_shape_is_one_line_error(zoo, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 36), np.float32))
    code = main(["simulate", str(zoo("ternary_w2a2")), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "x.npy: shape (2, 36) does not match the model input (batch, 37); add the batch axis" in err
    assert not (tmp_path / "y.npy").exists()


def test_bad_model_exit_2_no_traceback(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a model\xff\xff")
    np.save(tmp_path / "x.npy", np.zeros((1, 3), np.float32))
    done = subprocess.run([sys.executable, "-m", "qmlp", "simulate", str(bad), "--input", str(tmp_path / "x.npy"),
                           "--output", str(tmp_path / "y.npy")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("qmlp: error: ") and "not a readable ONNX model" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "y.npy").exists()


@pytest.mark.slow
def test_rtl_level_equals_ir_level_on_a_compiled_model(zoo, tmp_path, capsys):
    """`qmlp compile` then `qmlp simulate OUT --level rtl` (Verilator): same floats as --level ir."""
    out = tmp_path / "out"
    assert main(["compile", str(zoo("bipolar_w_signed_a2")), "--board", "zcu104", "-o", str(out)]) == 0
    df = import_model(zoo("bipolar_w_signed_a2"))
    np.save(tmp_path / "x.npy", sample_inputs(df, 64, seed=6))
    for level in ("rtl", "ir"):
        assert main(["simulate", str(out), "--input", str(tmp_path / "x.npy"), "--output",
                     str(tmp_path / f"y_{level}.npy"), "--level", level]) == 0
    assert "64 samples through bipolar_w_signed_a2 (rtl)" in capsys.readouterr().out
    assert np.array_equal(np.load(tmp_path / "y_rtl.npy"), np.load(tmp_path / "y_ir.npy"))
