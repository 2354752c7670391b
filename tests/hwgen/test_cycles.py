"""The cycle model: full throughput (II = max layer cycles) for random foldings with padding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from qmlp.hwgen.cycles import cycle_model, simulate_cycles
from qmlp.hwgen.plan import tree_stages
from qmlp.ir import Folding, StreamFormat
from qmlp.testing import random_dataflow


def _random_folding(rng, n):
    if rng.random() < 0.5:
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        return int(rng.choice(divisors)), 0
    p = int(rng.integers(1, n + 1))
    return p, (-n) % p


def test_ii_is_the_slowest_layer_for_random_foldings():
    rng = np.random.default_rng(0)
    for trial in range(120):
        widths = tuple(int(x) for x in rng.integers(2, 30, size=rng.integers(2, 5)))
        df = random_dataflow(trial, widths=widths)
        folds = []
        for layer in df.layers:
            pe, pad_out = _random_folding(rng, layer.out_features)
            simd, pad_in = _random_folding(rng, layer.in_features)
            folds.append(Folding(pe, simd, pad_out, pad_in))
        argmax = bool(rng.integers(0, 2))
        df = replace(df, layers=tuple(replace(l, folding=f) for l, f in zip(df.layers, folds)), argmax=argmax,
                     stream=StreamFormat(folds[0].simd, 1 if argmax else folds[-1].pe))
        model = cycle_model(df, vectors=6)
        assert model.ii == max(model.layer_cycles), (widths, folds, argmax, model)


def test_single_mvau_latency_matches_the_documented_recurrence():
    """One folded layer, input stream = SIMD elements per beat: in FIFO (+1), NF*SF issues, output
    register 4 after the last issue, output FIFO (+1)."""
    df = random_dataflow(1, widths=(12, 10))
    df = replace(df, layers=(replace(df.layers[0], folding=Folding(pe=5, simd=4)),), stream=StreamFormat(4, 5))
    in_cycles, out_cycles = simulate_cycles(df, 1)
    assert list(in_cycles) == [0, 1, 2]
    # issue of fold 0 beat s at cycle s + 1 (through the FIFO); all NF*SF = 6 issues back to back
    last_issue = 1 + 6 - 1
    assert list(out_cycles) == [1 + 2 + 4 + 1, last_issue + 4 + 1]
    assert cycle_model(df).latency == last_issue + 5


def test_tree_stages():
    assert [tree_stages(n, 3) for n in (1, 2, 8, 9, 64, 65, 600)] == [0, 1, 1, 2, 2, 3, 4]
    assert [tree_stages(n, 1) for n in (1, 2, 8, 9)] == [0, 1, 3, 4]
