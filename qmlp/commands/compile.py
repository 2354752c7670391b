"""`qmlp compile MODEL.onnx --board B`: lower, fold, estimate, emit RTL + IP + board files
(and with --synth run Yosys); the steps are listed in qmlp/hwgen/pipeline.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError

__all__ = ["add_arguments", "run", "parse_target_fps"]


def parse_target_fps(text: str) -> float | str:
    """``max`` or a positive rate: ``100000``, ``1e6``, ``10k``, ``1.5M`` (qmlp.api.parse_rate)."""
    from ..api import parse_rate

    try:
        return parse_rate(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, nargs="?", default=None,
                        help="QONNX model (.onnx) or a lowered dataflow.json (or the 'model' key of --config)")
    parser.add_argument("--config", type=Path, default=None, metavar="BUILD.json|toml",
                        help="build config: every option below as a key (FINN names accepted: output_dir, "
                             "synth_clk_period_ns, folding_config_file, stop_step); options given here win")
    parser.add_argument("--board", default=None, help="target board (see `qmlp boards`; default zcu104)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="output directory (default build/<model stem>)")
    parser.add_argument("--force", action="store_true",
                        help="replace -o even if it is a non-empty folder qmlp did not write (never one holding the model)")
    parser.add_argument("--clock-mhz", type=float, default=None, help="fabric clock (default: the board's PL clock)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--target-fps", type=parse_target_fps, default=None, metavar="N|max",
                       help="inferences/s to meet with the cheapest folding (100000, 1e6, 10k, 1.5M), or 'max' for "
                            "fully parallel (default: 1e6, what a DMA can feed, for networks of <= 2048 weights, else "
                            "clock/1000, at most 1e6)")
    group.add_argument("--folding", type=Path, default=None, metavar="F.json",
                       help="explicit PE/SIMD per layer in FINN's final_hw_config.json format")
    parser.add_argument("--argmax", action="store_true", default=None,
                        help="output the class index instead of the raw scores")
    parser.add_argument("--synth", action="store_true", default=None,
                        help="run Yosys synth_xilinx for real resource counts (slow)")
    parser.add_argument("--allow-overfit", action="store_true", default=None,
                        help="build even when the calibrated estimate exceeds the board's part")
    parser.add_argument("--backend", choices=("native", "finn"), default=None,
                        help="finn: also write a FINN build directory (runs FINN only where it is installed)")
    parser.add_argument("--stop-after", default=None, metavar="STEP",
                        help="end after this step (import, fold, estimate, write-ir, rtl, ip-xact, board-files, ...); "
                             "every step's IR is kept in OUT/intermediate/")
    parser.add_argument("--start-from", type=Path, default=None, metavar="OUT",
                        help="continue a build stopped with --stop-after from its OUT folder (its saved options)")


DEFAULTS = {"board": "zcu104", "argmax": False, "synth": False, "backend": "native", "allow_overfit": False}


def run(args: argparse.Namespace) -> int:
    from ..api import compile as compile_model
    from ..compile_config import read_config

    given = {key: getattr(args, key) for key in ("model", "board", "out", "clock_mhz", "target_fps", "folding",
                                                 "argmax", "synth", "backend", "stop_after", "allow_overfit",
                                                 "force")}
    config = read_config(args.config) if args.config is not None else {}
    options = {**DEFAULTS, **config, **{k: v for k, v in given.items() if v is not None}}
    if args.target_fps is not None or args.folding is not None:  # the command line's choice replaces the file's
        options["target_fps"], options["folding"] = args.target_fps, args.folding
    if options.get("model") is None and args.start_from is None:
        raise ConfigError("compile needs MODEL (an .onnx or dataflow.json), the 'model' key of --config, "
                          "or --start-from OUT")
    compile_model(options.pop("model", None), start_from=args.start_from,
                  log=lambda line: print(line, flush=True), **options)
    return 0
