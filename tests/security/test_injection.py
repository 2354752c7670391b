"""Names are data, never code. Design and layer names (from a dataflow.json, or an ONNX file
name) holding Verilog, Tcl, C++, shell, XML and Markdown payloads go through compile and verify:
no generated file contains a payload outside an escaped comment or string, and nothing runs
(a `$system("touch MARKER")` would create MARKER when verify builds and runs the RTL)."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from qmlp.ir import save
from qmlp.testing import random_dataflow
from qmlp.untrusted import quote_name

from .attack import cli, onnx_model, text_files

# Each payload tries to end the comment or string a name is written into and run something.
PAYLOADS = (
    '\n$system("touch MARKER");\n// ',  # Verilog: a new line out of a // comment
    '*/ initial $system("touch MARKER"); /*',  # Verilog / C++ block comment
    '\\\nsystem("touch MARKER"); //',  # C++ and Tcl: backslash-newline continues a comment
    '"; exec touch MARKER; #',  # Tcl / Python string
    '}\nexec touch MARKER\n{',  # Tcl braces
    '$(touch MARKER) `touch MARKER`',  # shell, in the deploy README's commands
    '--> <x/> <![CDATA[ ]]> &amp;',  # XML comment and markup (IP-XACT)
    '| x |\n# heading',  # Markdown table / heading (summary.md)
)
# What a payload would need to appear literally to act; none may appear in a non-JSON file.
ACTIVE = ('$system', 'system("touch', '\nexec touch', '$(touch', '`touch', '-->', '<![CDATA[', '"; exec')


def _check_tree(out, payloads):
    files = text_files(out)
    assert len(files) > 30
    for path, text in files.items():
        if path.suffix == ".json":
            json.loads(text)  # names appear only as JSON strings, escaped by json.dumps
            continue
        for payload in payloads:
            assert payload not in text, (path, payload)
        for token in ACTIVE:
            assert token not in text, (path, token)
    return files


@pytest.fixture
def no_marker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield
    found = [str(p) for p in tmp_path.rglob("MARKER")] + ([os.getcwd()] if os.path.exists("MARKER") else [])
    assert found == [], "a name was executed"


def test_design_and_layer_names_in_dataflow_json(tmp_path, no_marker):
    df = random_dataflow(0, name=PAYLOADS[0] + PAYLOADS[3])
    layers = tuple(replace(layer, name=PAYLOADS[1 + i]) for i, layer in enumerate(df.layers))
    ir = tmp_path / "payload.json"
    save(replace(df, layers=layers), ir)
    out = tmp_path / "out"
    assert cli("compile", ir, "-o", out).status == 0
    files = _check_tree(out, PAYLOADS)
    top = files[out / "rtl" / "qmlp_top.v"]
    assert quote_name(df.name) in top and all(quote_name(layer.name) in top for layer in layers)


@pytest.mark.slow
def test_verify_builds_and_runs_the_rtl_of_hostile_names(tmp_path, no_marker):
    df = random_dataflow(1, name=PAYLOADS[0])
    layers = tuple(replace(layer, name=PAYLOADS[2 * i]) for i, layer in enumerate(df.layers))
    ir = tmp_path / "payload.json"
    save(replace(df, layers=layers), ir)
    out = tmp_path / "out"
    assert cli("compile", ir, "-o", out).status == 0
    result = cli("verify", out, "--samples", 20)
    assert result.status == 0 and "verify: PASS" in result.out, result


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if "/" not in p])
def test_onnx_file_name(tmp_path, no_marker, payload):
    model = onnx_model(tmp_path, name=f"m{payload}.onnx")
    out = tmp_path / "out"
    assert cli("compile", model, "-o", out).status == 0
    files = _check_tree(out, [payload])
    assert quote_name(f"m{payload}") in files[out / "rtl" / "qmlp_top.v"]
    readme = files[out / "deploy" / "README.md"]
    assert "scp -r deploy xilinx@<board>:~/m" in readme  # a plain word in the shell commands


def test_error_lines_quote_control_characters(tmp_path, no_marker):
    hostile = tmp_path / "m\n\x1b[2Jqmlp: error: fake.onnx"
    result = cli("compile", hostile, "-o", tmp_path / "o")
    assert result.status == 2 and result.err.count("\n") == 1 and "\x1b" not in result.err
    assert "m\\n\\x1b[2Jqmlp: error: fake.onnx" in result.err


@pytest.mark.slow
def test_profile_plots_a_hostile_design_name(tmp_path, no_marker):
    """Plot titles are text too: matplotlib would parse `$...$` in a raw name as mathtext and fail."""
    ir = tmp_path / "p.json"
    save(random_dataflow(0, name="x$\\frac{$y " + PAYLOADS[0]), ir)
    out = tmp_path / "out"
    assert cli("compile", ir, "-o", out).status == 0
    result = cli("profile", out, "--no-toggle")
    assert result.status == 0, result
    assert (out / "report" / "profile.json").is_file()
