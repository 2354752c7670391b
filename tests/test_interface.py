"""The register map is one table (qmlp/interface.py): qmlp_control.v takes its addresses from the
generated qmlp_registers.vh (simulated here under the real table and a permuted one), and the
IP-XACT description, the board driver and the C++ harness read the same table."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qmlp import interface
from qmlp.boards.driver import core_module_source
from qmlp.hwgen import ipxact
from qmlp.hwgen.emit import LIBRARY_DIR, emit_rtl
from qmlp.sim.rtl import verilator_command
from qmlp.ir import SCHEMA_VERSION
from qmlp.testing import sweep_dataflow
from tests.testbench import build_testbench, verilator_env

ROOT = Path(__file__).resolve().parents[1]
CONTROL = LIBRARY_DIR / "qmlp_control.v"
VERSION = 0x0002_0005
LATENCY = 7  # cycles from the start pulse to the done pulse in the testbench


def _testbench(registers: tuple[interface.Register, ...]) -> str:
    """A testbench that runs one inference, then reads every register (phase 0), writes 1 to every
    register but CTRL and reads again (1), writes 1 to CTRL and reads again (2). Each read prints
    ``R <phase> <index in registers, or -1 for an unmapped address> <value>``; CYCLES is read twice
    in a row in each phase."""
    aw = interface.ADDR_BITS
    taken = {r.offset for r in registers}
    unmapped = next(a for a in range(0, 1 << aw, 4) if a not in taken)
    ctrl = next(r.offset for r in registers if r.name == "CTRL")
    cycles = next(i for i, r in enumerate(registers) if r.name == "CYCLES")
    reads = "".join(f"        rd({aw}'h{r.offset:02x}, phase, {i});\n" for i, r in enumerate(registers)
                    if r.access == "read-only")
    reads += f"        rd({aw}'h{registers[cycles].offset:02x}, phase, {cycles});\n"
    reads += f"        rd({aw}'h{unmapped:02x}, phase, -1);\n"
    pokes = "".join(f"        wr({aw}'h{r.offset:02x}, 32'h1);\n" for r in registers if r.name != "CTRL")
    return f"""`timescale 1ns/1ps
module tb;
    reg clk = 1'b0, rst_n = 1'b0, start = 1'b0, done = 1'b0;
    reg [{aw - 1}:0] awaddr = 0, araddr = 0;
    reg awvalid = 1'b0, wvalid = 1'b0, bready = 1'b0, arvalid = 1'b0, rready = 1'b0;
    reg [31:0] wdata = 32'd0;
    reg [3:0] wstrb = 4'd0;
    wire awready, wready, bvalid, arready, rvalid;
    wire [1:0] bresp, rresp;
    wire [31:0] rdata;
    integer phase = 0;
    qmlp_control #(.VERSION(32'h{VERSION:08x}), .TS_DEPTH(4)) dut (
        .clk(clk), .rst_n(rst_n), .start(start), .done(done),
        .s_axi_awaddr(awaddr), .s_axi_awvalid(awvalid), .s_axi_awready(awready), .s_axi_wdata(wdata),
        .s_axi_wstrb(wstrb), .s_axi_wvalid(wvalid), .s_axi_wready(wready), .s_axi_bresp(bresp),
        .s_axi_bvalid(bvalid), .s_axi_bready(bready), .s_axi_araddr(araddr), .s_axi_arvalid(arvalid),
        .s_axi_arready(arready), .s_axi_rdata(rdata), .s_axi_rresp(rresp), .s_axi_rvalid(rvalid),
        .s_axi_rready(rready));
    always #5 clk = ~clk;

    task automatic rd(input [{aw - 1}:0] addr, input integer ph, input integer index);
        begin
            @(negedge clk); araddr = addr; arvalid = 1'b1;
            @(negedge clk); arvalid = 1'b0; rready = 1'b1;
            if (!rvalid) $display("ERROR no read response at %0d", addr);
            $display("R %0d %0d %0d", ph, index, rdata);
            @(negedge clk); rready = 1'b0;
        end
    endtask
    task automatic wr(input [{aw - 1}:0] addr, input [31:0] value);
        begin
            @(negedge clk); awaddr = addr; wdata = value; wstrb = 4'hf; awvalid = 1'b1; wvalid = 1'b1; bready = 1'b1;
            @(negedge clk); awvalid = 1'b0; wvalid = 1'b0;
            if (!bvalid) $display("ERROR no write response at %0d", addr);
            @(negedge clk); bready = 1'b0;
        end
    endtask

    initial begin
        repeat (3) @(negedge clk);
        rst_n = 1'b1;
        @(negedge clk); start = 1'b1;
        @(negedge clk); start = 1'b0;
        repeat ({LATENCY - 1}) @(negedge clk);
        done = 1'b1;
        @(negedge clk); done = 1'b0;
        phase = 0;
{reads}{pokes}        phase = 1;
{reads}        wr({aw}'h{ctrl:02x}, 32'h1);
        phase = 2;
{reads}        $finish;
    end
endmodule
"""


def _simulate(registers: tuple[interface.Register, ...], tmp_path: Path) -> dict[int, dict[str, list[int]]]:
    """Build and run the testbench under ``registers``: phase -> register name -> values read."""
    tb = tmp_path / "tb.v"
    tb.write_text(_testbench(registers))
    binary = build_testbench("control", [CONTROL, tb], headers={interface.VERILOG_HEADER: interface.verilog_header()})
    proc = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120, env=verilator_env())
    assert proc.returncode == 0 and "ERROR" not in proc.stdout, proc.stdout + proc.stderr
    seen: dict[int, dict[str, list[int]]] = {}
    for phase, index, value in re.findall(r"^R (\d+) (-?\d+) (\d+)$", proc.stdout, re.M):
        name = "unmapped" if index == "-1" else registers[int(index)].name
        seen.setdefault(int(phase), {}).setdefault(name, []).append(int(value))
    return seen


def _scattered(seed: int) -> tuple[interface.Register, ...]:
    """The table with every register moved to another word, in a seeded random order."""
    import random

    offsets = random.Random(seed).sample(range(0, 1 << interface.ADDR_BITS, 4), len(interface.REGISTERS))
    assert offsets != [r.offset for r in interface.REGISTERS]
    return tuple(r._replace(offset=o) for r, o in zip(interface.REGISTERS, offsets))


@pytest.mark.parametrize("table", ["as shipped", "scattered"])
def test_control_decodes_whatever_the_table_says(tmp_path, monkeypatch, table):
    if table == "scattered":  # the Verilog follows the table: no address is spelled in qmlp_control.v
        monkeypatch.setattr(interface, "REGISTERS", _scattered(16))
    seen = _simulate(interface.REGISTERS, tmp_path)
    for phase in (0, 1, 2):
        got = seen[phase]
        assert got["ID"] == [interface.ID_VALUE] and got["VERSION"] == [VERSION], (phase, got)
        assert got["unmapped"] == [0]
        first, again = got["CYCLES"]
        assert again - first == 3  # one read transaction later: a free-running counter
    # one inference: counted with its latency; writes to the other registers change nothing
    for phase in (0, 1):
        assert seen[phase]["INFERENCES"] == [1] and seen[phase]["LAST_LATENCY"] == [LATENCY], seen[phase]
    assert seen[1]["CYCLES"][0] > seen[0]["CYCLES"][0]
    # CTRL cleared the counters, and CYCLES restarted from zero
    assert seen[2]["INFERENCES"] == [0] and seen[2]["LAST_LATENCY"] == [0]
    since_clear = 3 * (len(interface.REGISTERS) + 1)  # at most this many cycles of reads since the clear
    assert seen[2]["CYCLES"][0] <= since_clear < seen[1]["CYCLES"][0]


def test_control_names_every_register_and_no_address(tmp_path):
    text = CONTROL.read_text()
    assert f'`include "{interface.VERILOG_HEADER}"' in text
    code = re.sub(r"//[^\n]*", "", text)
    used = set(re.findall(r"`QMLP_REG_(\w+)", code))
    assert used == {r.name for r in interface.REGISTERS}
    reads = set(re.findall(r"`QMLP_REG_(\w+):\s*rdata <=", code))
    assert reads == {r.name for r in interface.REGISTERS if r.access == "read-only"}
    assert not re.search(r"\d+'h[0-9a-fA-F]+\s*:", code)  # no literal case labels
    (tmp_path / interface.VERILOG_HEADER).write_text(interface.verilog_header())
    proc = subprocess.run(verilator_command("--lint-only", "-Wall", f"-I{tmp_path}", str(CONTROL)),
                          capture_output=True, text=True, env=verilator_env(), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_emitted_design_and_ip_carry_the_header(tmp_path):
    df = sweep_dataflow(3, (6, 4), "int2", ((2, 3),))
    emit_rtl(df, tmp_path / "rtl")
    assert (tmp_path / "rtl" / interface.VERILOG_HEADER).read_text() == interface.verilog_header()
    top = (tmp_path / "rtl" / "qmlp_top.v").read_text()
    assert f"qmlp_control #(.VERSION(32'h{interface.version_value(SCHEMA_VERSION, 1):08x})" in top
    ports = {p.name: p for p in ipxact.parse_ports(top)}
    assert ports["s_axi_araddr"].left == interface.ADDR_BITS - 1 and ports["s_axi_rdata"].left == interface.DATA_BITS - 1
    component = ET.parse(ipxact.write_component(df, tmp_path / "rtl", tmp_path / "ip")).getroot()
    ns = {"spirit": ipxact.SPIRIT_NS}
    files = {f.findtext("spirit:name", namespaces=ns): f for f in component.iterfind(".//spirit:file", ns)}
    header = files[f"hdl/{interface.VERILOG_HEADER}"]
    assert header.findtext("spirit:fileType", namespaces=ns) == "verilogSource"
    assert header.findtext("spirit:isIncludeFile", namespaces=ns) == "true"
    assert (tmp_path / "ip" / "hdl" / interface.VERILOG_HEADER).is_file()


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
        assert f"`define QMLP_REG_{reg.name} {interface.ADDR_BITS}'h{reg.offset:02X}\n" in interface.verilog_header()
    assert interface.version_value(1, 5) == 0x0001_0005
