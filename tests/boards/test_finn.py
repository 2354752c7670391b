"""--backend finn: the build directory matches finn-plus 1.6.1's DataflowBuildConfig (lists and
their source in qmlp/boards/finn.py); where .venv-finn exists (`make finn`), FINN really runs:
its config loader accepts the directory, its Vivado-free steps produce estimate reports, and its
hardware graph agrees with qmlp's simulator."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from .helpers import folded
from qmlp.boards import get_board, known_boards
from qmlp.boards.finn import (FINN_COMMAND, FINN_CONFIG_FIELDS, FINN_OUTPUT_TYPES, FINN_REQUIRED_FIELDS,
                              FINN_SHELL_FLOWS, FINN_VERIFY_STEPS, FINN_ZYNQ_BOARDS, finn_folding, finn_python,
                              write_finn_build)
from qmlp.errors import ConfigError, ModelError

MODEL = Path(__file__).parents[2] / "examples" / "can_ids_w2a2.onnx"  # 40-256-128-64-32-4
DIMS = [(256, 40), (128, 256), (64, 128), (32, 64), (4, 32)]


@pytest.mark.parametrize("name", ["zcu104", "kv260", "ultra96v2", "pynq-z2"])
def test_finn_board_names_and_parts_agree_with_finn(name):
    board = get_board(name)
    assert FINN_ZYNQ_BOARDS[board.finn_board] == board.part


FINN_PYTHON = finn_python()
needs_finn = pytest.mark.skipif(FINN_PYTHON is None, reason="no FINN environment: `make finn` builds .venv-finn")


def test_build_directory_follows_finn_simple_mode(tmp_path):
    messages = []
    build = write_finn_build(MODEL, "pynq-z2", tmp_path / "finn", clock_mhz=100, target_fps=50000,
                             run=False, log=messages.append)
    d = build.directory
    assert sorted(p.name for p in d.iterdir()) == ["dataflow_build_config.json", "expected_output.npy",
                                                     "input.npy", "model.onnx", "run_finn.sh"]
    config = json.loads((d / "dataflow_build_config.json").read_text())
    assert set(config) <= FINN_CONFIG_FIELDS and set(FINN_REQUIRED_FIELDS) <= set(config)
    assert config["synth_clk_period_ns"] == 10.0 and config["target_fps"] == 50000
    assert config["board"] == "Pynq-Z2" and config["shell_flow_type"] in FINN_SHELL_FLOWS
    assert set(config["generate_outputs"]) <= FINN_OUTPUT_TYPES and "bitfile" in config["generate_outputs"]
    assert set(config["verify_steps"]) <= FINN_VERIFY_STEPS
    assert "folding_config_file" not in config
    # FINN resolves these paths relative to the build directory.
    for key in ("verify_input_npy", "verify_expected_output_npy"):
        assert (d / config[key]).is_file()
    assert not build.ran and build.command == FINN_COMMAND == "finn build -s --batch dataflow_build_config.json model.onnx"
    # run_finn.sh runs FINN's entry point from its own folder, wherever that was moved to.
    moved = d.rename(tmp_path / "moved")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "finn").write_text('#!/bin/sh\necho "$(pwd)" "$@"\n')
    (bin_dir / "finn").chmod(0o755)
    ran = subprocess.run(["sh", str(moved / "run_finn.sh")], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert ran.stdout.split() == [str(moved.resolve()), *FINN_COMMAND.split()[1:]]


def test_without_finn_it_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("QMLP_FINN_PYTHON", str(tmp_path / "missing" / "python"))
    messages = []
    build = write_finn_build(MODEL, "zcu104", tmp_path / "finn", clock_mhz=200, target_fps=1000, log=messages.append)
    assert not build.ran and messages == [
        "finn: no FINN environment here; `make finn` in the qmlp checkout builds .venv-finn (finn-plus 1.6.1)"]


def test_cleaned_model_computes_what_the_original_does(tmp_path):
    """model.onnx, run by qonnx, gives the outputs examples/*.npz stores for the original model."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    build = write_finn_build(MODEL, "zcu104", tmp_path / "finn", clock_mhz=200, target_fps=1e6, run=False,
                             log=lambda m: None)
    cleaned = ModelWrapper(str(build.directory / "model.onnx"))
    name_in, name_out = cleaned.graph.input[0].name, cleaned.graph.output[0].name
    vectors = np.load(MODEL.with_suffix(".npz"))
    for x, expected in zip(vectors["x"][:5], vectors["expected"][:5]):
        assert np.array_equal(execute_onnx(cleaned, {name_in: x[None]})[name_out][0], expected)
    x = np.load(build.directory / "input.npy")
    assert x.shape == (1, 40)
    assert np.array_equal(execute_onnx(cleaned, {name_in: x})[name_out], np.load(build.directory / "expected_output.npy"))


def test_folding_from_qmlp_names_is_mapped_and_rounded_up(tmp_path):
    messages = []
    qmlp_config = {"Defaults": {}, "fc0": {"PE": 16, "SIMD": 40}, "fc1": {"PE": 3, "SIMD": 8, "qmlp_pad_out": 1},
                   "fc2": {"PE": 1, "SIMD": 1}, "fc3": {"PE": 1, "SIMD": 1}, "fc4": {"PE": 4, "SIMD": 32}}
    (tmp_path / "final_hw_config.json").write_text(json.dumps(qmlp_config))
    build = write_finn_build(MODEL, "kv260", tmp_path / "finn", clock_mhz=250,
                             folding=tmp_path / "final_hw_config.json", run=False, log=messages.append)
    config = json.loads((build.directory / "dataflow_build_config.json").read_text())
    assert config["folding_config_file"] == "folding_config.json" and "target_fps" not in config
    assert config["board"] == "KV260_SOM" and config["synth_clk_period_ns"] == 4.0
    folding = json.loads((build.directory / "folding_config.json").read_text())
    assert folding == {"Defaults": {}, "MVAU_hls_0": {"PE": 16, "SIMD": 40}, "MVAU_hls_1": {"PE": 4, "SIMD": 8},
                       "MVAU_hls_2": {"PE": 1, "SIMD": 1}, "MVAU_hls_3": {"PE": 1, "SIMD": 1},
                       "MVAU_hls_4": {"PE": 4, "SIMD": 32}}
    # never slower than asked: the next divisor up, not down
    assert "finn: fc1 PE=3 does not divide 128 (FINN folds by exact divisors); using 4, the next divisor up" in messages


def test_folding_from_a_dataflow_and_finn_names_kept():
    df = folded(simd=3, pe=3, widths=(12, 10, 6))
    assert finn_folding(df, [(10, 12), (6, 10)], log=lambda m: None) == {
        "Defaults": {}, "MVAU_hls_0": {"PE": 1, "SIMD": 3}, "MVAU_hls_1": {"PE": 3, "SIMD": 1}}
    finn_named = {"Defaults": {"ram_style": ["block", ["all"]]}, "MVAU_hls_0": {"PE": 2, "SIMD": 4, "ram_style": "distributed"}}
    assert finn_folding(finn_named, DIMS) == finn_named


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "give exactly one of target_fps or folding"),
    (dict(target_fps=10, folding={"Defaults": {}}), "give exactly one of target_fps or folding"),
    (dict(target_fps=-1), "target_fps -1: must be positive"),
    (dict(folding={f"fc{i}": {"PE": 1, "SIMD": 1} for i in range(6)}), "more layers than the model's 5 MatMul/Gemm"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        write_finn_build(MODEL, "zcu104", tmp_path / "finn", clock_mhz=200, log=lambda m: None, **kwargs)
    assert not (tmp_path / "finn").exists() and not list(tmp_path.iterdir())


def test_unreadable_model_and_board_without_finn_name(tmp_path, monkeypatch):
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match=r"bad.onnx: qonnx cannot load and clean this model"):
        write_finn_build(tmp_path / "bad.onnx", "zcu104", tmp_path / "finn", clock_mhz=200, target_fps=1)
    data = json.loads((Path(known_boards()["zcu104"])).read_text())
    data.update(name="custom", finn_board=None)
    (tmp_path / "custom.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"board custom: no 'finn_board' in .*custom.json; FINN needs one of"):
        write_finn_build(MODEL, str(tmp_path / "custom.json"), tmp_path / "finn", clock_mhz=200, target_fps=1,
                         log=lambda m: None)


@needs_finn
def test_finn_accepts_the_directory_and_estimates_it(tmp_path):
    """finn-plus's own config loader reads the directory as written (no unknown keys, relative paths
    resolve from it), and FINN's Vivado-free steps run through step_hw_codegen."""
    build = write_finn_build(MODEL, "zcu104", tmp_path / "finn", clock_mhz=200, target_fps=100000, log=lambda m: None)
    assert build.ran and build.status == 0 and build.error is None
    # the printed whole-flow command names the FINN environment's own `finn` (runnable as printed)
    assert Path(build.command.split()[0]).is_file() and build.command.endswith(" build -s --batch "
                                                                              "dataflow_build_config.json model.onnx")
    check = ("import finn.xsi; finn.xsi.SimEngine = None\n"
             "from pathlib import Path\nfrom finn.builder.build_dataflow_config import DataflowBuildConfig\n"
             "c = DataflowBuildConfig.construct_from(Path('dataflow_build_config.json'))\n"
             "assert Path(c.verify_input_npy).is_file() and Path(c.verify_expected_output_npy).is_file()\n"
             "print(c.target_fps, c.board)\n")
    done = subprocess.run([FINN_PYTHON, "-P", "-c", check], cwd=build.directory, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["100000", "ZCU104"]
    perf = json.loads((build.directory / "output" / "report" / "estimate_network_performance.json").read_text())
    assert perf["estimated_throughput_fps"] >= 100000  # FINN's folding meets the target
    run = json.loads((build.directory / "output" / "qmlp_finn_run.json").read_text())
    assert [s["name"] for s in run["steps"]][-2:] == ["step_generate_estimate_reports", "step_hw_codegen"]


@needs_finn
def test_finn_hardware_graph_agrees_with_qmlp(tmp_path):
    """FINN's MVAU/Thresholding graph in Python mode == qmlp's simulator, integer for integer, except
    where an input sits exactly on a rounding tie (FINN's INT8 input thresholds round it up)."""
    from qmlp.boards.finn_check import finn_crosscheck
    from qmlp.frontend import import_model

    df = import_model(MODEL)
    build = write_finn_build(MODEL, "zcu104", tmp_path / "finn", clock_mhz=200, target_fps=100000, log=lambda m: None)
    agreement = finn_crosscheck(MODEL, df, build.directory, FINN_PYTHON, samples=40)
    assert agreement.agrees_except_ties, agreement.one_line()
    assert 0 < agreement.input_tie_samples < 40 and agreement.layer_mismatch_samples == (0,) * 5


@needs_finn
def test_compile_backend_finn_puts_finn_beside_qmlp(tmp_path):
    """`qmlp compile --backend finn`: FINN's estimates in report/finn/, side by side in summary.md,
    the cross-check recorded; the printed command runs from where it says."""
    from qmlp.cli import main

    out = tmp_path / "out"
    assert main(["compile", str(MODEL), "-o", str(out), "--backend", "finn", "--target-fps", "1e5"]) == 0
    names = {p.name for p in (out / "report" / "finn").iterdir()}
    assert {"estimate_layer_resources.json", "estimate_network_performance.json", "crosscheck.json"} <= names
    summary = (out / "report" / "summary.md").read_text()
    assert "## FINN side by side (finn-plus 1.6.1 estimates" in summary and "| fc0 | " in summary
    assert "Thresholding_rtl_0" in summary  # the input quantizer FINN puts in the fabric
    check = json.loads((out / "report" / "finn" / "crosscheck.json").read_text())
    assert check["agrees_except_ties"] and check["layer_mismatch_samples"] == [0] * 5
    assert (out / "finn" / "run_finn.sh").is_file() and not list(tmp_path.glob(".*tmp*"))


@needs_finn
def test_digits_uint8_input_shows_finns_rounding_defect(tmp_path):
    """examples/digits_ternary (UINT8 input, scale 1/255) on its shipped test vectors: FINN's input
    thresholds map 0.5 to 128 where QONNX gives 127; its layers agree given the same integers."""
    from qmlp.boards.finn_check import finn_crosscheck
    from qmlp.frontend import import_model

    model = MODEL.with_name("digits_ternary.onnx")
    x = np.load(model.with_suffix(".npz"))["x"][:200]
    build = write_finn_build(model, "zcu104", tmp_path / "finn", clock_mhz=200, target_fps=100000, log=lambda m: None)
    agreement = finn_crosscheck(model, import_model(model), build.directory, FINN_PYTHON, x=x)
    assert agreement.agrees_except_ties, agreement.one_line()
    assert agreement.input_mismatch_samples == agreement.input_tie_samples > 0
    assert agreement.layer_mismatch_samples == (0, 0, 0)


@needs_finn
@pytest.mark.parametrize("name", ["tfc_w1a1", "tfc_w2a2", "unsw_mlp_w2a2"])
def test_finn_examples_agree_with_finn(finn_zoo, tmp_path, name):
    """FINN's own example MLPs: FINN's hardware graph == qmlp's layers, integer for integer."""
    from qmlp.boards.finn_check import finn_crosscheck
    from qmlp.frontend import import_model

    model = finn_zoo(name)
    df = import_model(model)
    build = write_finn_build(model, "zcu104", tmp_path / "finn", clock_mhz=200, target_fps=100000, log=lambda m: None)
    assert build.error is None
    agreement = finn_crosscheck(model, df, build.directory, FINN_PYTHON, samples=60)
    assert agreement.agrees_except_ties, agreement.one_line()
    assert agreement.layer_mismatch_samples == (0,) * len(df.layers)


@needs_finn
def test_standalone_thresholds_and_finns_bipolar_refusal(zoo, tmp_path):
    """A per-channel scale FINN cannot absorb leaves its thresholds standalone: still equal to
    qmlp's layer. A bipolar activation of scale != 1 FINN refuses (a documented FINN limit), qmlp
    lowers it exactly."""
    from qmlp.boards.finn_check import finn_crosscheck
    from qmlp.commands.verify import verify_model
    from qmlp.frontend import import_model

    model = zoo("int2_uint4_bias_dynamo")
    build = write_finn_build(model, "zcu104", tmp_path / "a", clock_mhz=200, target_fps=100000, log=lambda m: None)
    agreement = finn_crosscheck(model, import_model(model), build.directory, FINN_PYTHON, samples=40)
    assert "Thresholding" in agreement.finn_ops[2:] and agreement.agrees_except_ties, agreement.one_line()
    model = zoo("bipolar_all")
    build = write_finn_build(model, "zcu104", tmp_path / "b", clock_mhz=200, target_fps=100000, log=lambda m: None)
    assert build.error.startswith("step_qonnx_to_finn: ValueError: FINN only supports Bipolar identity activations")
    assert verify_model(model, samples=200).ok
