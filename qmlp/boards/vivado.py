"""OUT/vivado/: the generic step scripts (templates under qmlp/boards/tcl, copied with a version
stamp) plus ``qmlp_config.tcl``, the one generated file, which sets every named hook they read."""

from __future__ import annotations

import re
import stat
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

from .. import __version__
from ..errors import ConfigError
from ..ir import Dataflow
from ..untrusted import quote_name, safe_ident
from .board import Board
from .ps import PS_SPECS, ps_properties
from .stream import dma_stream_bytes, stream_layout

__all__ = ["IP_VLNV", "IP_NAME", "DMA_NAME", "BATCH_NAME", "BATCH_GPIO_NAME", "BD_NAME", "HDL", "TEMPLATES", "tcl_word", "read_ip_vlnv",
           "vivado_hooks", "stamp", "emit_vivado"]

IP_VLNV = "qmlp.dev:qmlp:qmlp_top:1.0"  # used when OUT/ip/component.xml is not there to read it from
IP_NAME = "qmlp_0"  # block-design instance names; PYNQ exposes them as overlay attributes
DMA_NAME = "axi_dma_0"
BATCH_NAME = "qmlp_batch"  # qmlp_tlast_batch instance
BATCH_GPIO_NAME = "qmlp_batch_gpio"  # AXI GPIO driving its `frames` input; the driver writes it
BD_NAME = "qmlp_bd"
HDL = ("qmlp_tlast_batch.v",)  # board-side Verilog under qmlp/boards/hdl, copied to OUT/vivado/hdl
DMA_LENGTH_WIDTH = 26  # AXI DMA buffer-length register bits: transfers up to 64 MiB
TEMPLATES = ("build_bitstream.tcl", "qmlp_lib.tcl", "create_project.tcl", "block_design.tcl",
             "implement.tcl", "export.tcl", "ps_zynq_ultra_ps_e.tcl", "ps_processing_system7.tcl",
             "build.sh", "Makefile")
_SPIRIT = "http://www.spiritconsortium.org/XMLSchema/SPIRIT/1685-2009"
_BARE = re.compile(r"^[A-Za-z0-9_.:/+\-%]+$")


def tcl_word(value: object) -> str:
    """One Tcl word that reads back as ``str(value)``: bare when safe, else brace-quoted.

    Values holding backslashes or unbalanced braces are refused rather than escaped, since
    no board or design name needs them."""
    text = str(value)
    if _BARE.match(text):
        return text
    depth = 0
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            break
    if "\\" in text or depth != 0:
        raise ConfigError(f"value {text!r} cannot be written into a Tcl script (backslash or unbalanced brace)")
    return "{" + text + "}"


def read_ip_vlnv(component_xml: str | Path) -> str:
    """vendor:library:name:version of a packaged IP-XACT component."""
    try:
        root = ET.parse(component_xml).getroot()
    except (OSError, ET.ParseError) as error:
        raise ConfigError(f"{component_xml}: cannot read the packaged IP ({error}); rerun 'qmlp compile'") from None
    parts = []
    for tag in ("vendor", "library", "name", "version"):
        element = root.find(f"{{{_SPIRIT}}}{tag}")
        if element is None or not (element.text or "").strip():
            raise ConfigError(f"{component_xml}: spirit:{tag} missing; rerun 'qmlp compile'")
        parts.append(element.text.strip())
    return ":".join(parts)


