"""IP-XACT component.xml: parses, matches the generated top's ports, lists existing files."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from qmlp.errors import ToolError
from qmlp.hwgen.emit import emit_rtl
from qmlp.hwgen.fold import fold
from qmlp.hwgen.ipxact import SPIRIT_NS, parse_ports, write_component
from qmlp.ir import replace
from qmlp.testing import random_dataflow

NS = {"spirit": SPIRIT_NS}


def _verilog_ports(text: str) -> dict[str, tuple[str, int]]:
    """Independent reading of the top's header: name -> (direction, width)."""
    start = text.index("module qmlp_top")
    header = text[start: text.index(");", start)]
    ports = {}
    for direction, msb, lsb, name in re.findall(r"(input|output)\s+wire\s+(?:\[(\d+):(\d+)\])?\s*(\w+)", header):
        ports[name] = ("in" if direction == "input" else "out", int(msb) - int(lsb) + 1 if msb else 1)
    return ports


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    out = tmp_path_factory.mktemp("ip")
    df = replace(fold(random_dataflow(11, widths=(12, 9, 5)), target_fps=2e7, clock_mhz=150), name="pkg")
    emit_rtl(df, out / "rtl")
    path = write_component(df, out / "rtl", out / "ip")
    return out, path


def test_ports_match_the_verilog(packaged):
    out, path = packaged
    root = ET.parse(path).getroot()
    assert root.tag == f"{{{SPIRIT_NS}}}component"
    assert root.find("spirit:name", NS).text == "qmlp_top"
    verilog = _verilog_ports((out / "rtl" / "qmlp_top.v").read_text())
    component = {}
    for port in root.iterfind("spirit:model/spirit:ports/spirit:port", NS):
        name = port.find("spirit:name", NS).text
        vector = port.find("spirit:wire/spirit:vector", NS)
        width = 1 if vector is None else int(vector.find("spirit:left", NS).text) - int(vector.find("spirit:right", NS).text) + 1
        component[name] = (port.find("spirit:wire/spirit:direction", NS).text, width)
    assert component == verilog
    # every bus port map points at a real port
    for physical in root.iterfind(".//spirit:portMap/spirit:physicalPort/spirit:name", NS):
        assert physical.text in verilog


def test_bus_interfaces(packaged):
    _, path = packaged
    root = ET.parse(path).getroot()
    buses = {}
    for bus in root.iterfind("spirit:busInterfaces/spirit:busInterface", NS):
        vlnv = bus.find("spirit:busType", NS).attrib
        params = {p.find("spirit:name", NS).text: p.find("spirit:value", NS).text
                  for p in bus.iterfind("spirit:parameters/spirit:parameter", NS)}
        logical = {m.find("spirit:logicalPort/spirit:name", NS).text for m in bus.iterfind(".//spirit:portMap", NS)}
        mode = "master" if bus.find("spirit:master", NS) is not None else "slave"
        buses[bus.find("spirit:name", NS).text] = (vlnv[f"{{{SPIRIT_NS}}}name"], mode, params, logical)
    assert buses["s_axis"][:2] == ("axis", "slave") and {"TDATA", "TVALID", "TREADY"} <= buses["s_axis"][3]
    assert buses["m_axis"][:2] == ("axis", "master") and {"TDATA", "TVALID", "TREADY", "TLAST"} <= buses["m_axis"][3]
    name, mode, params, logical = buses["s_axi_control"]
    assert (name, mode, params["PROTOCOL"]) == ("aximm", "slave", "AXI4LITE")
    assert {"AWADDR", "WDATA", "WSTRB", "BRESP", "ARADDR", "RDATA", "RRESP", "RREADY"} <= logical
    assert buses["ap_clk"][2] == {"ASSOCIATED_BUSIF": "s_axis:m_axis:s_axi_control",
                                  "ASSOCIATED_RESET": "ap_rst_n", "FREQ_HZ": "150000000"}
    assert buses["ap_rst_n"][:3] == ("reset", "slave", {"POLARITY": "ACTIVE_LOW"})
    for bus in root.iterfind("spirit:busInterfaces/spirit:busInterface", NS):
        assert bus.find("spirit:busType", NS).attrib[f"{{{SPIRIT_NS}}}vendor"] == "xilinx.com"


def test_memory_map_registers(packaged):
    _, path = packaged
    root = ET.parse(path).getroot()
    block = root.find("spirit:memoryMaps/spirit:memoryMap/spirit:addressBlock", NS)
    assert block.find("spirit:range", NS).text == "64"  # 6-bit AXI-Lite address
    regs = {r.find("spirit:name", NS).text: int(r.find("spirit:addressOffset", NS).text, 16)
            for r in block.iterfind("spirit:register", NS)}
    assert regs == {"ID": 0, "VERSION": 4, "LAST_LATENCY": 8, "INFERENCES": 12, "CYCLES": 16, "CTRL": 20}
    slave = root.find("spirit:busInterfaces/spirit:busInterface/spirit:slave/spirit:memoryMapRef", NS)
    assert slave.attrib[f"{{{SPIRIT_NS}}}memoryMapRef"] == "s_axi_control"


def test_file_sets_exist(packaged):
    out, path = packaged
    root = ET.parse(path).getroot()
    sets = root.findall("spirit:fileSets/spirit:fileSet", NS)
    assert {s.find("spirit:name", NS).text for s in sets} == {"synthesis_fileset", "simulation_fileset"}
    views = {v.find("spirit:fileSetRef/spirit:localName", NS).text for v in root.iterfind(".//spirit:view", NS)}
    assert views == {"synthesis_fileset", "simulation_fileset"}
    names = [f.find("spirit:name", NS).text for f in sets[0].iterfind("spirit:file", NS)]
    assert names[-1] == "hdl/qmlp_top.v"
    for name in names:
        assert (path.parent / name).is_file()
        assert (path.parent / name).read_bytes() == (out / "rtl" / name.split("/")[-1]).read_bytes()
    assert sorted(n.split("/")[-1] for n in names) == sorted(p.name for p in (out / "rtl").iterdir())


def test_parse_ports_errors():
    assert parse_ports("module qmlp_top (input wire a, output wire [3:0] b);\nendmodule")[1].left == 3
    with pytest.raises(ToolError, match="^no module qmlp_top in the generated top"):
        parse_ports("module other (input wire a); endmodule")
    with pytest.raises(ToolError, match=r"^qmlp_top: cannot read port declaration 'input wire \[W-1:0\] a'"):
        parse_ports("module qmlp_top (input wire [W-1:0] a); endmodule")
