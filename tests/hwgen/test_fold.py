"""Folding passes: legality, the padding choice, FINN config round trip, pinned error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qmlp.datatypes import INT, TERNARY, UINT
from qmlp.errors import FoldingError, InputError
from qmlp.boards import Resources, get_board
from qmlp.hwgen.estimate import estimate
from qmlp.hwgen.fold import (BRAM_PRICES, SCARCE_SHARE, SHARE_STEP, apply_folding, bram_prices, default_target_fps, divisors, fold,
                             fold_at_price, fold_cycles, fold_layer, folding_config, objective, parallelism_options,
                             part_shares, read_folding, reference_part, storage_options, target_cycles,
                             write_final_hw_config)
from qmlp.hwgen.plan import Storage, plan_layer
from qmlp.ir import Folding, verify
from qmlp.testing import random_dataflow


def test_divisors_and_padded_options():
    assert divisors(12) == [1, 2, 3, 4, 6, 12]
    assert parallelism_options(12, allow_padding=False) == [(p, 0) for p in (1, 2, 3, 4, 6, 12)]
    # 7 is prime: FINN could only use 1 or 7; padding adds 2 (pad 1), 3 (pad 2), 4 (pad 1).
    assert parallelism_options(7) == [(1, 0), (2, 1), (3, 2), (4, 1), (7, 0)]
    for n in (1, 7, 40, 600):
        for p, pad in parallelism_options(n):
            assert (n + pad) % p == 0 and 0 <= pad < p


def test_target_cycles():
    assert target_cycles(100_000, 200) == 2000
    assert target_cycles("max", 100) == 1
    assert target_cycles(1e6, 100) == 100
    with pytest.raises(FoldingError, match=r"^--target-fps 3e\+08 exceeds one inference per clock at 200 MHz; "
                                           r"use at most 2e\+08 \(or 'max'\) or raise --clock-mhz$"):
        target_cycles(3e8, 200)
    with pytest.raises(FoldingError, match=r"^--target-fps: 'fast' is neither a number nor 'max'$"):
        target_cycles("fast", 200)
    with pytest.raises(FoldingError, match=r"^--target-fps: -5 must be a positive number"):
        target_cycles(-5, 200)


@pytest.mark.parametrize("budget", [1, 3, 10, 40, 1000])
def test_fold_layer_meets_budget_and_is_cheapest(budget):
    df = random_dataflow(1, widths=(10, 7, 3))
    layer = df.layers[0]
    calls = []

    def cost(lyr, f):  # lanes used: the cheapest legal choice is the fewest lanes
        calls.append(f)
        return f.pe * f.simd

    chosen = fold_layer(layer, budget, cost=cost)
    assert fold_cycles(layer, chosen) <= budget
    legal = [f for f in calls if fold_cycles(layer, f) <= budget]
    assert chosen.pe * chosen.simd == min(f.pe * f.simd for f in legal)
    # Exhaustive check: no (PE, SIMD) of any kind meets the budget with fewer lanes.
    best = min(pe * simd for pe in range(1, 8) for simd in range(1, 11)
               if -(-7 // pe) * -(-10 // simd) <= budget)
    assert chosen.pe * chosen.simd == best


def test_padding_beats_divisors_only():
    # MH = 7 (prime) at a budget of 4 folds: FINN must take PE = 7; padding to 8 allows PE = 2.
    df = random_dataflow(2, widths=(1, 7, 2))
    layer = df.layers[0]
    lanes = lambda lyr, f: f.pe * f.simd  # noqa: E731
    finn = fold_layer(layer, 4, cost=lanes, allow_padding=False)
    padded = fold_layer(layer, 4, cost=lanes)
    assert (finn.pe, finn.pad_out) == (7, 0)
    assert (padded.pe, padded.pad_out) == (2, 1)
    assert fold_cycles(layer, padded) == 4


def test_fold_sets_stream_clock_and_stays_valid():
    df = random_dataflow(3, widths=(40, 24, 12, 4), weight_dtypes=TERNARY, input_dtype=INT(8), act_dtype=UINT(2))
    folded = fold(df, target_fps=20e6, clock_mhz=200)  # 10 cycles per inference
    verify(folded)
    assert folded.clock_mhz == 200.0
    assert all(fold_cycles(l, l.folding) <= 10 for l in folded.layers)
    assert folded.stream.in_elems_per_beat == folded.layers[0].folding.simd
    assert folded.stream.out_elems_per_beat == folded.layers[-1].folding.pe
    full = fold(df, target_fps="max", clock_mhz=100)
    assert [(l.folding.pe, l.folding.simd) for l in full.layers] == [(24, 40), (12, 24), (4, 12)]
    from qmlp.ir import replace
    with_argmax = fold(replace(df, argmax=True), target_fps="max", clock_mhz=100)
    assert with_argmax.stream.out_elems_per_beat == 1
    assert np.array_equal(full.layers[0].weights, df.layers[0].weights)


def test_default_target():
    tiny = random_dataflow(0)
    assert default_target_fps(tiny, 200) == 1_000_000.0  # what a host can feed through the DMA
    big = random_dataflow(0, widths=(40, 256, 4))
    assert default_target_fps(big, 200) == 200_000.0  # 1000 cycles per inference
    assert default_target_fps(big, 2000) == 1_000_000.0  # never above the DMA rate


def test_config_round_trip(tmp_path):
    df = random_dataflow(4, widths=(10, 7, 3))
    folded = fold(df, target_fps=50e6, clock_mhz=200)  # 4 cycles: needs padding on MH = 7
    path = tmp_path / "final_hw_config.json"
    write_final_hw_config(folded, path)
    config = read_folding(path)
    assert config["Defaults"] == {}
    again = apply_folding(df, config, clock_mhz=200)
    assert [l.folding for l in again.layers] == [l.folding for l in folded.layers]
    assert folding_config(again) == config
    assert again.stream == folded.stream


def test_apply_folding_defaults_and_finn_style_defaults():
    df = random_dataflow(5, widths=(12, 9, 7, 3))
    out = apply_folding(df, {"Defaults": {"SIMD": [1, ["all"]]}, "fc1": {"PE": 7, "SIMD": 3, "ram_style": "auto"}})
    assert [l.folding for l in out.layers] == [Folding(1, 1), Folding(7, 3), Folding(1, 1)]
    padded = apply_folding(df, {"fc0": {"PE": 2, "qmlp_pad_out": 1}})
    assert padded.layers[0].folding == Folding(pe=2, simd=1, pad_out=1)
    verify(padded)


def test_weight_storage_is_priced_at_the_boards_bram_price():
    """The search offers both storages of a multi-word ROM and charges a BRAM36 what the caller
    says: free block RAM wins over a LUT ROM, priceless block RAM never appears."""
    layer = random_dataflow(3, widths=(64, 64, 4), weight_dtypes=INT(2)).layers[0]
    options = storage_options(0, layer, Folding(pe=4, simd=11, pad_in=2))
    assert [plan_layer(0, layer, f).weights.kind for f in options] == [Storage.BRAM, Storage.LUT]
    assert storage_options(0, layer, Folding(pe=64, simd=64)) == [Folding(pe=64, simd=64)]  # no ROM: constants
    assert storage_options(0, layer, Folding(pe=1, simd=16)) == [Folding(pe=1, simd=16)]  # 256 words: BRAM only
    kinds = {}
    for price in (0.0, float("inf")):
        chosen = fold_layer(layer, 96, clock_mhz=100, family="xc7", lut_per_bram36=price)
        kinds[price] = plan_layer(0, layer, chosen).weights.kind
        assert fold_cycles(layer, chosen) <= 96
    assert kinds == {0.0: Storage.BRAM, float("inf"): Storage.LUT}


def test_bram_prices_come_from_the_board_data():
    pynq, zcu = get_board("pynq-z2"), get_board("zcu104")
    assert bram_prices(pynq.resources) == [f * 53200 / 140 for f in BRAM_PRICES]
    assert bram_prices(zcu.resources)[-1] == zcu.resources.lut / zcu.resources.bram36  # a BRAM36's share in LUTs
    assert reference_part("xc7") == pynq.resources  # the largest board of the family
    assert reference_part("xcup") == zcu.resources
    assert bram_prices(Resources(lut=1000, ff=2000, bram36=0, uram=0, dsp=0)) == [float("inf")]


def test_objective_counts_shares_below_the_floor_alike_then_lut():
    small = SCARCE_SHARE / 10
    bram_heavy = {"LUT": small, "FF": small, "BRAM36": 5 * small, "DSP": 0.0}
    lut_heavy = {"LUT": 2 * small, "FF": small, "BRAM36": small, "DSP": 0.0}
    assert objective(bram_heavy) < objective(lut_heavy)  # both use little of the part: fewer LUTs win
    scarce_bram = dict(bram_heavy, BRAM36=3 * SCARCE_SHARE)
    assert objective(lut_heavy) < objective(scarce_bram)  # above the floor the largest share decides
    assert objective(scarce_bram)[0] == pytest.approx(3 * SCARCE_SHARE)
    # largest shares within a step of each other count alike: then the fewer LUTs win
    a = {"LUT": 0.05, "FF": 0.02, "BRAM36": 0.1597, "DSP": 0.0}
    b = {"LUT": 0.04, "FF": 0.02, "BRAM36": 0.1603, "DSP": 0.0}
    assert objective(b) < objective(a)
    assert objective(dict(b, BRAM36=0.1603 + 2 * SHARE_STEP)) > objective(a)


def test_part_shares_of_an_estimate():
    df = fold(random_dataflow(3, widths=(64, 64, 4), weight_dtypes=INT(2)), target_fps=2e6, clock_mhz=200,
              part=SMALL_PART)
    est = estimate(df)
    assert est.bram36 > 0
    assert part_shares(est, SMALL_PART) == {"LUT": est.lut / 20000, "FF": est.ff / 40000, "BRAM36": est.bram36 / 16,
                                            "DSP": 0.0}
    no_bram = Resources(lut=20000, ff=40000, bram36=0, uram=0, dsp=0)
    assert part_shares(est, no_bram)["BRAM36"] == float("inf")  # block RAM a part lacks never wins


# A small part (20,000 LUT, 16 BRAM36): a layer of 64x64 INT2 weights at 2 M/s keeps its weights in
# a BRAM18 (0.5 BRAM36, 3% of the part; the LUT ROM costs more LUTs); at 8 M/s the weights need
# 5.5 BRAM36 (34% of the part) where LUT ROMs take about a quarter of its LUTs, so LUTs win.
SMALL_PART = Resources(lut=20000, ff=40000, bram36=16, uram=0, dsp=0)


@pytest.mark.parametrize("fps, storage", [(2e6, Storage.BRAM), (8e6, Storage.LUT)])
def test_fold_uses_block_ram_when_it_is_the_cheaper_resource(fps, storage):
    df = random_dataflow(3, widths=(64, 64, 4), weight_dtypes=INT(2))
    folded = fold(df, target_fps=fps, clock_mhz=200, part=SMALL_PART)
    assert plan_layer(0, folded.layers[0], folded.layers[0].folding).weights.kind is storage
    assert estimate(folded).ii_cycles <= target_cycles(fps, 200)


@pytest.mark.parametrize("part", [SMALL_PART, get_board("zcu104").resources])
def test_fold_keeps_the_sweep_point_with_the_best_objective(part):
    df = random_dataflow(3, widths=(64, 64, 4), weight_dtypes=INT(2))
    budget = target_cycles(2e6, 200)
    points = [fold_at_price(df, budget, clock_mhz=200, family="xcup", lut_per_bram36=price)
              for price in bram_prices(part)]
    storages = [plan_layer(0, p.layers[0], p.layers[0].folding).weights.kind for p in points]
    assert storages[0] is Storage.BRAM and storages[-1] is Storage.LUT  # the sweep offers a real choice
    assert all(estimate(p).ii_cycles <= budget for p in points)
    chosen = fold(df, target_fps=2e6, clock_mhz=200, part=part)
    assert objective(part_shares(estimate(chosen), part)) == min(objective(part_shares(estimate(p), part))
                                                                 for p in points)


def test_ram_style_round_trip():
    df = random_dataflow(5, widths=(12, 9, 7, 3))
    out = apply_folding(df, {"fc0": {"ram_style": "block"}, "fc1": {"ram_style": "distributed"}})
    assert [l.folding.weight_storage for l in out.layers] == ["bram", "lut", "auto"]
    config = folding_config(out)
    assert config["fc0"]["ram_style"] == "block" and config["fc1"]["ram_style"] == "distributed"
    assert "ram_style" not in config["fc2"]
    assert [l.folding for l in apply_folding(df, config).layers] == [l.folding for l in out.layers]


@pytest.mark.parametrize("config, message", [
    ({"fc0": {"ram_style": "ultra"}},
     "final_hw_config.json: layer fc0: ram_style 'ultra' is not one of 'auto', 'distributed', 'block' "
     "(qmlp builds weights in LUTs or block RAM)"),
    ({"fc0": {"PE": 2}},
     "final_hw_config.json: layer fc0: PE=2 does not divide MH=9 (legal PE: 1, 3, 9; or set qmlp_pad_out=1 to zero-pad)"),
    ({"fc1": {"SIMD": 4}},
     "final_hw_config.json: layer fc1: SIMD=4 does not divide MW=9 (legal SIMD: 1, 3, 9; or set qmlp_pad_in=3 to zero-pad)"),
    ({"fc2": {"PE": 4}},
     "final_hw_config.json: layer fc2: PE=4 must be between 1 and MH=3 (legal PE: 1, 3)"),
    ({"fc0": {"PE": 0}},
     "final_hw_config.json: layer fc0: PE=0 must be between 1 and MH=9 (legal PE: 1, 3, 9)"),
    ({"fc0": {"PE": 2, "qmlp_pad_out": 2}},
     "final_hw_config.json: layer fc0: qmlp_pad_out=2 must be between 0 and PE-1=1"),
    ({"fc0": {"PE": 4, "qmlp_pad_out": 1}},
     "final_hw_config.json: layer fc0: PE=4 does not divide MH=9+qmlp_pad_out=1 (legal PE: 1, 3, 9)"),
    ({"fc9": {"PE": 1}},
     "final_hw_config.json: no layer named 'fc9' (layers: fc0, fc1, fc2)"),
    ({"fc0": {"PE": "2"}},
     "final_hw_config.json: layer fc0: PE must be an integer, got '2'"),
    ({"fc0": {"pe": 1}},
     "final_hw_config.json: layer fc0: unknown key 'pe' (qmlp reads PE, SIMD, ram_style, qmlp_pad_out, qmlp_pad_in)"),
    ({"fc0": [1, 2]},
     "final_hw_config.json: layer fc0: expected an object like {\"PE\": 1, \"SIMD\": 1}, got [1, 2]"),
])
def test_apply_folding_errors(config, message):
    df = random_dataflow(6, widths=(12, 9, 7, 3))
    with pytest.raises(FoldingError) as info:
        apply_folding(df, config)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_read_folding_errors(tmp_path):
    with pytest.raises(InputError, match=r"^--folding .*nope.json: no such file$"):
        read_folding(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"^--folding .*bad.json: not valid JSON"):
        read_folding(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"fc0": {"PE": 1}}))
    assert read_folding(good) == {"fc0": {"PE": 1}}


def _chain_setup(widths, budget):
    from qmlp.hwgen.fold import _converter_cost, layer_options

    df = random_dataflow(3, widths=widths, weight_dtypes=INT(2), act_dtype=UINT(2))
    price = bram_prices(reference_part("xcup"))[-1]
    options = [layer_options(layer, budget, clock_mhz=200, family="xcup", index=i, lut_per_bram36=price)
               for i, layer in enumerate(df.layers)]

    def formats(layer, f):
        return (f.simd, (layer.in_features + f.pad_in) // f.simd), (f.pe, (layer.out_features + f.pad_out) // f.pe)

    def chain_cost(combo):
        """Layer costs plus a converter wherever a consumer's (SIMD, input folds) differs from its
        producer's (PE, output folds): the cost fold_chain minimises, computed combination by combination."""
        total, prev = 0.0, None
        for layer, (key, f) in zip(df.layers, combo):
            assert not key[0]  # every option meets the clock here
            fin, fout = formats(layer, f)
            if prev is not None and prev != fin:
                total += _converter_cost(*prev, *fin, layer.in_dtype.bits, layer.in_features, "xcup")
            total, prev = total + key[1], fout
        return total

    return df, price, options, formats, chain_cost


