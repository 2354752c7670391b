"""The explore spec: defaults, expansion into trials and targets, stable keys, and one-line
errors naming the field (through the CLI: exit 2, no traceback)."""

from __future__ import annotations

import numpy as np
import pytest

from qmlp.cli import main
from qmlp.errors import ConfigError
from qmlp.explore.spec import parse_spec, read_spec

MINIMAL = {"dataset": "digits"}


def test_spec_choices_are_the_recipes():
    from qmlp.quantize import ACT_BITS, WEIGHT_RECIPES
    from qmlp.quantize.recipes import RECIPES, act_quant

    assert set(WEIGHT_RECIPES) == set(RECIPES)
    for bits in ACT_BITS:
        act_quant(bits)
    with pytest.raises(ConfigError):
        act_quant(5)


def test_defaults():
    spec = parse_spec(MINIMAL)
    assert spec.weights == ("ternary", "int2") and spec.acts == (2,) and spec.input_bits == (8,)
    assert spec.hidden == ((256, 128, 64, 32),)
    assert [(t.board, t.fps, t.clock_mhz) for t in spec.targets] == [("zcu104", 100000.0, None)]
    assert spec.search.method == "grid" and spec.base.epochs == 20 and spec.verify_samples == 1000
    assert spec.front.synth and spec.front.rtl and spec.best.minimize == "lut"
    assert spec.resources.front_memory_gb == 4.0


def test_grid_random_and_halving_expansion():
    doc = {"dataset": "digits", "space": {"weights": ["bipolar", "ternary", "int2", "int3", "int4"], "acts": [1, 2, 3, 4],
                                          "hidden": [[64, 32], "32,16", [16]]},
           "hardware": {"boards": ["zcu104", "pynq-z2"], "target_fps": [100000, "max"]}}
    spec = parse_spec(doc)
    grid = spec.grid()
    assert len(grid) == 5 * 4 * 3 and len({c.key for c in grid}) == len(grid)
    assert grid[0].weights == "bipolar" and grid[0].acts == 1 and grid[0].hidden == (64, 32)
    assert grid[1].hidden == (32, 16) and grid[-1].weights == "int4" and grid[-1].hidden == (16,)
    assert len(spec.targets) == 4 and spec.targets[1].fps == "max" and spec.targets[2].board == "pynq-z2"

    sampled = parse_spec({**doc, "search": {"method": "random", "samples": 7, "seed": 3}}).trials()
    assert len(sampled) == 7 and set(sampled) <= set(grid)
    assert sampled == parse_spec({**doc, "search": {"method": "random", "samples": 7, "seed": 3}}).trials()
    assert sampled != parse_spec({**doc, "search": {"method": "random", "samples": 7, "seed": 4}}).trials()

    halving = parse_spec({**doc, "train": {"epochs": 18}, "search": {"method": "halving", "eta": 3, "rungs": 3}})
    assert halving.rung_epochs() == (2, 6, 18) and len(halving.trials()) == len(grid)
    assert spec.rung_epochs() == ()


def test_keys_follow_the_configuration_not_the_path(tmp_path):
    a = parse_spec(MINIMAL).grid()[0]
    assert a.key == parse_spec(MINIMAL).grid()[0].key
    assert a.key != parse_spec({**MINIMAL, "train": {"epochs": 21}}).grid()[0].key
    assert a.with_epochs(5).key != a.key and a.with_epochs(a.epochs) == a
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.normal(size=(8, 3)), y_train=np.arange(8) % 2, x_test=rng.normal(size=(4, 3)),
                  y_test=np.arange(4) % 2)
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        np.savez(tmp_path / folder / "d.npz", **arrays)
    one = parse_spec({"dataset": "one/d.npz"}, base_dir=tmp_path).grid()[0]
    two = parse_spec({"dataset": "two/d.npz"}, base_dir=tmp_path).grid()[0]
    assert one.dataset == "npz" and one.data == str(tmp_path / "one" / "d.npz")
    assert one.key == two.key  # same content: same results, wherever the file lives
    np.savez(tmp_path / "two" / "d.npz", **{**arrays, "y_test": np.zeros(4, int)})
    assert parse_spec({"dataset": "two/d.npz"}, base_dir=tmp_path).grid()[0].key != one.key


def test_yaml_and_toml_read_the_same(tmp_path):
    (tmp_path / "s.yaml").write_text("dataset: digits\nspace:\n  acts: [1, 2]\n  hidden: [[32, 16]]\n"
                                     "hardware:\n  target_fps: [max, 1e6]\n")
    (tmp_path / "s.toml").write_text('dataset = "digits"\n[space]\nacts = [1, 2]\nhidden = [[32, 16]]\n'
                                     '[hardware]\ntarget_fps = ["max", 1000000]\n')
    yaml_spec, toml_spec = read_spec(tmp_path / "s.yaml"), read_spec(tmp_path / "s.toml")
    assert yaml_spec.grid() == toml_spec.grid() and yaml_spec.targets == toml_spec.targets


