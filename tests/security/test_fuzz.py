"""Seeded, bounded fuzzing of the two main inputs: random mutations of a valid dataflow.json
and of a valid ONNX model. Every run must end in exit 0 or in exit 2 with one line; any other
exception surfaces here with its traceback (the CLI runs in-process)."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from .attack import Result, cli, compiled, onnx_model

IR_RUNS = 100
ONNX_RUNS = 80
# Values a hostile file might hold where a number, string, list or object is expected.
STRANGE: tuple[Any, ...] = (None, True, -1, 0, 1, 2**31, 2**63, -(2**63) - 1, 10**30, 0.5, -0.0, 1e308, "x", "",
                            "INT64", "TERNARY", "\n$system(\"x\")", [], [[]], [1, 2], {}, {"pe": 1})


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON tree, sampling long lists so large weight matrices do not dominate."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index in sorted({0, len(node) - 1, len(node) // 2}) if node else []:
            found += _paths(node[index], prefix + (index,))
    return found


def _mutate_json(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(doc)[1:])
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key, action = path[-1], rng.random()
        if action < 0.6:
            parent[key] = copy.deepcopy(rng.choice(STRANGE))
        elif action < 0.75 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.9 and isinstance(parent[key], list) and parent[key]:
            parent[key] = parent[key][: rng.randrange(len(parent[key]))]
        elif isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = parent[key] * rng.choice((-1, 2, 1000, 10**12)) + rng.choice((0, 1))
        else:
            parent[key] = copy.deepcopy(rng.choice(STRANGE))
    return doc


def _assert_clean(result: Result, what: str) -> None:
    """Exit 0, or exit 2 with one line (verify's exit 1 is a verification result, mapped by callers)."""
    assert result.status in (0, 2), (what, result)
    assert "Traceback" not in result.err, (what, result.err)
    if result.status == 2:
        assert result.err.startswith("qmlp: error: ") and result.err.count("\n") == 1, (what, result.err)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return compiled(tmp_path_factory.mktemp("fuzz"))


def test_fuzz_dataflow_json(out, tmp_path):
    rng = random.Random(1234)
    original = json.loads((out / "dataflow.json").read_text())
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).normal(0, 20, (3, 12)).astype(np.float32))
    outcomes = {0: 0, 2: 0}
    for run in range(IR_RUNS):
        target = tmp_path / f"t{run}"
        target.mkdir()
        (target / "dataflow.json").write_text(json.dumps(_mutate_json(original, rng)))
        result = cli("simulate", target, "--input", x, "--output", target / "y.npy")
        _assert_clean(result, f"simulate run {run}")
        if result.status == 0:
            assert np.all(np.isfinite(np.load(target / "y.npy")))
        outcomes[result.status] += 1
        if run % 3 == 0:  # compile is slower: a third of the runs
            compiled_result = cli("compile", target / "dataflow.json", "-o", target / "o")
            _assert_clean(compiled_result, f"compile run {run}")
    assert outcomes[2] > IR_RUNS // 2  # most mutations must be caught, not all shrugged off


def _mutate_onnx(model: onnx.ModelProto, rng: random.Random) -> onnx.ModelProto:
    model = copy.deepcopy(model)
    graph = model.graph
    choice = rng.randrange(6)
    if choice == 0:  # a parameter value
        init = rng.choice(list(graph.initializer))
        values = numpy_helper.to_array(init).copy()
        if values.size and values.dtype.kind == "f":
            flat = values.reshape(-1)
            flat[rng.randrange(flat.size)] = rng.choice((np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, 64.0, 1e-30))
        init.CopyFrom(numpy_helper.from_array(values, init.name))
    elif choice == 1:  # a parameter's shape
        init = rng.choice(list(graph.initializer))
        values = numpy_helper.to_array(init)
        shape = rng.choice(((), (1,), (2, 3), (values.size + 1,)))
        init.CopyFrom(numpy_helper.from_array(np.ones(shape, values.dtype), init.name))
    elif choice == 2:  # an attribute
        node = rng.choice([n for n in graph.node if n.attribute] or list(graph.node))
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.INT:
                attr.i = rng.choice((-1, 0, 2, 10**6))
            elif attr.type == onnx.AttributeProto.FLOAT:
                attr.f = rng.choice((float("nan"), -1.0, 0.0, 1e30))
            elif attr.type == onnx.AttributeProto.STRING:
                attr.s = rng.choice((b"", b"FLOOR", b"\xff\xfe"))
    elif choice == 3:  # an op type
        node = rng.choice(list(graph.node))
        node.op_type = rng.choice(("Relu", "Quant", "MatMul", "Add", "Sigmoid", "Conv", "Identity"))
    elif choice == 4:  # a wire
        node = rng.choice(list(graph.node))
        if node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(
                [o for n in graph.node for o in n.output] + ["x", "missing", ""])
    else:  # a node removed
        del graph.node[rng.randrange(len(graph.node))]
    return model


def test_fuzz_onnx_model(tmp_path):
    rng = random.Random(5678)
    original = onnx.load(str(onnx_model(tmp_path)))
    outcomes = {0: 0, 2: 0}
    for run in range(ONNX_RUNS):
        path = tmp_path / f"m{run}.onnx"
        onnx.save(_mutate_onnx(original, rng), str(path))
        result = cli("compile", path, "-o", tmp_path / f"o{run}")
        _assert_clean(result, f"compile run {run}")
        outcomes[result.status] += 1
        _assert_clean(cli("info", path), f"info run {run}")
        if run % 4 == 0:  # verify also runs the QONNX reference (onnxruntime) on the model
            checked = cli("verify", path, "--samples", 20)
            _assert_clean(checked if checked.status != 1 else Result(0, "", ""), f"verify run {run}")
    assert outcomes[2] > 0
