"""`qmlp trace` end to end: the wasted-codes finding on the console, the files it writes, and a
refusal to overwrite a folder it did not write."""

from __future__ import annotations

import json

import numpy as np

from qmlp.cli import main
from qmlp.datatypes import INT
from qmlp.ir import frozen_array, replace, save
from qmlp.testing import random_dataflow


def _out_dir(tmp_path):
    df = random_dataflow(5, widths=(10, 8, 3), input_dtype=INT(8))
    df = replace(df, input=replace(df.input, scale=frozen_array(np.full(10, 1 / 127, np.float32), np.float32)))
    out = tmp_path / "out"
    out.mkdir()
    save(df, out / "dataflow.json")
    x = np.random.default_rng(0).uniform(0, 1, size=(3000, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return out


def test_trace_flags_a_signed_quantizer_on_non_negative_data(tmp_path, capsys):
    out = _out_dir(tmp_path)
    assert main(["trace", str(out), "--input", str(tmp_path / "x.npy")]) == 0
    text = capsys.readouterr().out
    assert "- input quantizer: 50% of codes unused: your data is non-negative, use an unsigned quantizer" in text
    folder = out / "report" / "trace"
    assert {p.name for p in folder.iterdir()} == {"trace.json", "summary.txt", "input.png", "layer0.png", "layer1.png"}
    data = json.loads((folder / "trace.json").read_text())
    assert data["samples"] == 3000 and data["input"]["codes"]["codes"][0] == -128
    assert main(["trace", str(out), "--input", str(tmp_path / "x.npy"), "--json"]) == 0  # replaces its own folder
    assert json.loads(capsys.readouterr().out)["findings"] == data["findings"]


def test_trace_refuses_a_foreign_folder(tmp_path, capsys):
    out = _out_dir(tmp_path)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert main(["trace", str(out), "--input", str(tmp_path / "x.npy"), "-o", str(foreign)]) == 2
    assert "exists and is not an earlier trace folder" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep"


def test_simulate_dumps_every_layers_integers(tmp_path):
    from qmlp.ir import load
    from qmlp.sim.bitaccurate import simulate

    out = _out_dir(tmp_path)
    assert main(["simulate", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                 "--dump-layers", str(tmp_path / "l.npz")]) == 0
    dump = np.load(tmp_path / "l.npz")
    sim = simulate(load(out / "dataflow.json"), np.load(tmp_path / "x.npy"))
    assert sorted(dump.files) == ["input", "l0_acc", "l0_out", "l1_acc", "l1_out"]
    assert np.array_equal(dump["input"], sim.inputs) and np.array_equal(dump["l1_acc"], sim.accumulators[1])
