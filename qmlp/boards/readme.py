"""``OUT/README.md``: what each folder of a compiled OUT is for, the Vivado command, what to copy
to the board and how to run it there (written with the board files, so it names the board)."""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..build import DATAFLOW
from ..ir import Dataflow
from ..untrusted import quote_name, safe_ident
from .board import Board

__all__ = ["out_readme", "write_out_readme"]

FOLDERS = (  # (entry, what it is for); the layout is qmlp.build.Build's
    (DATAFLOW, "the folded Dataflow IR: the single source of truth for the hardware (docs/ir.md)"),
    ("final_hw_config.json", "PE / SIMD per layer in FINN's format; `qmlp compile --folding` reads it back"),
    ("model.onnx", "the source QONNX model (when compiled from one)"),
    ("rtl/", "Verilog: the generated top `qmlp_top.v` and the qmlp library it instantiates"),
    ("ip/", "IP-XACT `component.xml` packaging rtl/ for Vivado's IP catalog"),
    ("vivado/", "project, block design and bitstream scripts for this board (need Vivado)"),
    ("driver/", "the PYNQ driver `qmlp_driver` (numpy + pynq only; its arithmetic is the compiler's)"),
    ("deploy/", "what to copy to the board: driver, dataflow.json, manifest, bitstream slots"),
    ("report/", "estimates (`summary.md`, `estimate_*.json`, `resources.png`), Yosys counts with --synth, "
                "`qmlp profile` / `qmlp trace` results"),
    ("intermediate/", "the IR after each compile step and the build's progress (`--stop-after` / `--start-from`)"),
    (".qmlp-build", "marker: this folder is a qmlp build, which a later `qmlp compile -o` may replace"),
)


def out_readme(df: Dataflow, board: Board, clock_mhz: float) -> str:
    name, folder = quote_name(df.name), safe_ident(df.name)  # names are data: quoted text, a plain word in commands
    lines = [f"# {name}: compiled by qmlp {__version__} for {board.name} ({board.part}) at {clock_mhz:g} MHz", "",
             "| entry | what it is for |", "|---|---|"]
    lines += [f"| `{entry}` | {text} |" for entry, text in FOLDERS]
    lines += [
        "", "## Check it here (no board needed)", "",
        "    qmlp verify .                 # QONNX reference == simulator == RTL (Verilator)",
        "    qmlp info .                   # folding, II, latency, resources",
        "    qmlp profile .                # latency and energy on the virtual board",
        "", "## Build the bitstream (where Vivado is installed)", "",
        "    cd vivado && make bitstream   # fills deploy/bitstream/qmlp.bit and .hwh",
        "    cd vivado && make block_design   # quicker: stop after the block design",
        "", f"## Run on the {board.name}", "",
        "Copy `deploy/` (after `make bitstream`) to the board's PYNQ image and run there as root:", "",
        f"    scp -r deploy xilinx@<board>:~/{folder}",
        f"    ssh xilinx@<board>; sudo -s; cd ~/{folder}",
        "    python3 -m qmlp_driver.check --selftest 1000   # file hashes, then 1000 random vectors bit-exact",
        "    python3 -m qmlp_driver --input x.npy --output y.npy",
        "", "From the host, against the board: start `qmlp agent` there, then `qmlp hil . --target tcp://<board>:PORT` "
            "and `qmlp profile . --target tcp://<board>:PORT --power` (docs/boards.md).", "",
    ]
    return "\n".join(lines)


def write_out_readme(df: Dataflow, board: Board, out_dir: str | Path, clock_mhz: float) -> Path:
    path = Path(out_dir) / "README.md"
    path.write_text(out_readme(df, board, clock_mhz))
    return path
