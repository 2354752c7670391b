"""Bad numbers and files from outside: NaN/inf inputs, non-finite or out-of-range model
parameters, option values and folding/board files. Each is refused in one line, exit 2, naming
the file and the field (or node / initializer) at fault."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from qmlp.untrusted import LIMITS

from .attack import assert_refused, cli, compiled, onnx_model


def _set_initializer(model_path, pick, value_fn):
    """Replace the first initializer for which ``pick(name, array)`` holds by ``value_fn(array)``."""
    model = onnx.load(str(model_path))
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if pick(init.name, array):
            init.CopyFrom(numpy_helper.from_array(value_fn(array).astype(array.dtype), init.name))
            onnx.save(model, str(model_path))
            return init.name
    raise AssertionError("no initializer matched")


@pytest.fixture
def model(tmp_path):
    return onnx_model(tmp_path)


# --- .npy inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("values, fragment", [
    (np.full((4, 6), np.nan, np.float32), "24 values are NaN or infinite"),
    (np.array([[0, 1, 2, np.inf, 4, 5]], np.float32), "first at index [0, 3] (inf)"),
    (np.full((1, 6), 1e300), "(or beyond float32)"),
    (np.ones((1, 6), np.complex64), "dtype complex64 is not a real number type"),
    (np.array([["a"] * 6]), "dtype <U1 is not numeric"),
    (np.ones((1, 5), np.float32), "shape (1, 5) does not match the model input"),
    (np.ones((0, 6), np.float32), "shape (0, 6)"),
])
def test_simulate_refuses_bad_inputs(model, tmp_path, values, fragment):
    x = tmp_path / "x.npy"
    np.save(x, values)
    for target in (model, compiled(tmp_path, model)):
        result = cli("simulate", target, "--input", x, "--output", tmp_path / "y.npy")
        assert_refused(result, f"--input {x}", fragment)
        assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("bad, shown", [(np.inf, "inf"), (-np.inf, "-inf"), (np.nan, "nan"), (1e300, "1e+300")])
def test_one_rule_for_non_finite_inputs_at_every_entry(model, tmp_path, bad, shown):
    """NaN, +-inf and numbers beyond float32 are refused wherever floats enter (docs/troubleshooting.md
    "Non-finite inputs"): the CLI (above), the Python API and the HIL vector file; the agent in
    tests/security/test_agent_requests.py. Nothing clips them."""
    import qmlp
    from qmlp.errors import InputError
    from qmlp.hil.suite import load_vectors

    x = np.zeros((3, 6), np.float64)
    x[2, 4] = bad
    fragment = f"1 values are NaN or infinite (or beyond float32), first at index [2, 4] ({shown})"
    out = compiled(tmp_path, model)
    loaded, build = qmlp.load(model), qmlp.Build.open(out)
    for where, call in ((f"model {loaded.name}: x", loaded.predict), (f"model {loaded.name}: x", loaded.trace),
                        (f"model {loaded.name}: x", loaded.simulate), (f"build {out}: x", build.predict)):
        with pytest.raises(InputError) as refused:
            call(x)
        assert str(refused.value) == f"{where}: {fragment}; the input quantizer has no code for them"
    np.savez(tmp_path / "v.npz", x=x)
    with pytest.raises(InputError, match=rf"--vectors {tmp_path / 'v.npz'}: 'x': 1 values are NaN"):
        load_vectors(tmp_path / "v.npz", build.dataflow)


def test_simulate_refuses_pickles_folders_and_folder_outputs(model, tmp_path):
    pickled = tmp_path / "p.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert_refused(cli("simulate", model, "--input", pickled, "--output", tmp_path / "y.npy"), "not a numpy .npy array")
    assert_refused(cli("simulate", model, "--input", tmp_path, "--output", tmp_path / "y.npy"), "is a directory")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 6), np.float32))
    assert_refused(cli("simulate", model, "--input", x, "--output", tmp_path), f"--output {tmp_path}: is a directory")


def test_simulate_of_finite_inputs_still_works(model, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.linspace(-10, 10, 12, dtype=np.float32).reshape(2, 6))
    assert cli("simulate", model, "--input", x, "--output", tmp_path / "y.npy").status == 0
    assert np.all(np.isfinite(np.load(tmp_path / "y.npy")))


# --- ONNX models ---------------------------------------------------------------------------------

def test_nan_weight_names_the_initializer(model, tmp_path):
    name = _set_initializer(model, lambda n, a: a.ndim == 2, lambda a: np.where(np.arange(a.size).reshape(a.shape) == 3,
                                                                                 np.nan, a))
    for command in (("compile", model, "-o", tmp_path / "o"), ("verify", model), ("info", model)):
        assert_refused(cli(*command), f"initializer '{name}' holds 1 NaN or infinite values")
    assert "please report" not in cli("compile", model, "-o", tmp_path / "o").err


def test_negative_batchnorm_variance_names_the_node(tmp_path):
    model = onnx_model(tmp_path)
    m = onnx.load(str(model))
    bn = next(n for n in m.graph.node if n.op_type == "BatchNormalization")
    var = next(i for i in m.graph.initializer if i.name == bn.input[4])
    var.CopyFrom(numpy_helper.from_array(-np.abs(numpy_helper.to_array(var)), var.name))
    onnx.save(m, str(model))
    result = cli("compile", model, "-o", tmp_path / "o")
    assert_refused(result, "(BatchNormalization): variance + epsilon must be positive")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("scale", [0.0, -0.5])
def test_zero_or_negative_quant_scale_names_the_node(tmp_path, scale):
    model = onnx_model(tmp_path, in_scale=scale)
    assert_refused(cli("compile", model, "-o", tmp_path / "o"), "(Quant): scale must be finite and positive")


def test_wide_weights_are_refused_not_overflowed(tmp_path):
    model = onnx_model(tmp_path)
    m = onnx.load(str(model))
    weight_quant = next(n for n in m.graph.node if n.op_type == "Quant" and n.input[0] in
                        {i.name for i in m.graph.initializer if len(i.dims) == 2})
    bits = next(i for i in m.graph.initializer if i.name == weight_quant.input[3])
    bits.CopyFrom(numpy_helper.from_array(np.array(64.0, np.float32), bits.name))
    onnx.save(m, str(model))
    assert_refused(cli("compile", model, "-o", tmp_path / "o"), "weight type INT64 is wider than the 16 bits")


def test_what_compile_writes_load_reads(tmp_path, monkeypatch):
    model = onnx_model(tmp_path)
    m = onnx.load(str(model))
    entry = m.metadata_props.add()
    entry.key, entry.value = "qmlp.notes", "n" * 200_000  # long provenance text is fine
    onnx.save(m, str(model))
    out = tmp_path / "o"
    assert cli("compile", model, "-o", out).status == 0
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 6), np.float32))
    assert cli("simulate", out, "--input", x, "--output", tmp_path / "y.npy").status == 0  # loads OUT/dataflow.json
    # a model beyond the IR's limits is refused by compile, not written for `verify` to refuse
    monkeypatch.setattr(LIMITS, "features", 4)
    assert_refused(cli("compile", model, "-o", tmp_path / "o2"), f"model {model}: ", "one scale per input feature (1..4)")
    assert not (tmp_path / "o2").exists()


def test_model_that_is_a_directory_or_garbage(tmp_path):
    assert_refused(cli("compile", tmp_path, "-o", tmp_path / "o"), f"model {tmp_path}: is a directory")
    assert_refused(cli("info", tmp_path), "no dataflow.json")
    garbage = tmp_path / "g.onnx"
    garbage.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)
    assert_refused(cli("compile", garbage, "-o", tmp_path / "o"), "not a readable ONNX model")


# --- option values -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (("--clock-mhz", "inf"), "--clock-mhz inf: must be a positive, finite frequency"),
    (("--clock-mhz", "nan"), "--clock-mhz nan"),
    (("--clock-mhz", "-5"), "--clock-mhz -5"),
])
def test_compile_option_values(model, tmp_path, args, fragment):
    assert_refused(cli("compile", model, "-o", tmp_path / "o", *args), fragment)


def test_target_fps_inf_is_an_argument_error(model, tmp_path):
    result = cli("compile", model, "-o", tmp_path / "o", "--target-fps", "inf")
    assert result.status == 2 and "target rate 'inf'" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("args, fragment", [
    (("--samples", "100000000000"), "--samples 100000000000: must be between 1 and 1,000,000"),
    (("--samples", "0"), "--samples 0"),
    (("--seed", "-1"), "--seed -1: must be between 0 and 2**63-1"),
])
def test_verify_option_values(model, args, fragment):
    assert_refused(cli("verify", model, *args), fragment)


@pytest.mark.parametrize("args, fragment", [
    (("hil", "OUT", "--seed", "-1"), "--seed -1: must be between 0 and 2**63-1"),
    (("hil", "OUT", "--timeout", "nan"), "--timeout nan: must be between 0.001 and 86,400 seconds"),
    (("hil", "OUT", "--large-batch", "100000000"), "--large-batch 100000000: must be between 1 and 65,536"),
    (("hil", "OUT", "--junit", "TMP"), "is a directory; name the .xml file"),
    (("profile", "OUT", "--runs", "100000000000"), "--runs 100000000000: must be between 1 and 10,000,000"),
    (("profile", "OUT", "--batch", "10000000"), "--batch 10000000: must be between 1 and 65,536"),
    (("profile", "OUT", "--seed", "-1"), "--seed -1"),
])
def test_hil_and_profile_option_values(tmp_path, args, fragment):
    out = compiled(tmp_path)
    args = [str(out) if a == "OUT" else str(tmp_path) if a == "TMP" else a for a in args]
    assert_refused(cli(*args), fragment)


# --- folding and board files ---------------------------------------------------------------------

@pytest.mark.parametrize("text, fragment", [
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ('{"fc0": {"PE": NaN}}', "non-finite number NaN"),
    ('{"fc0": {"PE": 1e400}}', "PE must be an integer"),
    ('{"fc0": {"PE": true}}', "PE must be an integer"),
    ("\"x", "not valid JSON"),
])
def test_folding_file(model, tmp_path, text, fragment):
    folding = tmp_path / "f.json"
    folding.write_text(text)
    assert_refused(cli("compile", model, "-o", tmp_path / "o", "--folding", folding), fragment, str(folding))
    assert_refused(cli("compile", model, "-o", tmp_path / "o", "--folding", tmp_path), "is a directory")


@pytest.mark.parametrize("text, fragment", [
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ("[]", "must hold a JSON object"),
    ('{"schema": NaN}', "non-finite number NaN"),
])
def test_board_file(model, tmp_path, text, fragment):
    board = tmp_path / "myboard.json"
    board.write_text(text)
    assert_refused(cli("compile", model, "-o", tmp_path / "o", "--board", board), fragment, str(board))


def test_json_ir_as_model_is_checked_like_out(tmp_path):
    ir = tmp_path / "d.json"
    ir.write_text(json.dumps([]))
    assert_refused(cli("compile", ir, "-o", tmp_path / "o"), f"{ir}: must be a JSON object")
