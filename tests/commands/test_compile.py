"""`qmlp compile`: the output contract, progress lines, atomicity, errors, one --synth run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from qmlp.cli import main
from qmlp.errors import QmlpError
from qmlp.hwgen import pipeline
from qmlp.hwgen.fold import fold_cycles
from qmlp.ir import load, save
from qmlp.testing import random_dataflow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "can_ids_w2a2.onnx"


@pytest.fixture()
def ir_file(tmp_path):
    path = tmp_path / "net.json"
    save(random_dataflow(21, widths=(12, 9, 7, 3)), path)
    return path


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_output_contract_on_random_ir(ir_file, tmp_path, capsys):
    out = tmp_path / "build" / "net"
    assert main(["compile", str(ir_file), "--board", "zcu104", "-o", str(out), "--target-fps", "2e7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    steps = [l for l in lines if l.startswith("[")]
    assert [l.split()[1] for l in steps] == ["board", "import", "fold", "estimate", "write", "rtl", "ip-xact", "board"]
    assert all(re.match(r"^\[\d/8\] [\w -]{12} +\d+\.\d\d s", l) for l in steps), steps
    assert lines[-1].startswith(f"wrote {out}/ in ")
    for rel in ("dataflow.json", "final_hw_config.json", "rtl/qmlp_top.v", "ip/component.xml",
                "report/estimate_layer_resources.json", "report/estimate_network_performance.json",
                "report/summary.md", "report/resources.png"):
        assert (out / rel).is_file(), rel
    df = load(out / "dataflow.json")
    assert df.clock_mhz == 200.0 and df.stream is not None
    assert all(fold_cycles(l, l.folding) <= 10 for l in df.layers)  # 200 MHz / 2e7 = 10 cycles
    assert np.array_equal(df.layers[0].weights, load(ir_file).layers[0].weights)
    config = json.loads((out / "final_hw_config.json").read_text())
    assert {k: (v["PE"], v["SIMD"]) for k, v in config.items() if k != "Defaults"} == \
        {l.name: (l.folding.pe, l.folding.simd) for l in df.layers}
    perf = json.loads((out / "report/estimate_network_performance.json").read_text())
    assert perf["max_cycles"] == max(fold_cycles(l, l.folding) for l in df.layers)
    assert (out / "report/resources.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "model.onnx").exists()  # the input was an IR, not a model
    assert _leftovers(out.parent) == []


def test_folding_file_and_rebuild_replaces_output(ir_file, tmp_path):
    out = tmp_path / "o"
    folding = tmp_path / "f.json"
    folding.write_text(json.dumps({"fc0": {"PE": 3, "SIMD": 4}, "fc1": {"PE": 2, "qmlp_pad_out": 1}}))
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / pipeline.MARKER).write_text("an earlier build")
    (tmp_path / "o" / "stale.txt").write_text("old build")
    assert main(["compile", str(ir_file), "-o", str(out), "--folding", str(folding), "--clock-mhz", "150",
                 "--board", "pynq-z2", "--argmax"]) == 0
    df = load(out / "dataflow.json")
    assert [(l.folding.pe, l.folding.simd, l.folding.pad_out) for l in df.layers] == [(3, 4, 0), (2, 1, 1), (1, 1, 0)]
    assert df.clock_mhz == 150.0 and df.argmax and df.stream.out_elems_per_beat == 1
    assert not (out / "stale.txt").exists()
    assert _leftovers(tmp_path) == []


def test_compile_onnx_model(tmp_path):
    out = tmp_path / "can"
    assert main(["compile", str(EXAMPLE), "-o", str(out)]) == 0
    assert (out / "model.onnx").read_bytes() == EXAMPLE.read_bytes()
    df = load(out / "dataflow.json")
    assert [l.out_features for l in df.layers] == [256, 128, 64, 32, 4]
    # default target: 1000 cycles per inference at the board's 200 MHz
    assert max(fold_cycles(l, l.folding) for l in df.layers) <= 1000
    assert (out / "ip" / "component.xml").is_file() and (out / "rtl" / "qmlp_top.v").is_file()


def test_failing_step_leaves_nothing(ir_file, tmp_path, monkeypatch):
    out = tmp_path / "atomic"

    def broken(state):
        (state.work_dir / "half.txt").write_text("half written")
        raise QmlpError("ip-xact: simulated failure")

    monkeypatch.setattr(pipeline, "step_ip", broken)
    with pytest.raises(QmlpError, match="simulated failure"):
        pipeline.run_build(pipeline.CompileOptions(model=ir_file, out=out), log=lambda line: None)
    assert not out.exists() and _leftovers(tmp_path) == []
    # an existing build survives a failed rebuild untouched
    out.mkdir()
    (out / "keep.txt").write_text("previous build")
    with pytest.raises(QmlpError):
        pipeline.run_build(pipeline.CompileOptions(model=ir_file, out=out), log=lambda line: None)
    assert (out / "keep.txt").read_text() == "previous build" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("extra, message", [
    (["--board", "nosuch"], "qmlp: error: unknown board 'nosuch'; known boards: "),
    (["--target-fps", "5e8"], "qmlp: error: --target-fps 5e+08 exceeds one inference per clock at 200 MHz"),
    (["--clock-mhz", "-3"], "qmlp: error: --clock-mhz -3: must be a positive, finite frequency in MHz"),
    (["--clock-mhz", "inf"], "qmlp: error: --clock-mhz inf: must be a positive, finite frequency in MHz"),
    (["--folding", "FOLD"], "qmlp: error: FOLD: layer fc1: PE=2 does not divide MH=7 (legal PE: 1, 7; "
                            "or set qmlp_pad_out=1 to zero-pad)"),
])
def test_cli_errors_are_one_line_and_leave_nothing(ir_file, tmp_path, capsys, extra, message):
    folding = tmp_path / "bad.json"
    folding.write_text(json.dumps({"fc1": {"PE": 2}}))
    extra = [str(folding) if e == "FOLD" else e for e in extra]
    message = message.replace("FOLD", str(folding))
    out = tmp_path / "err"
    assert main(["compile", str(ir_file), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not out.exists() and _leftovers(tmp_path) == []


def test_missing_model(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == f"qmlp: error: model {tmp_path / 'nope.onnx'} does not exist\n"
    assert not (tmp_path / "x").exists()


def test_target_and_folding_are_exclusive(ir_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["compile", str(ir_file), "--target-fps", "max", "--folding", "f.json"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def _tiny_board(tmp_path: Path, luts: int) -> Path:
    """The ZCU104's board file with only ``luts`` LUTs (a part the design cannot fit)."""
    from qmlp.boards import board as boards_module

    data = json.loads((Path(boards_module.__file__).parent / "data" / "zcu104.json").read_text())
    data["name"], data["resources"]["LUT"] = "tiny", luts
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    return path


