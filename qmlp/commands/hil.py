"""`qmlp hil OUT --target sim|tcp://HOST:PORT`: run the HIL suite on the virtual or a real board.

Exit status 0 when every case passes, 1 when a case fails (the hardware disagrees with the
simulator), 2 for bad input (missing OUT, bad target, unreachable agent)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from ._options import SEED_MAX, in_range

DEFAULT_TARGET = "sim"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder of `qmlp compile` (dataflow.json, rtl/, driver/)")
    parser.add_argument("--target", default=DEFAULT_TARGET,
                        help="'sim' (virtual board: the RTL under Verilator, default) or tcp://HOST:PORT of a `qmlp agent`")
    parser.add_argument("--token-file", type=Path, help="shared secret of the agent (required for tcp:// targets)")
    parser.add_argument("--junit", type=Path, help="also write the results as JUnit XML to this file")
    parser.add_argument("--vectors", type=Path, help=".npz with x (float inputs) and optionally expected (reference "
                        "outputs) and y (labels), e.g. examples/<model>.npz: run and report them too")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random vectors (default 0)")
    parser.add_argument("--large-batch", type=int, default=1000, help="largest batch size tried (default 1000)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one answer (default 900)")


def run(args: argparse.Namespace) -> int:
    from ..hil.agent import AgentConfig
    from ..hil.client import open_board
    from ..hil.junit import write_junit
    from ..hil.suite import load_vectors, run_suite
    from ..build import Build

    build = Build.open(args.out, folded=False)
    if args.large_batch < 1:
        raise ConfigError(f"--large-batch {args.large_batch}: must be at least 1")
    in_range("--large-batch", args.large_batch, 1, AgentConfig.max_batch, " (the agent's batch limit)")
    in_range("--seed", args.seed, 0, SEED_MAX)
    in_range("--timeout", args.timeout, 0.001, 86400.0, " seconds")
    if args.junit is not None and args.junit.is_dir():
        raise ConfigError(f"--junit {args.junit}: is a directory; name the .xml file to write")
    vectors = None if args.vectors is None else load_vectors(args.vectors, build.dataflow)
    print(f"qmlp hil: {args.out} on {args.target}", flush=True)
    with open_board(args.target, token_file=args.token_file, timeout_s=args.timeout) as board:
        report = run_suite(board, args.out, target=args.target, seed=args.seed, large_batch=args.large_batch,
                           vectors=vectors, progress=lambda line: print(line, flush=True))
        print()
    print(report.table())
    if args.junit is not None:
        print(f"JUnit XML: {write_junit(report, args.junit)}")
    sys.stdout.flush()
    return 0 if report.passed else 1
