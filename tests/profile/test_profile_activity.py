"""Parsing Verilator toggle coverage into rates (the measurement itself runs in test_profile_run)."""

from __future__ import annotations

import pytest

from qmlp.errors import ToolError
from qmlp.profile.activity import parse_coverage, toggle_rates


def _point(hier: str, name: str, direction: str, count: int, file: str = "/x/rtl/t.v") -> str:
    fields = {"f": file, "l": "3", "t": "toggle", "page": "v_toggle/t", "o": f"{name}:{direction}", "h": hier}
    return "C '" + "".join(f"\x01{k}\x02{v}" for k, v in fields.items()) + f"' {count}"


COVERAGE = "\n".join([
    "# SystemC::Coverage-3",
    _point("TOP.qmlp_top", "ap_clk", "0->1", 100), _point("TOP.qmlp_top", "ap_clk", "1->0", 100),
    _point("TOP.qmlp_top", "s_axi_awaddr[0]", "0->1", 0), _point("TOP.qmlp_top", "s_axi_awaddr[0]", "1->0", 0),
    _point("TOP.qmlp_top.l0", "acc[0]", "0->1", 30), _point("TOP.qmlp_top.l0", "acc[0]", "1->0", 29),
    _point("TOP.qmlp_top.l0", "acc[1]", "0->1", 10), _point("TOP.qmlp_top.l0", "acc[1]", "1->0", 11),
    _point("TOP.qmlp_top.l0.thr", "rst_n", "0->1", 1), _point("TOP.qmlp_top.l0.thr", "rst_n", "1->0", 0),
    _point("TOP.qmlp_top.l1", "q", "0->1", 5, "/x/rtl/u.v"), _point("TOP.qmlp_top.l1", "q", "1->0", 5, "/x/rtl/u.v"),
])


def test_parse_sums_both_directions_per_bit():
    counts = parse_coverage(COVERAGE)
    assert counts[("TOP.qmlp_top.l0", "t.v", "acc[0]")] == 59
    assert counts[("TOP.qmlp_top", "t.v", "ap_clk")] == 200
    assert len(counts) == 6


def test_rates_leave_out_clock_reset_and_axi_lite():
    result = toggle_rates(parse_coverage(COVERAGE), cycles=100, vectors=4)
    assert result.bits == 3  # acc[0], acc[1], q
    assert result.transitions == 59 + 21 + 10
    assert result.rate == pytest.approx(90 / 300)
    assert result.per_instance == {"TOP.qmlp_top.l0": pytest.approx(80 / 200), "TOP.qmlp_top.l1": pytest.approx(0.1)}
    assert result.register_rate is None and result.register_bits == 0  # no register list given


def test_register_and_net_rates_are_split_by_file_and_signal():
    # acc (in t.v) is a register; q is declared in u.v, where no 'q' register exists.
    result = toggle_rates(parse_coverage(COVERAGE), cycles=100, vectors=4,
                          registers=frozenset({("t.v", "acc"), ("t.v", "q")}))
    assert result.register_bits == 2 and result.register_rate == pytest.approx(80 / 200)
    assert result.net_bits == 1 and result.net_rate == pytest.approx(0.1)


def test_yosys_finds_the_flip_flops_of_a_design(tmp_path):
    from qmlp.profile.activity import register_signals

    (tmp_path / "qmlp_top.v").write_text(
        "module qmlp_top(input wire ap_clk, input wire [3:0] a, output wire [3:0] y);\n"
        "  reg [3:0] r; wire [3:0] s = a + 4'd1;\n"
        "  always @(posedge ap_clk) r <= s;\n  assign y = r;\nendmodule\n")
    assert register_signals(tmp_path) == frozenset({("qmlp_top.v", "r")})


def test_nothing_counted_is_an_error():
    with pytest.raises(ToolError, match="no signal bits"):
        toggle_rates(parse_coverage(_point("TOP.t", "ap_clk", "0->1", 3)), cycles=10, vectors=1)