def test_fit_check_refuses_before_the_work(ir_file, tmp_path, capsys):
    board = _tiny_board(tmp_path, 100)
    out = tmp_path / "o"
    assert main(["compile", str(ir_file), "--board", str(board), "-o", str(out), "--target-fps", "max"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"qmlp: error: design does not fit xczu7ev-ffvc1156-2-e \(tiny\): the calibrated estimate "
                        r"is [\d,]+ LUT, the part has 100; lower --target-fps, pick a larger board \(qmlp boards\) "
                        r"or pass --allow-overfit to build it anyway", err), err
    assert not out.exists() and _leftovers(tmp_path) == []
    assert main(["compile", str(ir_file), "--board", str(board), "-o", str(out), "--target-fps", "max",
                 "--allow-overfit"]) == 0
    summary = (out / "report" / "summary.md").read_text()
    percent = float(re.search(r"^LUT +\[#+\] +([\d.]+)%  DOES NOT FIT", summary, re.M).group(1))
    assert percent > 100  # the real share, not a bar capped at 100%


def test_synth_run_that_does_not_fit_keeps_its_report(tmp_path, capsys):
    """The one --synth run in CI: a small fully parallel ternary design, on a part too small for it;
    its adder graphs are synthesized out of context and summed, and the reports say so."""
    path = tmp_path / "small.json"
    save(random_dataflow(22, widths=(8, 6, 3)), path)
    out = tmp_path / "s"
    board = _tiny_board(tmp_path, 200)
    assert main(["compile", str(path), "-o", str(out), "--board", str(board), "--synth", "--target-fps", "max",
                 "--allow-overfit"]) == 2
    assert "qmlp: error: design does not fit xczu7ev-ffvc1156-2-e (tiny): needs" in capsys.readouterr().err
    data = json.loads((out / "report" / "synth_resources.json").read_text())
    assert data["part"] == "xczu7ev-ffvc1156-2-e" and data["family"] == "xcup"
    assert data["LUT"] > 0 and data["FF"] > 0 and data["DSP"] == 0 and data["BRAM36"] == 0
    assert data["logic_depth"]["cells"] >= 1 and data["fmax_is_estimate"] is True
    assert data["out_of_context_parts"] == ["l0_graph", "l1_graph"]
    summary = (out / "report" / "summary.md").read_text()
    assert "- out of context: the top with 2 adder graphs (l0_graph, l1_graph) as black boxes" in summary
    assert "## Yosys" in summary and f"{data['fmax_estimate_mhz']:.0f} MHz vs the 200 MHz clock" in summary
    assert "Device use (Yosys)" in summary and "run `qmlp compile --synth`" not in summary


def test_backend_finn_writes_a_finn_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QMLP_FINN_PYTHON", str(tmp_path / "no-finn" / "python"))  # as where `make finn` never ran
    out = tmp_path / "f"
    assert main(["compile", str(EXAMPLE), "-o", str(out), "--backend", "finn", "--target-fps", "1e5"]) == 0
    assert (f"wrote {out}/finn/ (FINN's whole flow, needs Vivado: cd {out}/finn && finn build -s --batch "
            "dataflow_build_config.json model.onnx); no FINN environment here for its estimates: `make finn` builds one"
            in capsys.readouterr().out)
    finn = out / "finn"
    assert (finn / "model.onnx").is_file() and (finn / "dataflow_build_config.json").is_file()
    folding = json.loads((finn / "folding_config.json").read_text())
    ours = json.loads((out / "final_hw_config.json").read_text())
    # FINN names its MVAUs by position; the PE/SIMD are ours where FINN's divisor rule allows them
    # (a padded qmlp folding has no FINN equivalent: the next divisor up, never slower)
    for index, name in enumerate(["fc0", "fc1", "fc2", "fc3", "fc4"]):
        mine, theirs = ours[name], folding[f"MVAU_hls_{index}"]
        if "qmlp_pad_in" not in mine and "qmlp_pad_out" not in mine:
            assert (theirs["PE"], theirs["SIMD"]) == (mine["PE"], mine["SIMD"])
        assert theirs["PE"] >= mine["PE"] and theirs["SIMD"] >= mine["SIMD"]
    assert (out / "rtl" / "qmlp_top.v").is_file()  # the native outputs are still there


def test_backend_finn_needs_the_onnx_model(ir_file, tmp_path, capsys):
    assert main(["compile", str(ir_file), "-o", str(tmp_path / "g"), "--backend", "finn"]) == 2
    assert capsys.readouterr().err.startswith("qmlp: error: --backend finn needs the ONNX model, not the IR ")
    assert not (tmp_path / "g").exists()


def test_default_output_directory(ir_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(ir_file)]) == 0
    assert (tmp_path / "build" / "net" / "dataflow.json").is_file()
    assert _leftovers(tmp_path / "build") == []


def test_a_clock_the_design_cannot_reach_is_a_warning_naming_the_path(ir_file, tmp_path, capsys):
    out = tmp_path / "fast"
    assert main(["compile", str(ir_file), "-o", str(out), "--clock-mhz", "400", "--target-fps", "1e6"]) == 0
    estimate_line = next(l for l in capsys.readouterr().out.splitlines() if "] estimate" in l)
    assert re.search(r"WARNING: estimated fmax \d+ MHz is below the 400 MHz clock: \w+, .+ \(\d+ LUT levels \+ "
                     r"\d+ carry cells\); lower --clock-mhz or --target-fps$", estimate_line), estimate_line
    summary = (out / "report" / "summary.md").read_text()
    assert "**WARNING**: estimated fmax" in summary and "limited by" in summary
