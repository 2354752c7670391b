"""The register map is one table (qmlp/interface.py): the Verilog decodes exactly its addresses,
and the IP-XACT description, the board driver and the C++ harness read it."""

from __future__ import annotations

import re
from pathlib import Path

from qmlp import interface
from qmlp.boards.driver import core_module_source
from qmlp.hwgen import ipxact

ROOT = Path(__file__).resolve().parents[1]
# qmlp_control.v's read mux: word index -> the signal it returns, and what that signal is
SIGNALS = {"ID": "ID", "VERSION": "VERSION", "last_latency": "LAST_LATENCY", "inferences": "INFERENCES",
           "cycles": "CYCLES"}


def test_verilog_decodes_the_tables_addresses():
    text = (ROOT / "qmlp" / "hwgen" / "rtl" / "qmlp_control.v").read_text()
    reads = {int(word, 16) * 4: SIGNALS[signal] for word, signal in re.findall(r"4'h([0-9a-f]):\s*rdata <= (\w+);", text)}
    table = {r.offset: r.name for r in interface.REGISTERS if r.access == "read-only"}
    assert reads == table
    writes = {int(word, 16) * 4 for word in re.findall(r"s_axi_awaddr\[5:2\] == 4'h([0-9a-f])", text)}
    assert writes == {r.offset for r in interface.REGISTERS if r.access == "write-only"}
    # the header comment lists every register at its offset
    for reg in interface.REGISTERS:
        assert re.search(rf"0x{reg.offset:02X} {reg.name}\b", text), reg.name
    assert f"input  wire [{interface.ADDR_BITS - 1}:0]  s_axi_araddr" in text
    assert f"{interface.ID_VALUE:08X}" in text.replace("_", "").upper()


def test_ipxact_driver_and_harness_read_the_table():
    assert ipxact.REGISTERS is interface.REGISTERS
    core = core_module_source("interface.py")
    assert "REGISTERS: tuple[Register, ...] = (" in core  # bundled verbatim into the driver's _core
    driver = (ROOT / "qmlp" / "boards" / "driver_src" / "qmlp_driver" / "accelerator.py").read_text()
    assert "REGISTERS = interface.offsets()" in driver and "ID_VALUE = interface.ID_VALUE" in driver
    harness = (ROOT / "qmlp" / "sim" / "harness" / "harness.cpp").read_text()
    assert not re.search(r"axil_(read|write)\(0x", harness)  # addresses only by name
    header = interface.cpp_header()
    for reg in interface.REGISTERS:
        assert f"constexpr uint32_t QMLP_REG_{reg.name} = 0x{reg.offset:02X};" in header
    assert interface.version_value(1, 5) == 0x0001_0005
