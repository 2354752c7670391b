"""`qmlp profile OUT --target sim|tcp://HOST:PORT [--power] [--json]`: latency in three layers
(fabric, accelerator call, end to end), throughput at batch N and energy per inference — measured
on a board, modelled / estimated on the virtual board. Writes OUT/report/profile.json, the raw
samples and the PNGs; see docs/profile.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError
from ._options import SEED_MAX, in_range

MAX_RUNS = 10_000_000  # batch-1 latency runs: hours on a board, far longer on the virtual board


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder of `qmlp compile`")
    parser.add_argument("--target", default="sim",
                        help="'sim' (virtual board: the RTL under Verilator, default) or tcp://HOST:PORT of a `qmlp agent`")
    parser.add_argument("--token-file", type=Path, help="shared secret of the agent (required for tcp:// targets)")
    parser.add_argument("--power", action="store_true",
                        help="on a board: record the power rails (idle, then a burst; >= 10 s each)")
    parser.add_argument("--json", action="store_true", help="print profile.json to stdout instead of the table")
    parser.add_argument("--runs", type=int, default=1000, help="batch-1 runs for the latency distribution (>= 1000)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls run and discarded first (default 20)")
    parser.add_argument("--batch", type=int, default=1024, help="batch size N for throughput (default 1024)")
    parser.add_argument("--no-toggle", action="store_true",
                        help="virtual board: skip the Verilator toggle measurement (use a 12.5%% default activity)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input vectors")
    parser.add_argument("--check", action="store_true",
                        help="profile nothing: recompute OUT/report/profile.json's numbers from the files it names "
                             "(exit 1 on any difference)")


def run(args: argparse.Namespace) -> int:
    from ..profile.report import check_report, format_table
    from ..profile.run import ProfileOptions, profile

    if args.check:
        lines = check_report(args.out / "report")
        print("\n".join(lines))
        bad = sum(line.startswith("MISMATCH") for line in lines)
        print(f"{len(lines) - bad} of {len(lines)} numbers reproduced from the files profile.json names")
        return 1 if bad else 0

    if args.warmup < 0:
        raise ConfigError(f"--warmup {args.warmup}: must be >= 0")
    from ..hil.agent import AgentConfig

    in_range("--runs", args.runs, 1, MAX_RUNS)
    if args.batch >= 1:  # below 1: ProfileOptions says so
        in_range("--batch", args.batch, 1, AgentConfig.max_batch, " (the agent's batch limit)")
    in_range("--warmup", args.warmup, 0, MAX_RUNS)
    in_range("--seed", args.seed, 0, SEED_MAX)
    options = ProfileOptions(out_dir=args.out, target=args.target, power=args.power, runs=args.runs,
                             warmup=args.warmup, batch=args.batch, token_file=args.token_file,
                             measure_activity=not args.no_toggle, seed=args.seed)
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else (lambda line: print(line, flush=True))
    data = profile(options, log=log)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_table(data))
        print(f"report: {args.out / 'report' / 'profile.json'}")
    return 0