def vivado_hooks(df: Dataflow, board: Board, clock_mhz: float, ip_vlnv: str = IP_VLNV) -> dict[str, str]:
    """The named hooks of the Tcl templates, as Tcl words, in the order they are written."""
    spec = PS_SPECS[board.ps_ip]
    layout = stream_layout(df)
    mm2s = dma_stream_bytes(layout.input.beat_bytes)
    s2mm = dma_stream_bytes(layout.output.beat_bytes)
    # The DMA's memory side is at least as wide as its streams; the SmartConnect adapts it to the port.
    mm_width = max(board.dma.width_bits, 8 * mm2s, 8 * s2mm)
    props = ps_properties(spec, control_port=board.control_port, dma_port=board.dma.port,
                          dma_width=board.dma.width_bits, clock=board.clock.name, clock_mhz=clock_mhz)
    props.update({f"CONFIG.{key}": "0" for port, key in spec.control_ports.items() if port != board.control_port})
    hooks = {
        "qmlp_version": __version__,
        "qmlp_design_name": safe_ident(df.name),
        "qmlp_board": board.name,
        "qmlp_part": board.part,
        "qmlp_board_part": board.board_part,
        "qmlp_ps_ip": board.ps_ip,
        "qmlp_ps_properties": " ".join(f"{k} {tcl_word(v)}" for k, v in props.items()),
        "qmlp_ps_actual_clock_key": f"CONFIG.{spec.clocks[board.clock.name][2]}",
        "qmlp_clock_pin": board.clock.name,
        "qmlp_reset_pin": spec.resets[board.clock.name],
        "qmlp_clock_mhz": f"{clock_mhz:g}",
        "qmlp_control_port": board.control_port,
        "qmlp_dma_port": board.dma.port,
        "qmlp_dma_mm_width": str(mm_width),
        "qmlp_dma_length_width": str(DMA_LENGTH_WIDTH),
        "qmlp_mm2s_bytes": str(mm2s),
        "qmlp_s2mm_bytes": str(s2mm),
        "qmlp_in_beat_bytes": str(layout.input.beat_bytes),
        "qmlp_out_beat_bytes": str(layout.output.beat_bytes),
        "qmlp_ip_vlnv": ip_vlnv,
        "qmlp_ip_name": IP_NAME,
        "qmlp_dma_name": DMA_NAME,
        "qmlp_batch_name": BATCH_NAME,
        "qmlp_batch_gpio_name": BATCH_GPIO_NAME,
        "qmlp_bd_name": BD_NAME,
    }
    return {name: tcl_word(value) for name, value in hooks.items()}


def stamp(source: str, comment: str = "#") -> str:
    return (f"{comment} Generated by qmlp {__version__} from qmlp/boards/{source}; do not edit, "
            f"rerun 'qmlp compile' instead.\n")


def _with_stamp(name: str, text: str) -> str:
    # Keep a shebang first so build.sh stays executable as a script.
    if text.startswith("#!"):
        first, _, rest = text.partition("\n")
        return f"{first}\n{stamp('tcl/' + name)}{rest}"
    return stamp("tcl/" + name) + text


def emit_vivado(df: Dataflow, board: Board, vivado_dir: str | Path, *, clock_mhz: float,
                ip_vlnv: str = IP_VLNV) -> list[Path]:
    """Write OUT/vivado/: qmlp_config.tcl + the stamped templates. Returns the files written."""
    vivado_dir = Path(vivado_dir)
    vivado_dir.mkdir(parents=True, exist_ok=True)
    hooks = vivado_hooks(df, board, clock_mhz, ip_vlnv)
    config = vivado_dir / "qmlp_config.tcl"
    lines = [f"# Generated by qmlp {__version__} for design '{quote_name(df.name)}' on board {board.name} "
             f"({board.source}); do not edit, rerun 'qmlp compile' instead."]
    lines += [f"set {name} {value}" for name, value in hooks.items()]
    config.write_text("\n".join(lines) + "\n")
    written = [config]
    package = resources.files(__package__) / "tcl"
    for name in TEMPLATES:
        target = vivado_dir / name
        target.write_text(_with_stamp(name, (package / name).read_text()))
        if name.endswith(".sh"):
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(target)
    (vivado_dir / "hdl").mkdir(exist_ok=True)
    for name in HDL:
        target = vivado_dir / "hdl" / name
        target.write_text(stamp(f"hdl/{name}", "//") + (resources.files(__package__) / "hdl" / name).read_text())
        written.append(target)
    return written
