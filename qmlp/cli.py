"""Command line: ``qmlp <command>``. Each command lives in ``qmlp/commands/<name>.py`` with
``add_arguments(parser)`` and ``run(args) -> int``; this module only wires them up and turns
QmlpError into one ``qmlp: error: ...`` line with exit status 2."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from . import __version__
from .errors import QmlpError, ToolError, did_you_mean

__all__ = ["main", "COMMANDS"]

# name -> one-line help; the module qmlp.commands.<name> implements it.
COMMANDS: dict[str, str] = {
    "compile": "lower, fold and generate RTL, IP, board scripts and driver for an ONNX model",
    "simulate": "run float inputs through the bit-accurate simulator (or the RTL)",
    "verify": "prove QONNX reference == simulator (== RTL for a compiled OUT)",
    "trace": "per-layer integer ranges, clipping, unused codes and dead channels on real data",
    "info": "layers, data types, sparsity and MACs of a model",
    "train": "quantization-aware training with Brevitas, exported to QONNX",
    "hil": "hardware-in-the-loop test suite against a board or the virtual board",
    "profile": "latency and energy per inference",
    "explore": "design-space exploration on Ray: precision x topology x target, Pareto front",
    "boards": "list the known boards",
    "agent": "board-side agent serving HIL and profiling requests",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qmlp", description="Compile quantized MLPs to verified FPGA dataflow hardware.")
    parser.add_argument("--version", action="version", version=f"qmlp {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        try:
            module = importlib.import_module(f"qmlp.commands.{name}")
        except ImportError as error:
            # On a board only numpy (+ pynq) is installed: `qmlp agent` must still start, and the
            # commands that need onnx/qonnx say what is missing instead of crashing the CLI.
            command.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            command.set_defaults(_module=_Unavailable(name, error))
            continue
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


class _Unavailable:
    """Stands in for a command whose dependencies are not installed here."""

    def __init__(self, name: str, error: ImportError) -> None:
        self.name, self.error = name, error

    def run(self, args: argparse.Namespace) -> int:
        missing = self.error.name or str(self.error)
        raise ToolError(f"'qmlp {self.name}' needs the Python package '{missing}', which is not installed here; "
                        f"install qmlp with its dependencies (pip install -r requirements.txt)")


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a killed job, a CI timeout) unwinds like Ctrl-C, so commands remove their
    # half-written output on the way out instead of dying in place.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # First line: a signal arriving while the command modules import (numpy, onnx: ~1 s) must
    # still end in one line and exit 130, not a traceback.
    signal.signal(signal.SIGTERM, _terminate)
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    if first is not None and first not in COMMANDS:
        guess = did_you_mean(first, COMMANDS)
        print(f"qmlp: error: unknown command {first!r}" + (f"; did you mean '{guess}'?" if guess else "")
              + f" Commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return int(args._module.run(args) or 0)
    except QmlpError as error:
        if debug:
            raise
        from .untrusted import printable  # here, not on top: main's first line must come before numpy loads

        print(f"qmlp: error: {printable(str(error))}", file=sys.stderr)
        return error.exit_status
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("qmlp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
