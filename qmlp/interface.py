"""qmlp_top's AXI-Lite register map as data: the one table the IP-XACT description
(qmlp/hwgen/ipxact.py), the board driver (bundled in its _core), and the C++ simulation harness
(a generated header, qmlp/sim/rtl.py) read their addresses from. qmlp_control.v decodes the same
addresses; tests/test_interface.py checks its decode against this table."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Register", "REGISTERS", "ID_VALUE", "ADDR_BITS", "DATA_BITS", "offsets", "version_value", "cpp_header"]

ID_VALUE = 0x514D4C50  # "QMLP"
ADDR_BITS = 6  # s_axi_awaddr / s_axi_araddr width of qmlp_top
DATA_BITS = 32


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