@pytest.mark.parametrize("doc, field, message", [
    ({}, "dataset", "missing; give one of"),
    ({"dataset": "cifar"}, "dataset", "'cifar' is neither one of can, digits"),
    ({"dataset": "missing.npz"}, "dataset", "does not exist"),
    ({"dataset": "digits", "data": "x.csv"}, "data", "not used with dataset digits"),
    ({"dataset": "unsw"}, "data", "dataset unsw needs data"),
    ({"dataset": "digits", "epochs": 3}, "epochs", "unknown field"),
    ({"dataset": "digits", "space": {"weigths": ["int2"]}}, "space.weigths", "unknown field (known here: acts, hidden"),
    ({"dataset": "digits", "space": {"weights": ["int5"]}}, "space.weights[0]", "'int5' is not one of bipolar, ternary"),
    ({"dataset": "digits", "space": {"acts": [2, 5]}}, "space.acts[1]", "5 is not one of 1, 2, 3, 4, 8"),
    ({"dataset": "digits", "space": {"acts": [2.0]}}, "space.acts[0]", "2.0 is not one of"),
    ({"dataset": "digits", "space": {"acts": []}}, "space.acts", "is an empty list"),
    ({"dataset": "digits", "space": {"acts": [2, 2]}}, "space.acts", "lists a value twice"),
    ({"dataset": "digits", "space": {"input_bits": [9]}}, "space.input_bits[0]", "9 is not an integer 1..8"),
    ({"dataset": "digits", "space": {"hidden": [[16, 0]]}}, "space.hidden[0][1]", "0 is not an integer 1..65536"),
    ({"dataset": "digits", "space": {"hidden": [{"a": 1}]}}, "space.hidden[0][0]", "{'a': 1} is not an integer"),
    ({"dataset": "digits", "space": {"hidden": [[16], {"a": 1}]}}, "space.hidden[1]", "is not a list of hidden layer"),
    ({"dataset": "digits", "space": ["int2"]}, "space", "expected a mapping of fields"),
    ({"dataset": "digits", "train": {"epochs": 0}}, "train.epochs", "0 is not an integer >= 1"),
    ({"dataset": "digits", "train": {"lr": -1}}, "train.lr", "-1 is not a number > 0"),
    ({"dataset": "digits", "train": {"batch_size": True}}, "train.batch_size", "True is not an integer >= 2"),
    ({"dataset": "digits", "search": {"method": "bayes"}}, "search.method", "'bayes' is not one of grid, random, halving"),
    ({"dataset": "digits", "search": {"method": "random"}}, "search.samples", "method random needs samples"),
    ({"dataset": "digits", "search": {"eta": 1}}, "search.eta", "1 is not an integer >= 2"),
    ({"dataset": "digits", "hardware": {"boards": ["zcu999"]}}, "hardware.boards[0]", "unknown board 'zcu999'"),
    ({"dataset": "digits", "hardware": {"target_fps": [0]}}, "hardware.target_fps[0]", "0 is not a number > 0"),
    ({"dataset": "digits", "hardware": {"target_fps": ["fast"]}}, "hardware.target_fps[0]", "'fast' is not a number"),
    ({"dataset": "digits", "front": {"synth": "yes"}}, "front.synth", "'yes' is not true or false"),
    ({"dataset": "digits", "best": {"min_accuracy": 99}}, "best.min_accuracy", "99 is a fraction"),
    ({"dataset": "digits", "best": {"minimize": "power"}}, "best.minimize", "'power' is not one of lut, latency, energy"),
    ({"dataset": "digits", "resources": {"trial_cpus": 0}}, "resources.trial_cpus", "0 is not a number > 0"),
])
def test_errors_name_the_field(tmp_path, doc, field, message):
    with pytest.raises(ConfigError) as info:
        parse_spec(doc, source="s.yaml", base_dir=tmp_path)
    text = str(info.value)
    assert text.startswith(f"s.yaml: field {field}: ") and message in text and "\n" not in text


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("dataset: digits\nspace:\n  acts: [5]\n")
    (tmp_path / "broken.yaml").write_text("dataset: [digits\n")
    cases = [([str(tmp_path / "bad.yaml")], "bad.yaml: field space.acts[0]: 5 is not one of 1, 2, 3, 4, 8"),
             ([str(tmp_path / "broken.yaml")], "broken.yaml: not valid YAML ("),
             ([str(tmp_path / "none.yaml")], "none.yaml: no such spec file"),
             ([str(tmp_path / "bad.yaml"), "--report", str(tmp_path)], "--report DIR takes no SPEC or -o"),
             ([], "give a SPEC file"),
             (["--report", str(tmp_path)], "explore.sqlite: no results store")]
    for argv, message in cases:
        assert main(["explore", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("qmlp: error: ") and message in err and err.count("\n") == 1, err
    (tmp_path / "spec.txt").write_text("dataset: digits\n")
    assert main(["explore", str(tmp_path / "spec.txt")]) == 2
    assert "unknown spec format '.txt'" in capsys.readouterr().err
