"""verify_compiled: reference == simulator == RTL on a compiled OUT, timing vs the cycle model;
a tampered weight memory is caught; bad OUT directories are clear errors; `qmlp compile` +
`qmlp verify` end to end. The folding matches tests/sim/test_rtl.py so the Verilator build is
shared through the cache."""

from __future__ import annotations

import shutil

import pytest

from qmlp.errors import ConfigError, InputError
from qmlp.hwgen.emit import emit_rtl
from qmlp.ir import save
from qmlp.sim.verify_rtl import verify_compiled

pytestmark = pytest.mark.slow

MODEL = "ternary_w2a2"


@pytest.fixture
def compiled(zoo, tmp_path):
    from qmlp.frontend import import_model
    from qmlp.hwgen.fold import fold

    out = tmp_path / "out"
    (out / "rtl").mkdir(parents=True)
    df = fold(import_model(zoo(MODEL)), target_fps=2e6, clock_mhz=200)
    save(df, out / "dataflow.json")
    emit_rtl(df, out / "rtl")
    shutil.copyfile(zoo(MODEL), out / "model.onnx")
    return out


def test_verify_compiled_passes_bit_exact_with_exact_timing(compiled):
    lines = []
    report = verify_compiled(compiled, samples=400, seed=1, log=lines.append)
    assert report.ok and report.rtl_mismatches == 0
    assert report.reference is not None and report.reference.ok
    assert report.rtl_latency == report.model_latency and report.rtl_ii == report.model_ii
    assert report.registers["INFERENCES"] == 400
    assert [line[:5] for line in lines[:5]] == ["[1/4]", "[2/4]", "[3/4]", "[3/4]", "[4/4]"]
    assert lines[-1].startswith("verify: PASS")


def test_tampered_weight_memory_is_caught(compiled):
    mem = compiled / "rtl" / "l0_weights.mem"
    lines = mem.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if not line.startswith("//"))
    word = int(lines[index], 16)
    lines[index] = f"{word ^ 1:0{len(lines[index])}x}"  # flip one weight bit
    mem.write_text("\n".join(lines) + "\n")
    report = verify_compiled(compiled, samples=200, seed=1, log=None)
    assert not report.ok and report.rtl_mismatches > 0


def test_not_a_compiled_directory(tmp_path):
    with pytest.raises(ConfigError, match="no dataflow.json; pass the output folder of 'qmlp compile'"):
        verify_compiled(tmp_path, samples=10, seed=0, log=None)
    (tmp_path / "dataflow.json").write_text("{}")
    with pytest.raises(InputError, match=r"dataflow.json: not a qmlp dataflow document"):
        verify_compiled(tmp_path, samples=10, seed=0, log=None)
    from qmlp.ir import save
    from qmlp.testing import random_dataflow

    save(random_dataflow(0), tmp_path / "dataflow.json")
    with pytest.raises(ConfigError, match="no qmlp_top.v; re-run 'qmlp compile'"):
        verify_compiled(tmp_path, samples=10, seed=0, log=None)


def test_cli_compile_then_verify(zoo, tmp_path, capsys):
    from qmlp.cli import main

    out = tmp_path / "build"
    assert main(["compile", str(zoo(MODEL)), "--board", "zcu104", "-o", str(out), "--clock-mhz", "200",
                 "--target-fps", "2000000"]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--samples", "300"]) == 0
    printed = capsys.readouterr().out
    assert "RTL == simulator: yes (300/300 vectors bit-exact)" in printed and "verify: PASS" in printed


@pytest.mark.parametrize("name, weights", [("seed_w2a2_negbn", {"INT2"}), ("ternary_a8", {"TERNARY"})])
def test_negative_batchnorm_and_8_bit_activations_compile_at_trained_width_and_verify(name, weights, zoo, tmp_path,
                                                                                      capsys):
    """At 100 k/s: the seed topology with negative BatchNorm scales keeps INT2 weights (not
    INT3); the ternary MLP with 8-bit activations (255 thresholds per channel, binary-search
    units) builds; both: reference == simulator == RTL, bit-exact."""
    from qmlp.cli import main
    from qmlp.ir import load

    out = tmp_path / name
    assert main(["compile", str(zoo(name)), "--board", "zcu104", "-o", str(out), "--target-fps", "100000"]) == 0
    df = load(out / "dataflow.json")
    assert {layer.weight_dtype.name for layer in df.layers} == weights
    assert all(layer.activation.negate.any() for layer in df.layers[:-1])
    capsys.readouterr()
    assert main(["verify", str(out), "--samples", "300"]) == 0
    printed = capsys.readouterr().out
    assert "RTL == simulator: yes (300/300 vectors bit-exact)" in printed and "verify: PASS" in printed
