"""A tampered OUT/dataflow.json is untrusted input: every variant ends in one line and exit 2
from simulate, verify and compile (never a traceback, an allocation sized by the file, or
silently wrong numbers)."""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import pytest

from .attack import assert_refused, cli, compiled


def _set(path: str, value: Any) -> Callable[[dict], Any]:
    """Mutation setting ``path`` ('layers.0.weights.0.0') to ``value``."""
    def mutate(doc: dict) -> dict:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return doc
    return mutate


def _drop(path: str) -> Callable[[dict], Any]:
    def mutate(doc: dict) -> dict:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]
        return doc
    return mutate


def _raw(text: str) -> Callable[[dict], str]:
    return lambda doc: text


def _literal_scale(literal: str) -> Callable[[dict], str]:
    """The first input scale replaced by a JSON literal (NaN and 1e400 cannot come from json.dumps)."""
    def mutate(doc: dict) -> str:
        doc["input"]["scale"][0] = "@"
        return json.dumps(doc).replace('"@"', literal, 1)
    return mutate


def _shift_thresholds(doc: dict) -> dict:
    row = doc["layers"][0]["activation"]["thresholds"][0]
    row.reverse()
    row[0] += 1
    return doc


# (class of tampering, mutation, a fragment the one-line error must hold)
VARIANTS = [
    ("not an object", _raw("[]"), "must be a JSON object"),
    ("not JSON", _raw("{\"schema\": "), "not valid JSON"),
    ("binary garbage", _raw("\udcff\x00\x01"), "dataflow.json"),
    ("deep nesting", _raw("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    ("schema", _drop("schema"), "not a qmlp dataflow document"),
    ("schema version", _set("schema_version", 3), "schema version 3 not supported"),
    ("name type", _set("name", 123), "name: must be a string"),
    ("name length", _set("name", "n" * 10_000), "name: must have 1..256 characters"),
    ("NaN scale", _literal_scale("NaN"), "non-finite number NaN"),
    ("infinite scale", _literal_scale("1e400"), "input.scale[0]: inf is not a finite number"),
    ("zero scale", _set("input.scale.0", 0.0), "input.scale[0]: must be nonzero"),
    ("float32 overflow scale", _set("input.scale.0", 1e300), "within float32"),
    ("huge qmax", _set("input.qmax", 2**40), "input.qmax"),
    ("qmax outside dtype", _set("input.qmax", 1000), "clip range"),
    ("unknown dtype", _set("input.dtype", "FLOAT32"), "input.dtype"),
    ("64-bit input dtype", _set("input.dtype", "INT64"), "wider than the 16 bits"),
    ("64-bit weights", _set("layers.0.weight_dtype", "INT64"), "wider than the 16 bits"),
    ("no layers", _set("layers", []), "layers: must be a list of 1..1024 layers"),
    ("layers not a list", _set("layers", {"a": 1}), "layers: must be a list"),
    ("weight outside dtype", _set("layers.0.weights.0.0", 5), "weights not all in TERNARY"),
    ("float weight", _set("layers.0.weights.0.0", 0.5), "layers[0].weights: every entry must be an integer"),
    ("bool weight", _set("layers.0.weights.0.0", True), "layers[0].weights"),
    ("huge weight", _set("layers.0.weights.0.0", 2**70), "layers[0].weights"),
    ("ragged weights", _set("layers.0.weights.0", [1]), "layers[0].weights"),
    ("weights columns", _set("layers.1.weights", [[1]]), "layers[1].weights: shape"),
    ("accumulator too narrow", _set("layers.0.acc_dtype", "INT2"), "accumulator type INT2 cannot hold"),
    ("thresholds order", _shift_thresholds, "thresholds not ascending"),
    ("thresholds shape", _set("layers.0.activation.thresholds", [[1, 2, 3]]), "thresholds: shape"),
    ("threshold beyond int64", _set("layers.0.activation.thresholds.0.0", 2**64), "thresholds"),
    ("PE zero", _set("layers.0.folding.pe", 0), "layers[0].folding.pe: 0 outside"),
    ("PE not dividing", _set("layers.0.folding.pe", 5), "does not divide"),
    ("beat width 1e9", _set("stream.in_elems_per_beat", 10**9), "stream.in_elems_per_beat"),
    ("output beat zero", _set("stream.out_elems_per_beat", 0), "stream.out_elems_per_beat"),
    ("infinite output scale", _set("output.scale.0", float("inf")), "non-finite number Infinity"),
    ("zero output scale", _set("output.scale.0", 0), "output.scale[0]: must be nonzero"),
    ("output bias length", _set("output.bias", [0.0]), "output.bias: must be a list of 3 numbers"),
    ("input shape product", _set("input_shape", [5]), "input_shape"),
    ("shape overflow", _set("input_shape", [65536] * 5), "input_shape"),
    ("clock", _set("clock_mhz", -1), "clock_mhz"),
    ("clock type", _set("clock_mhz", "fast"), "clock_mhz: must be a number"),
    ("argmax type", _set("argmax", "yes"), "argmax: must be true or false"),
    ("metadata type", _set("metadata", {"k": 1}), "metadata.k"),
    ("padded weight count", _set("layers.0.folding", {"pe": 65536, "simd": 65536, "pad_out": 65527,
                                                      "pad_in": 65524}), "more than the 67,108,864"),
]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return compiled(tmp_path_factory.mktemp("tampered"))


@pytest.mark.parametrize("label, mutate, fragment", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_tampered_dataflow_is_refused_in_one_line(out, tmp_path, label, mutate, fragment):
    doc = json.loads((out / "dataflow.json").read_text())
    changed = mutate(doc)
    target = tmp_path / "out"
    target.mkdir()
    (target / "rtl").symlink_to(out / "rtl")
    ir = target / "dataflow.json"
    ir.write_text(changed if isinstance(changed, str) else json.dumps(changed), errors="surrogateescape")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 12), np.float32))
    for args in (("simulate", target, "--input", x, "--output", tmp_path / "y.npy"),
                 ("verify", target, "--samples", 3),
                 ("compile", ir, "-o", tmp_path / "rebuilt")):
        result = cli(*args)
        assert_refused(result, fragment)
        assert str(ir) in result.err or str(target) in result.err
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "rebuilt").exists()


def test_at_least_seventeen_classes():
    assert len({label for label, _, _ in VARIANTS}) >= 17
