"""Board data: the four shipped boards, user boards, and one-line errors naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qmlp.boards import get_board, known_boards, load_board_file
from qmlp.boards.board import BUILTIN_DIR
from qmlp.cli import main
from qmlp.errors import ConfigError, InputError

FACTS = {  # DESIGN.md "Boards (facts)"
    "zcu104": ("xczu7ev-ffvc1156-2-e", "zynq_ultra_ps_e", 200.0, 128, "pl_clk0"),
    "kv260": ("xck26-sfvc784-2LV-c", "zynq_ultra_ps_e", 200.0, 128, "pl_clk0"),
    "ultra96v2": ("xczu3eg-sbva484-1-i", "zynq_ultra_ps_e", 200.0, 128, "pl_clk0"),
    "pynq-z2": ("xc7z020clg400-1", "processing_system7", 100.0, 64, "FCLK_CLK0"),
}


@pytest.mark.parametrize("name", sorted(FACTS))
def test_builtin_boards_match_design_facts(name):
    board = get_board(name)
    part, ps, mhz, width, clock = FACTS[name]
    assert (board.part, board.ps_ip, board.clock.default_mhz, board.dma.width_bits, board.clock.name) == \
        (part, ps, mhz, width, clock)
    assert board.family == ("xc7" if ps == "processing_system7" else "xcup")


def test_zcu104_resources_and_rails():
    board = get_board("zcu104")
    r = board.resources
    assert (r.lut, r.ff, r.bram36, r.uram, r.dsp) == (230400, 460800, 312, 96, 1728)
    assert board.power_rails == ("12V", "INT", "1V8", "1V2", "MGTA", "3V3", "1V13", "5V0", "FMC", "MGTRA")


def test_unknown_board_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown board 'zcu999'; known boards: kv260, pynq-z2, ultra96v2, zcu104"):
        get_board("zcu999")


def _zcu104_data() -> dict:
    return json.loads((BUILTIN_DIR / "zcu104.json").read_text())


def test_user_board_via_path_and_search_path(tmp_path, monkeypatch):
    data = _zcu104_data()
    data["name"] = "myboard"
    data["clocks"] = [{"name": "pl_clk1", "default_mhz": 150}]
    path = tmp_path / "myboard.json"
    path.write_text(json.dumps(data))
    assert get_board(str(path)).clock.default_mhz == 150.0
    monkeypatch.setenv("QMLP_BOARDS_PATH", str(tmp_path))
    assert "myboard" in known_boards()
    assert get_board("myboard").clock.name == "pl_clk1"


def test_user_dir_shadows_builtin(tmp_path, monkeypatch):
    data = _zcu104_data()
    data["description"] = "mine"
    (tmp_path / "zcu104.json").write_text(json.dumps(data))
    monkeypatch.setenv("QMLP_BOARDS_PATH", str(tmp_path))
    assert get_board("zcu104").description == "mine"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("part"), r"field 'part' is missing"),
    (lambda d: d.update(part="xczu7ev ffvc"), r"field 'part' must be a Vivado part name"),
    (lambda d: d["ps"].update(ip="microblaze"), r"field 'ps.ip' must be one of zynq_ultra_ps_e, processing_system7"),
    (lambda d: d["dma"].update(width_bits=256), r"field 'dma.width_bits' must be one of \(32, 64, 128\)"),
    (lambda d: d["dma"].update(port="S_AXI_HP0"), r"field 'dma.port' must be one of S_AXI_HP0_FPD"),
    (lambda d: d.update(family="xc7"), r"field 'family' must be xcup for zynq_ultra_ps_e"),
    (lambda d: d.update(clocks=[{"name": "pl_clk0", "default_mhz": -5}]), r"field 'clocks\[0\].default_mhz' must be positive"),
    (lambda d: d.update(clocks=[{"name": "FCLK_CLK0", "default_mhz": 100}]), r"field 'clocks\[0\].name' must be a zynq_ultra_ps_e clock"),
    (lambda d: d["resources"].pop("DSP"), r"field 'resources.DSP' is missing"),
    (lambda d: d["resources"].update(LUT="many"), r"field 'resources.LUT' must be an integer"),
    (lambda d: d.update(colour="red"), r"field 'colour' is not a board field"),
    (lambda d: d.update(schema_version=7), r"field 'schema_version' must be 1"),
])
def test_bad_board_file_names_file_and_field(tmp_path, mutate, message):
    data = _zcu104_data()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message) as info:
        load_board_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_broken_json_and_name_mismatch(tmp_path, monkeypatch):
    (tmp_path / "broken.json").write_text("{ not json")
    with pytest.raises(InputError, match=r"^board file .*broken.json: not valid JSON \(line 1"):
        load_board_file(tmp_path / "broken.json")
    data = _zcu104_data()
    (tmp_path / "other.json").write_text(json.dumps(data))
    monkeypatch.setenv("QMLP_BOARDS_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"field 'name' is 'zcu104' but the file is named other.json"):
        get_board("other")


def test_cli_boards_table_and_error(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["board", "part", "PS"]
    assert [line.split()[0] for line in out[1:]] == ["kv260", "pynq-z2", "ultra96v2", "zcu104"]
    assert "xczu7ev-ffvc1156-2-e" in out[4] and "230,400" in out[4]
    assert main(["boards", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qmlp: error: unknown board 'nosuch'") and err.count("\n") == 1


def test_cli_boards_json(capsys):
    assert main(["boards", "pynq-z2", "--json"]) == 0
    (board,) = json.loads(capsys.readouterr().out)
    assert board["dma"] == {"port": "S_AXI_HP0", "width_bits": 64} and board["finn_board"] == "Pynq-Z2"
