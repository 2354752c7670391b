"""Numeric tracing counts what the simulator's integers do and says so in words: the classic
waste (a signed INT8 input quantizer fed non-negative data), clipping, codes never used and dead
channels, all checked against counts made here from simulate()."""

from __future__ import annotations

import numpy as np

from qmlp.datatypes import INT, UINT
from qmlp.ir import frozen_array, replace
from qmlp.sim.bitaccurate import simulate
from qmlp.sim.trace import trace, write_trace
from qmlp.testing import random_dataflow


def _model():
    df = random_dataflow(2, widths=(16, 12, 8, 4), input_dtype=INT(8), act_dtype=UINT(2))
    scale = frozen_array(np.full(16, 1 / 127, np.float32), np.float32)
    return replace(df, input=replace(df.input, scale=scale))


def test_signed_input_quantizer_fed_non_negative_data_is_flagged():
    df = _model()
    x = np.random.default_rng(0).uniform(0, 1, size=(4000, 16)).astype(np.float32)
    result = trace(df, x)
    # codes -128..-1 never occur: 128 of 256 (0..127 all occur with 64000 values)
    assert result.input.codes.unused == tuple(range(-128, 0))
    assert result.input.clipped_low == result.input.clipped_high == 0.0
    assert result.findings[0] == "input quantizer: 50% of codes unused: your data is non-negative, use an unsigned quantizer"
    assert "input quantizer: 50% of codes unused" in result.summary()


def test_counts_match_the_simulator():
    df = _model()
    x = np.random.default_rng(1).normal(0, 1.5, size=(3000, 16)).astype(np.float32)  # clips beyond +-1
    result, sim = trace(df, x), simulate(df, x)
    assert result.input.clipped_high == float(np.mean(x / df.input.scale > 127))
    assert 0 < result.input.clipped_high < 0.5
    assert any(f.startswith("input quantizer: ") and "clipped above the highest code" in f for f in result.findings)
    for layer, lt, acc, out in zip(df.layers, result.layers, sim.accumulators, sim.activations):
        assert lt.acc_reached == (acc.min(), acc.max())
        assert lt.acc_type_range == (layer.acc_dtype.min, layer.acc_dtype.max)
        assert lt.acc_type_range[0] <= lt.acc_reached[0] <= lt.acc_reached[1] <= lt.acc_type_range[1]
        assert lt.dead_channels == tuple(c for c in range(out.shape[1]) if len(np.unique(out[:, c])) == 1)
        if lt.codes is not None:
            assert sum(lt.codes.counts) == out.size
            assert lt.codes.counts == tuple(int(np.sum(out == c)) for c in lt.codes.codes)


def test_dead_channel_and_unused_codes_are_named():
    df = _model()
    act = df.layers[0].activation
    values = np.array(act.values)
    values[3] = df.layers[0].acc_dtype.max + 1  # channel 3 never passes a threshold: always code 0
    dead = replace(df.layers[0], activation=replace(act, values=frozen_array(values, np.int64)))
    df = replace(df, layers=(dead, *df.layers[1:]))
    result = trace(df, np.random.default_rng(2).uniform(-1, 1, size=(500, 16)).astype(np.float32))
    assert 3 in result.layers[0].dead_channels
    assert any(f.startswith("fc0: ") and "channels never change (dead: " in f for f in result.findings)


def test_write_trace_files(tmp_path):
    df = _model()
    x = np.random.default_rng(3).uniform(0, 1, size=(200, 16)).astype(np.float32)
    paths = write_trace(trace(df, x), tmp_path / "t", df, x)
    names = sorted(p.name for p in paths)
    assert names == ["input.png", "layer0.png", "layer1.png", "layer2.png", "summary.txt", "trace.json"]
    assert all(p.stat().st_size > 0 for p in paths)
