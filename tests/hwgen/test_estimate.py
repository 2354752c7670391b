"""Estimator: resource model properties, report files, and the cycle model == the RTL's cycles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qmlp.datatypes import INT, TERNARY, UINT
from qmlp.hwgen.estimate import bram_count, estimate, estimate_layer, steady_state, write_estimate_reports
from qmlp.hwgen.fold import apply_folding, fold, fold_cycles, target_cycles
from qmlp.hwgen.plan import Memory, Storage, plan_layer
from qmlp.ir import Folding, frozen_array, replace
from qmlp.testing import random_dataflow


def test_bram_count():
    """Block RAM only (the geometry itself: tests/hwgen/test_bram.py)."""
    assert bram_count(Memory(Storage.LUT, 10, 64), "xcup") == 0.0
    assert bram_count(Memory(Storage.CONSTANT, 10, 1), "xcup") == 0.0
    assert bram_count(Memory(Storage.BRAM, 10, 65), "xcup") == 0.5  # one BRAM18 (18 x 1024)
    assert bram_count(Memory(Storage.BRAM, 12, 16384), "xcup") == 5.5  # 11 BRAM18, depth slices packed


def _est(layer, folding):
    return estimate_layer(plan_layer(0, layer, folding), layer.weights)


def test_layer_cycles_and_no_dsp():
    layer = random_dataflow(1, widths=(40, 30, 4)).layers[0]
    est = _est(layer, Folding(pe=4, simd=8, pad_out=2))
    assert est.cycles == (32 // 4) * (40 // 8) == fold_cycles(layer, Folding(pe=4, simd=8, pad_out=2))
    assert est.dsp == 0 and est.weight_storage == "lut"
    # one tree stage over 8 products: ROM register, 1 sum stage, accumulator, output register
    assert est.latency_cycles == 40 - 1 + 4


def test_ternary_constants_are_cheaper_and_zeros_vanish():
    ternary = random_dataflow(2, widths=(32, 16, 4), weight_dtypes=TERNARY).layers[0]
    int2 = random_dataflow(2, widths=(32, 16, 4), weight_dtypes=INT(2)).layers[0]
    full = Folding(pe=16, simd=32)
    assert _est(ternary, full).lut < _est(int2, full).lut
    zeros = replace(ternary, weights=frozen_array(np.zeros((16, 32)), np.int64))
    sparse = replace(ternary, weights=frozen_array(np.where(np.arange(32) < 4, 1, 0)[None].repeat(16, 0), np.int64))
    # an all-zero layer keeps only its threshold logic; 4 nonzero inputs per channel add 3 adders each
    assert _est(zeros, full).lut < _est(sparse, full).lut < _est(ternary, full).lut
    folded = Folding(pe=4, simd=8)
    assert _est(zeros, folded).lut == _est(ternary, folded).lut  # ROM-based: no weight savings


def test_fold_meets_target_in_the_cycle_model():
    df = random_dataflow(3, widths=(40, 64, 32, 4), weight_dtypes=INT(2), input_dtype=INT(8), act_dtype=UINT(2))
    for fps in (2e6, 5e5):
        folded = fold(df, target_fps=fps, clock_mhz=200)
        latency, ii = steady_state(folded)
        assert ii <= target_cycles(fps, 200)
        assert latency > 0


def test_reports(tmp_path):
    df = fold(random_dataflow(4, widths=(20, 10, 3)), target_fps=1e7, clock_mhz=100)
    est = estimate(df)
    paths = write_estimate_reports(est, tmp_path / "report", totals={"LUT": 1000, "FF": 2000, "BRAM36": 10, "DSP": 5},
                                   board="pynq-z2")
    assert [p.name for p in paths] == ["estimate_layer_resources.json", "estimate_network_performance.json",
                                       "summary.md", "resources.png"]
    layers = json.loads(paths[0].read_text())
    assert list(layers) == ["fc0", "fc1", "streams_and_control", "total"]
    assert set(layers["fc0"]) >= {"LUT", "FF", "BRAM_18K", "BRAM36", "URAM", "DSP", "PE", "SIMD", "MH", "MW"}
    assert layers["total"]["LUT"] == sum(layers[n]["LUT"] for n in ("fc0", "fc1", "streams_and_control"))
    perf = json.loads(paths[1].read_text())
    assert perf["max_cycles"] == max(perf["layer_cycles"].values())
    assert perf["ii_cycles"] == est.ii_cycles and perf["latency_cycles"] == est.latency_cycles
    assert perf["estimated_latency_ns"] == pytest.approx(est.latency_cycles * 10.0)
    assert perf["estimated_throughput_fps"] == pytest.approx(100e6 / est.ii_cycles)
    summary = paths[2].read_text()
    assert "| fc0 | qmlp_" in summary and "| 10 x 20 |" in summary and "LUT    [" in summary and "pynq-z2" in summary
    assert "- fmax (estimate, xcup):" in summary and "run `qmlp compile --synth`" in summary
    assert paths[3].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the cycle model against the RTL (Verilator) -----------------------------------------------

RTL_CASES = {
    # folded MVAUs with width converters, padding (PE 2 on 7 outputs, SIMD 4 on 9 inputs), argmax
    "folded": ({"fc0": {"PE": 3, "SIMD": 4}, "fc1": {"PE": 2, "SIMD": 5, "qmlp_pad_out": 1, "qmlp_pad_in": 1},
                "fc2": {"PE": 1, "SIMD": 7}}, True),
    # fully parallel ternary layers: constant weights, pipelined adder trees
    "parallel": ({"fc0": {"PE": 9, "SIMD": 12}, "fc1": {"PE": 7, "SIMD": 9}, "fc2": {"PE": 3, "SIMD": 7}}, False),
}


@pytest.mark.parametrize("case", sorted(RTL_CASES))
def test_cycle_model_matches_rtl(case, tmp_path):
    from qmlp.hwgen.emit import emit_rtl
    from qmlp.sim.bitaccurate import simulate
    from qmlp.sim.rtl import simulate_rtl

    config, argmax = RTL_CASES[case]
    df = apply_folding(replace(random_dataflow(8, widths=(12, 9, 7, 3)), argmax=argmax), config, clock_mhz=200)
    emit_rtl(df, tmp_path / "rtl")
    x = np.random.default_rng(0).normal(0, 3, size=(6, 12)).astype(np.float32)
    result = simulate_rtl(df, tmp_path / "rtl", simulate(df, x).inputs, backpressure=False)
    est = estimate(df)
    assert result.latency[0] == est.latency_cycles  # an inference into the idle pipeline
    last_out = result.beats.out_cycles.reshape(6, -1)[:, -1]
    assert last_out[-1] - last_out[-2] == est.ii_cycles  # steady state
    assert est.ii_cycles == est.max_layer_cycles  # the FIFOs decouple the layers (RTL README)
