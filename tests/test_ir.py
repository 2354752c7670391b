from dataclasses import replace

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.errors import InputError
from qmlp.frontend import import_model
from qmlp.ir import (SCHEMA_VERSION, Folding, IRError, StreamFormat, accumulator_range, frozen_array,
                     from_json, load, save, to_json, verify)
from qmlp.testing import random_dataflow


def assert_same(a, b):
    assert to_json(a) == to_json(b)
    assert all(np.array_equal(x.weights, y.weights) and x.weights.dtype == y.weights.dtype
               for x, y in zip(a.layers, b.layers))
    assert np.array_equal(a.input.scale, b.input.scale) and a.input.scale.dtype == b.input.scale.dtype
    assert np.array_equal(a.output.scale, b.output.scale) and np.array_equal(a.output.bias, b.output.bias)


@pytest.mark.parametrize("seed", range(4))
def test_json_round_trip_exact(tmp_path, seed):
    df = random_dataflow(seed, weight_dtypes=(TERNARY, INT(3), BIPOLAR), act_dtype=UINT(2))
    storage = ("auto", "lut", "bram")[seed % 3]
    df = replace(df, layers=(replace(df.layers[0], folding=Folding(pe=3, simd=4, weight_storage=storage)),
                             *df.layers[1:]),
                 stream=StreamFormat(4, 1), clock_mhz=200.0, metadata={"k": "v"})
    save(df, tmp_path / "df.json")
    back = load(tmp_path / "df.json")
    assert_same(df, back)
    assert back.layers[0].folding == Folding(pe=3, simd=4, weight_storage=storage)
    assert back.stream == StreamFormat(4, 1)
    verify(back)


def test_weight_storage_field_is_checked():
    data = to_json(replace(random_dataflow(0), layers=(replace(random_dataflow(0).layers[0], folding=Folding()),
                                                       *random_dataflow(0).layers[1:])))
    data["layers"][0]["folding"]["weight_storage"] = "uram"
    with pytest.raises(InputError, match=r"^dataflow: layers\[0\]\.folding\.weight_storage: 'uram' is not one of "
                                         r"auto, lut, bram$"):
        from_json(data, "dataflow")


def test_round_trip_of_lowered_zoo_model_keeps_float_bits(zoo, tmp_path):
    df = import_model(zoo("perchannel_int4_hardtanh3"))
    save(df, tmp_path / "df.json")
    back = load(tmp_path / "df.json")
    assert_same(df, back)
    assert back.output.scale.tobytes() == df.output.scale.tobytes()  # repr floats: bit-exact


def test_schema_checks():
    data = to_json(random_dataflow(0))
    assert data["schema_version"] == SCHEMA_VERSION
    with pytest.raises(InputError, match="not a qmlp dataflow document"):
        from_json({**data, "schema": "other"})
    with pytest.raises(InputError, match=r"schema version 99 not supported"):
        from_json({**data, "schema_version": 99})


def test_ir_values_are_read_only():
    df = random_dataflow(1)
    with pytest.raises(ValueError):
        df.layers[0].weights[0, 0] = 5


@pytest.mark.parametrize("breakage, message", [
    (lambda df, l0: replace(df, layers=(replace(l0, weights=frozen_array(l0.weights * 2, np.int64)), *df.layers[1:])),
     r"weights not all in TERNARY"),
    (lambda df, l0: replace(df, layers=(replace(l0, acc_dtype=INT(3)), *df.layers[1:])), r"accumulator type INT3 cannot hold"),
    (lambda df, l0: replace(df, layers=(replace(l0, activation=replace(
        l0.activation, values=frozen_array(l0.activation.values[:, ::-1], np.int64))), *df.layers[1:])),
     r"thresholds not ascending"),
    (lambda df, l0: replace(df, layers=(replace(l0, in_dtype=INT(4)), *df.layers[1:])), r"in_dtype INT4 but producer gives INT8"),
    (lambda df, l0: replace(df, layers=(replace(l0, folding=Folding(pe=3, simd=1)), *df.layers[1:])), r"does not divide"),
    (lambda df, l0: replace(df, output_shape=(99,)), r"shapes do not match"),
])
def test_verify_names_the_broken_rule(breakage, message):
    df = random_dataflow(2, widths=(12, 10, 4))
    verify(df)
    with pytest.raises(IRError, match=message):
        verify(breakage(df, df.layers[0]))


def test_accumulator_range_exhaustive():
    rng = np.random.default_rng(0)
    w = rng.integers(-2, 2, (3, 4))
    low, high = accumulator_range(w, INT(2))
    grid = np.array(np.meshgrid(*[np.arange(-2, 2)] * 4)).reshape(4, -1)
    acc = w @ grid
    assert np.array_equal(low, acc.min(axis=1)) and np.array_equal(high, acc.max(axis=1))


def test_negate_round_trips_and_schema_1_documents_read_as_not_negated(tmp_path):
    df = random_dataflow(4, negate=0.5)
    assert df.layers[0].activation.negate.any() and not df.layers[0].activation.negate.all()
    save(df, tmp_path / "df.json")
    back = load(tmp_path / "df.json")
    assert np.array_equal(back.layers[0].activation.negate, df.layers[0].activation.negate)
    old = to_json(df)
    old["schema_version"] = 1
    for layer in old["layers"]:
        if layer["activation"] is not None:
            del layer["activation"]["negate"]
    v1 = from_json(old)
    verify(v1)
    assert all(not l.activation.negate.any() for l in v1.layers if l.activation is not None)
    broken = to_json(df)
    broken["layers"][0]["activation"]["negate"] = [1] * 9
    channels = df.layers[0].out_features
    with pytest.raises(InputError, match=rf"layers\[0\].activation.negate: must be a list of {channels} true/false"):
        from_json(broken)
    short = to_json(df)
    short["layers"][0]["activation"]["negate"] = [True]
    with pytest.raises(InputError, match=rf"must be a list of {channels} true/false values, one per channel"):
        from_json(short)
