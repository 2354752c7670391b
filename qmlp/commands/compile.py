"""`qmlp compile MODEL.onnx --board B`: lower, fold, estimate, emit RTL + IP + board files
(and with --synth run Yosys); the steps are listed in qmlp/hwgen/pipeline.py."""

from __future__ import annotations

import argparse
from pathlib import Path


__all__ = ["add_arguments", "run", "parse_target_fps"]


def parse_target_fps(text: str) -> float | str:
    """``max`` or a positive number of inferences per second (``1e6`` and ``100000`` both work)."""
    if text == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'max'") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number of inferences/s")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="QONNX model (.onnx) or a lowered dataflow.json")
    parser.add_argument("--board", default="zcu104", help="target board (see `qmlp boards`; default zcu104)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="output directory (default build/<model stem>)")
    parser.add_argument("--force", action="store_true",
                        help="replace -o even if it is a non-empty folder qmlp did not write (never one holding the model)")
    parser.add_argument("--clock-mhz", type=float, default=None, help="fabric clock (default: the board's PL clock)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--target-fps", type=parse_target_fps, default=None, metavar="N|max",
                       help="inferences/s to meet with the cheapest folding, or 'max' for fully parallel "
                            "(default: 'max' for networks of <= 2048 weights, else clock/1000)")
    group.add_argument("--folding", type=Path, default=None, metavar="F.json",
                       help="explicit PE/SIMD per layer in FINN's final_hw_config.json format")
    parser.add_argument("--argmax", action="store_true", help="output the class index instead of the raw scores")
    parser.add_argument("--synth", action="store_true", help="run Yosys synth_xilinx for real resource counts (slow)")
    parser.add_argument("--backend", choices=("native", "finn"), default="native",
                        help="finn: also write a FINN build directory (runs FINN only where it is installed)")


def run(args: argparse.Namespace) -> int:
    from ..hwgen.pipeline import CompileOptions, run_build

    options = CompileOptions(model=args.model, board=args.board, out=args.out, clock_mhz=args.clock_mhz,
                             target_fps=args.target_fps, folding=args.folding, argmax=args.argmax,
                             synth=args.synth, backend=args.backend, force=args.force)
    run_build(options, log=lambda line: print(line, flush=True))
    return 0
