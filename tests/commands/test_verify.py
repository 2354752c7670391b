import qmlp.commands.verify as verify_command
from qmlp.cli import main
from qmlp.sim.reference import Agreement, LayerAgreement


def test_verify_zoo_model_passes_and_prints_per_layer_table(zoo, capsys):
    assert main(["verify", str(zoo("int2_uint4_bias_dynamo")), "--samples", "1200", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "1200 samples (seed 3)" in out and out.rstrip().endswith("PASS")
    assert "fc0    44400   0" in out and "fc1    13200   0" in out  # values compared = samples * channels
    assert "max |reference - simulator|" in out


def test_verify_exit_1_on_disagreement(zoo, capsys, monkeypatch):
    bad = Agreement(samples=10, input_mismatches=0, output_ok=True, max_abs_diff=0.0,
                    layers=(LayerAgreement("fc0", 100, 3, 0, 1, 2),))
    monkeypatch.setattr(verify_command, "verify_model", lambda path, samples, seed: bad)
    assert main(["verify", str(zoo("ternary_w2a2"))]) == 1
    out = capsys.readouterr().out
    assert "fc0    100     3           3.000%  1     0           2" in out
    assert "FAIL: the simulator disagrees with the QONNX reference" in out


def test_verify_rejects_zero_samples(zoo, capsys):
    assert main(["verify", str(zoo("ternary_w2a2")), "--samples", "0"]) == 2
    assert "qmlp: error: --samples 0: must be between 1 and 1,000,000" in capsys.readouterr().err


def test_verify_directory_delegates_to_rtl_check(tmp_path, monkeypatch):
    import types, sys
    calls = []
    fake = types.ModuleType("qmlp.sim.verify_rtl")
    fake.verify_compiled = lambda out_dir, samples, seed: calls.append((out_dir, samples, seed)) or 0
    monkeypatch.setitem(sys.modules, "qmlp.sim.verify_rtl", fake)
    assert main(["verify", str(tmp_path), "--samples", "7", "--seed", "2"]) == 0
    assert calls == [(tmp_path, 7, 2)]