@pytest.mark.parametrize("widths,budget", [((24, 20, 12, 5), 16), ((30, 18, 14, 6), 12), ((26, 17, 11, 5), 10)])
def test_fold_chain_is_the_cheapest_chain_and_the_plan_agrees_on_its_converters(widths, budget):
    """fold_chain against brute force over every combination of the layers' options; the plan
    puts a converter exactly where the chain cost counts one."""
    import itertools

    from qmlp.hwgen.fold import fold_chain, with_stream
    from qmlp.hwgen.plan import StageKind, build_plan

    df, price, options, formats, chain_cost = _chain_setup(widths, budget)
    assert all(len(o) > 3 for o in options)  # a real search
    best = min(chain_cost(c) for c in itertools.product(*options))
    chosen = fold_chain(df, budget, clock_mhz=200, family="xcup", lut_per_bram36=price)
    keyed = [next(o for o in opts if o[1] == f) for opts, f in zip(options, chosen)]
    assert chain_cost(keyed) == pytest.approx(best)

    folded = with_stream(replace_layers(df, chosen), 200)
    stages = build_plan(folded).stages
    converted = {s.name for s in stages if s.kind is StageKind.DWC and s.name != "result_conv"}
    expected = {f"l{i}_in" for i in range(1, len(chosen))
                if formats(df.layers[i - 1], chosen[i - 1])[1] != formats(df.layers[i], chosen[i])[0]}
    assert converted == expected


