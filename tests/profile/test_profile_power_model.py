"""The resource x activity power model: arithmetic, sources, part lookup."""

from __future__ import annotations

import pytest

from qmlp.errors import ConfigError
from qmlp.profile.power_model import (MODELS, Activity, Resources, estimate_power, model_for_part,
                                      resources_from_report)

ACT = Activity(logic_toggle=0.2, register_toggle=0.1, bram_enable=0.5, dsp_enable=0.0, source="test")


def test_every_term_by_hand():
    model = model_for_part("xczu7ev-ffvc1156-2-e")
    res = Resources(lut=4000, ff=4500, bram36=4, dsp=0, source="test")
    est = estimate_power(res, ACT, clock_mhz=200.0, ii_cycles=10, model=model)
    f, v2 = 200e6, 0.85 ** 2
    assert est.components_w["logic"] == pytest.approx(0.5 * 0.30e-12 * v2 * f * 0.2 * 4000)
    assert est.components_w["registers"] == pytest.approx(0.5 * 0.25e-12 * v2 * f * 0.1 * 4500)
    assert est.components_w["clock"] == pytest.approx(0.015e-12 * v2 * f * 4500 + 10e-6 * 200)
    assert est.components_w["bram"] == pytest.approx(15e-12 * f * 0.5 * 4)
    assert est.components_w["dsp"] == 0 and est.components_w["io"] == 0
    assert est.dynamic_w == pytest.approx(sum(est.components_w.values()))
    assert est.total_w == pytest.approx(est.dynamic_w + 0.60)
    assert est.e_dyn_j == pytest.approx(est.dynamic_w * 10 / f)
    assert est.e_total_j == pytest.approx(est.total_w * 10 / f)


def test_power_scales_with_activity_and_clock():
    model = MODELS["xczu7ev"]
    res = Resources(lut=1000, ff=1000, bram36=0, dsp=0, source="test")
    quiet = estimate_power(res, Activity(0.0, 0.0, 0.0, 0.0, "x"), clock_mhz=100.0, ii_cycles=1, model=model)
    busy = estimate_power(res, Activity(0.5, 0.5, 0.0, 0.0, "x"), clock_mhz=100.0, ii_cycles=1, model=model)
    assert quiet.components_w["logic"] == 0 and quiet.components_w["clock"] > 0
    assert busy.dynamic_w > quiet.dynamic_w
    fast = estimate_power(res, Activity(0.5, 0.5, 0.0, 0.0, "x"), clock_mhz=200.0, ii_cycles=1, model=model)
    assert fast.dynamic_w == pytest.approx(2 * busy.dynamic_w)


def test_every_coefficient_has_a_source_and_assumptions_are_labelled():
    for model in MODELS.values():
        for name, coef in model.coefficients().items():
            assert coef["source"], name
            if coef["assumption"]:
                assert "assumption" in coef["source"], (model.name, name)
    est = estimate_power(Resources(1, 1, 0, 0, "synth", "r.json"), ACT, clock_mhz=100.0, ii_cycles=1,
                         model=MODELS["xc7z020"])
    text = "\n".join(est.assumptions)
    assert "resources from synth (r.json)" in text and "switching activity: test" in text
    assert "DS187" in text


def test_lower_vccint_part_draws_less():
    res = Resources(lut=10000, ff=10000, bram36=0, dsp=0, source="t")
    zu7 = estimate_power(res, ACT, clock_mhz=200.0, ii_cycles=1, model=model_for_part("xczu7ev-ffvc1156-2-e"))
    k26 = estimate_power(res, ACT, clock_mhz=200.0, ii_cycles=1, model=model_for_part("xck26-sfvc784-2LV-c"))
    assert k26.components_w["logic"] == pytest.approx(zu7.components_w["logic"] * (0.72 / 0.85) ** 2)


def test_unknown_part_and_bad_inputs():
    with pytest.raises(ConfigError, match="no power model for part 'xcvu9p-flga2104'; known parts: xczu7ev"):
        model_for_part("xcvu9p-flga2104")
    with pytest.raises(ConfigError, match="II >= 1"):
        estimate_power(Resources(1, 1, 0, 0, "t"), ACT, clock_mhz=100.0, ii_cycles=0, model=MODELS["xc7z020"])


def test_resources_from_reports():
    est = resources_from_report({"fc0": {"LUT": 1}, "total": {"LUT": 10, "FF": 20, "BRAM_18K": 3, "DSP": 0}},
                                source="estimate")
    assert (est.lut, est.ff, est.bram36, est.dsp) == (10, 20, 1.5, 0)
    synth = resources_from_report({"LUT": 100, "LUTRAM": 8, "FF": 50, "BRAM36": 2, "BRAM18": 1, "DSP": 1},
                                 source="synth")
    assert (synth.lut, synth.ff, synth.bram36, synth.dsp) == (108, 50, 2.5, 1)
    with pytest.raises(ConfigError, match="missing LUT or FF"):
        resources_from_report({"total": {"LUT": 1}}, source="estimate", path="x.json")
