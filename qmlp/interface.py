"""qmlp_top's AXI-Lite register map as data: the one table every consumer reads its addresses
from. The Verilog gets them from a generated header (``qmlp_registers.vh``, written into OUT/rtl
by qmlp/hwgen/emit.py and included by qmlp_control.v), the C++ simulation harness from
``qmlp_registers.h`` (qmlp/sim/rtl.py), the IP-XACT description from ``REGISTERS``
(qmlp/hwgen/ipxact.py), the board driver from this module bundled into its _core.
tests/test_interface.py simulates qmlp_control under a permuted table to prove it."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["TOP_MODULE", "Register", "REGISTERS", "ID_VALUE", "ADDR_BITS", "DATA_BITS", "VERILOG_HEADER", "offsets",
           "version_value", "cpp_header", "verilog_header"]

TOP_MODULE = "qmlp_top"  # the generated top level: Verilog, IP-XACT, Vivado, Verilator, Yosys
ID_VALUE = 0x514D4C50  # "QMLP"
ADDR_BITS = 6  # s_axi_awaddr / s_axi_araddr width of qmlp_top
DATA_BITS = 32
VERILOG_HEADER = "qmlp_registers.vh"  # the name qmlp_control.v includes


class Register(NamedTuple):
    name: str
    offset: int  # bytes
    access: str  # IP-XACT access: read-only / write-only
    reset: int | None  # constant value, or None
    description: str


REGISTERS: tuple[Register, ...] = (
    Register("ID", 0x00, "read-only", ID_VALUE, 'constant 0x514D4C50 ("QMLP")'),
    Register("VERSION", 0x04, "read-only", None, "IR schema version << 16 | number of layers"),
    Register("LAST_LATENCY", 0x08, "read-only", None,
             "cycles from the first input beat to the last output beat of the last inference"),
    Register("INFERENCES", 0x0C, "read-only", None, "output vectors completed since reset / clear"),
    Register("CYCLES", 0x10, "read-only", None, "free-running cycle counter (low 32 bits)"),
    Register("CTRL", 0x14, "write-only", None, "write 1 to bit 0: clear LAST_LATENCY, INFERENCES, CYCLES"),
)


def offsets() -> dict[str, int]:
    """Register name -> byte offset."""
    return {reg.name: reg.offset for reg in REGISTERS}


def version_value(schema_version: int, layers: int) -> int:
    """What the VERSION register reads for a design."""
    return (int(schema_version) << 16) | int(layers)


def cpp_header() -> str:
    """``qmlp_registers.h`` for the C++ harness: one constant per register."""
    lines = ["// Generated from qmlp/interface.py; do not edit.", "#pragma once", "#include <cstdint>"]
    lines += [f"constexpr uint32_t QMLP_REG_{reg.name} = 0x{reg.offset:02X};" for reg in REGISTERS]
    lines.append(f"constexpr uint32_t QMLP_ID_VALUE = 0x{ID_VALUE:08X}u;")
    return "\n".join(lines) + "\n"


def verilog_header() -> str:
    """``qmlp_registers.vh`` for qmlp_control.v: address and data widths, the ID constant and each
    register's byte offset as ``QMLP_REG_<NAME>`` (macros, so that port widths can use them too)."""
    lines = ["// qmlp_top's AXI-Lite register map, generated from qmlp/interface.py; do not edit.",
             "`ifndef QMLP_REGISTERS_VH", "`define QMLP_REGISTERS_VH",
             f"`define QMLP_ADDR_BITS {ADDR_BITS}", f"`define QMLP_DATA_BITS {DATA_BITS}",
             f"`define QMLP_ID_VALUE {DATA_BITS}'h{ID_VALUE:08X}"]
    for reg in REGISTERS:
        lines += [f"// {reg.name}, {reg.access}: {reg.description}",
                  f"`define QMLP_REG_{reg.name} {ADDR_BITS}'h{reg.offset:02X}"]
    lines.append("`endif")
    return "\n".join(lines) + "\n"
