"""IP-XACT packaging: ``ip/component.xml`` describing ``qmlp_top`` for the Vivado IP catalog.

Written in the IEEE 1685-2009 "spirit" schema that Vivado's IP packager reads and writes, with
the Xilinx bus definitions: AXI-Stream slave ``s_axis`` and master ``m_axis``
(xilinx.com:interface:axis:1.0), AXI-Lite slave ``s_axi_control`` (xilinx.com:interface:aximm:1.0)
with a memory map of the registers of docs/interfaces.md, clock ``ap_clk`` (ASSOCIATED_BUSIF,
ASSOCIATED_RESET, FREQ_HZ) and reset ``ap_rst_n`` (POLARITY ACTIVE_LOW).

The port list is read from the generated ``qmlp_top.v`` itself, so the component can never
disagree with the Verilog it packages. The RTL is copied to ``ip/hdl/`` so the IP directory is
self-contained (Vivado resolves file-set paths relative to component.xml).
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import ToolError
from ..interface import REGISTERS, TOP_MODULE
from ..ir import Dataflow
from ..untrusted import quote_name

__all__ = ["Port", "REGISTERS", "SPIRIT_NS", "XILINX_NS", "parse_ports", "component_xml", "write_component"]

SPIRIT_NS = "http://www.spiritconsortium.org/XMLSchema/SPIRIT/1685-2009"
XILINX_NS = "http://www.xilinx.com"
_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
TOP = TOP_MODULE

# REGISTERS: (name, offset, access, reset value or None, description), from the one table

# logical port names of the Xilinx bus definitions, by physical suffix
_AXIS = {"tdata": "TDATA", "tvalid": "TVALID", "tready": "TREADY", "tlast": "TLAST", "tkeep": "TKEEP"}
_AXI = {s: s.upper() for s in ("awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
                               "bresp", "bvalid", "bready", "araddr", "arprot", "arvalid", "arready", "rdata",
                               "rresp", "rvalid", "rready")}


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "in" or "out"
    left: int | None  # vector [left:right], None for a scalar
    right: int | None


_HEADER = re.compile(r"\bmodule\s+(\w+)\s*(?:#\s*\((?:[^()]|\([^()]*\))*\)\s*)?\((.*?)\)\s*;", re.S)
_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:wire|reg|logic)?\s*(?:signed\s+)?(?:\[\s*(\d+)\s*:\s*(\d+)\s*\])?\s*(\w+)\s*$")


def parse_ports(verilog: str, module: str = TOP) -> list[Port]:
    """The ANSI port list of ``module`` (literal widths only, as the generated top writes them)."""
    text = re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", "", verilog, flags=re.S))
    for match in _HEADER.finditer(text):
        if match.group(1) != module:
            continue
        ports = []
        for item in match.group(2).split(","):
            if not item.strip():
                continue
            port = _PORT.match(item)
            if port is None:
                raise ToolError(f"{module}: cannot read port declaration {item.strip()!r} for IP-XACT packaging")
            direction = {"input": "in", "output": "out", "inout": "inout"}[port.group(1)]
            left = None if port.group(2) is None else int(port.group(2))
            right = None if port.group(3) is None else int(port.group(3))
            ports.append(Port(port.group(4), direction, left, right))
        return ports
    raise ToolError(f"no module {module} in the generated top; cannot package the IP")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{SPIRIT_NS}}}{tag}", {f"{{{SPIRIT_NS}}}{k}": v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _vlnv(parent: ET.Element, tag: str, name: str) -> None:
    _sub(parent, tag, vendor="xilinx.com", library="interface", name=name, version="1.0")


def _parameter(parent: ET.Element, name: str, value: str) -> None:
    param = _sub(parent, "parameter")
    _sub(param, "name", name)
    _sub(param, "value", value, id=f"BUSIFPARAM_VALUE.{name}")


def _bus(parent: ET.Element, name: str, bus: str, mode: str, mapping: dict[str, str],
         params: dict[str, str] | None = None, memory_map: str | None = None) -> None:
    bi = _sub(parent, "busInterface")
    _sub(bi, "name", name)
    _vlnv(bi, "busType", bus)
    _vlnv(bi, "abstractionType", f"{bus}_rtl")
    role = _sub(bi, mode)
    if memory_map:
        _sub(role, "memoryMapRef", memoryMapRef=memory_map)
    maps = _sub(bi, "portMaps")
    for logical, physical in mapping.items():
        pm = _sub(maps, "portMap")
        _sub(_sub(pm, "logicalPort"), "name", logical)
        _sub(_sub(pm, "physicalPort"), "name", physical)
    if params:
        plist = _sub(bi, "parameters")
        for key, value in params.items():
            _parameter(plist, key, value)


def _by_prefix(ports: list[Port], prefix: str, table: dict[str, str]) -> dict[str, str]:
    return {table[p.name[len(prefix):]]: p.name for p in ports
            if p.name.startswith(prefix) and p.name[len(prefix):] in table}


def component_xml(df: Dataflow, ports: list[Port], files: list[str]) -> ET.Element:
    """The spirit:component tree for ``qmlp_top`` with ``ports`` and RTL ``files`` (paths
    relative to component.xml)."""
    ET.register_namespace("spirit", SPIRIT_NS)
    ET.register_namespace("xilinx", XILINX_NS)
    ET.register_namespace("xsi", _XSI_NS)
    names = {p.name for p in ports}
    for required in ("ap_clk", "ap_rst_n", "s_axis_tdata", "m_axis_tdata", "s_axi_awaddr"):
        if required not in names:
            raise ToolError(f"{TOP}: port {required} missing; cannot package the IP")
    comp = ET.Element(f"{{{SPIRIT_NS}}}component")
    _sub(comp, "vendor", "qmlp.dev")
    _sub(comp, "library", "qmlp")
    _sub(comp, "name", TOP)
    _sub(comp, "version", "1.0")

    buses = _sub(comp, "busInterfaces")
    axis_in = _by_prefix(ports, "s_axis_", _AXIS)
    axis_out = _by_prefix(ports, "m_axis_", _AXIS)
    axi = _by_prefix(ports, "s_axi_", _AXI)
    _bus(buses, "s_axis", "axis", "slave", axis_in)
    _bus(buses, "m_axis", "axis", "master", axis_out)
    _bus(buses, "s_axi_control", "aximm", "slave", axi, {"PROTOCOL": "AXI4LITE"}, memory_map="s_axi_control")
    _bus(buses, "ap_rst_n", "reset", "slave", {"RST": "ap_rst_n"}, {"POLARITY": "ACTIVE_LOW"})
    freq = str(int(round((df.clock_mhz or 100.0) * 1e6)))
    _bus(buses, "ap_clk", "clock", "slave", {"CLK": "ap_clk"},
         {"ASSOCIATED_BUSIF": "s_axis:m_axis:s_axi_control", "ASSOCIATED_RESET": "ap_rst_n", "FREQ_HZ": freq})

    addr_bits = next(p.left - p.right + 1 for p in ports if p.name == "s_axi_awaddr" and p.left is not None)
    maps = _sub(comp, "memoryMaps")
    mmap = _sub(maps, "memoryMap")
    _sub(mmap, "name", "s_axi_control")
    block = _sub(mmap, "addressBlock")
    _sub(block, "name", "registers")
    _sub(block, "baseAddress", "0")
    _sub(block, "range", str(1 << addr_bits))
    _sub(block, "width", "32")
    _sub(block, "usage", "register")
    for name, offset, access, reset, description in REGISTERS:
        reg = _sub(block, "register")
        _sub(reg, "name", name)
        _sub(reg, "description", description)
        _sub(reg, "addressOffset", f"0x{offset:X}")
        _sub(reg, "size", "32")
        _sub(reg, "access", access)
        if reset is not None:
            _sub(_sub(reg, "reset"), "value", f"0x{reset:08X}")

    model = _sub(comp, "model")
    views = _sub(model, "views")
    for view, env, fileset in (("xilinx_anylanguagesynthesis", ":vivado.xilinx.com:synthesis", "synthesis_fileset"),
                               ("xilinx_anylanguagebehavioralsimulation", ":vivado.xilinx.com:simulation",
                                "simulation_fileset")):
        v = _sub(views, "view")
        _sub(v, "name", view)
        _sub(v, "envIdentifier", env)
        _sub(v, "language", "Verilog")
        _sub(v, "modelName", TOP)
        _sub(_sub(v, "fileSetRef"), "localName", fileset)
    port_list = _sub(model, "ports")
    for port in ports:
        p = _sub(port_list, "port")
        _sub(p, "name", port.name)
        wire = _sub(p, "wire")
        _sub(wire, "direction", port.direction)
        if port.left is not None:
            vector = _sub(wire, "vector")
            _sub(vector, "left", str(port.left), format="long")
            _sub(vector, "right", str(port.right), format="long")

    filesets = _sub(comp, "fileSets")
    for fileset in ("synthesis_fileset", "simulation_fileset"):
        fs = _sub(filesets, "fileSet")
        _sub(fs, "name", fileset)
        for name in files:
            f = _sub(fs, "file")
            _sub(f, "name", name)
            if name.endswith((".v", ".sv")):
                _sub(f, "fileType", "systemVerilogSource" if name.endswith(".sv") else "verilogSource")
            elif name.endswith(".vh"):  # `include'd (the register map): Vivado adds its folder to the include path
                _sub(f, "fileType", "verilogSource")
                _sub(f, "isIncludeFile", "true")
            else:  # $readmemh data, needed beside the sources at synthesis and simulation
                _sub(f, "fileType", "unknown")
                _sub(f, "userFileType", "memory_init")
    _sub(comp, "description", f"qmlp streaming MLP accelerator for '{quote_name(df.name)}' (generated by qmlp {__version__})")
    params = _sub(comp, "parameters")
    param = _sub(params, "parameter")
    _sub(param, "name", "Component_Name")
    _sub(param, "value", f"{TOP}_v1_0", resolve="user", id="PARAM_VALUE.Component_Name", order="1")

    ext = ET.SubElement(comp, f"{{{SPIRIT_NS}}}vendorExtensions")
    core = ET.SubElement(ext, f"{{{XILINX_NS}}}coreExtensions")
    fams = ET.SubElement(core, f"{{{XILINX_NS}}}supportedFamilies")
    for family in ("zynquplus", "zynq"):
        ET.SubElement(fams, f"{{{XILINX_NS}}}family", {f"{{{XILINX_NS}}}lifeCycle": "Production"}).text = family
    tax = ET.SubElement(core, f"{{{XILINX_NS}}}taxonomies")
    ET.SubElement(tax, f"{{{XILINX_NS}}}taxonomy").text = "/UserIP"
    ET.SubElement(core, f"{{{XILINX_NS}}}displayName").text = f"qmlp {quote_name(df.name)}"
    return comp


def write_component(df: Dataflow, rtl_dir: str | Path, ip_dir: str | Path) -> Path:
    """Copy ``rtl_dir`` to ``ip_dir/hdl`` and write ``ip_dir/component.xml``; returns its path."""
    rtl_dir, ip_dir = Path(rtl_dir), Path(ip_dir)
    top = rtl_dir / f"{TOP}.v"
    if not top.exists():
        raise ToolError(f"{top} missing: emit the RTL before packaging the IP")
    ports = parse_ports(top.read_text())
    hdl = ip_dir / "hdl"
    hdl.mkdir(parents=True, exist_ok=True)
    files = []
    for item in sorted(rtl_dir.iterdir()):
        if item.is_file():
            shutil.copyfile(item, hdl / item.name)
            files.append(f"hdl/{item.name}")
    # The top goes last: Vivado takes the last file of a file set as the top-level candidate.
    files.sort(key=lambda name: name == f"hdl/{TOP}.v")
    tree = ET.ElementTree(component_xml(df, ports, files))
    ET.indent(tree)
    path = ip_dir / "component.xml"
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path