def test_fold_chain_beats_folding_each_layer_alone_somewhere():
    """Over a dozen small networks, the chain search finds cheaper chains than the layers' own
    cheapest foldings on several (which ones depends on the calibrated prices)."""
    from qmlp.hwgen.fold import fold_chain

    better = 0
    for widths in [(24, 20, 12, 5), (30, 18, 14, 6), (20, 26, 10, 4), (28, 21, 13, 7), (36, 22, 15, 9)]:
        for budget in (8, 12, 16, 24):
            df, price, options, _, chain_cost = _chain_setup(widths, budget)
            chosen = fold_chain(df, budget, clock_mhz=200, family="xcup", lut_per_bram36=price)
            keyed = [next(o for o in opts if o[1] == f) for opts, f in zip(options, chosen)]
            alone = [opts[0] for opts in options]
            assert chain_cost(keyed) <= chain_cost(alone) + 1e-9
            better += chain_cost(keyed) < chain_cost(alone) - 1e-9
    assert better >= 3


def replace_layers(df, foldings):
    from qmlp.ir import replace
    return replace(df, layers=tuple(replace(layer, folding=f) for layer, f in zip(df.layers, foldings)))


def test_equal_storage_options_keep_the_plans_rule():
    """A layer whose LUT ROM and block-RAM ROM cost exactly the same at one sweep price (here fc2,
    1 x 6, on a PYNQ-Z2 at 1/4 of its LUTs per BRAM36: 210.5 = 163 + 0.5 x 95) keeps the storage the
    plan's rule picks; the tie must not compare foldings (it raised TypeError in the explore sweep)."""
    from qmlp.hwgen.fold import layer_options

    pynq = get_board("pynq-z2")
    df = random_dataflow(1, widths=(64, 256, 128, 10), weight_dtypes=TERNARY, input_dtype=UINT(4), act_dtype=UINT(2))
    price = bram_prices(pynq.resources)[BRAM_PRICES.index(1 / 4)]
    options = layer_options(df.layers[2], target_cycles(1e5, 100), clock_mhz=100, family="xc7", index=2,
                            lut_per_bram36=price)
    chosen = next(f for _, f in options if (f.pe, f.simd) == (1, 6))
    assert chosen.weight_storage == "auto"
    folded = fold(df, target_fps=1e5, clock_mhz=100, family="xc7", part=pynq.resources)
    assert estimate(folded, "xc7").ii_cycles <= target_cycles(1e5, 100)
