"""`qmlp explore SPEC.yaml`: design-space exploration on Ray (see qmlp/explore and docs/explore.md);
`qmlp explore --report OUT` rewrites the summary and plots from OUT's results store."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..errors import ConfigError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, nargs="?", metavar="SPEC", help="sweep spec (.yaml, .yml or .toml)")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="output folder with the results store (default build/explore/<spec stem>); "
                             "re-running resumes it")
    parser.add_argument("--address", default=None, metavar="auto|ray://HOST:PORT",
                        help="run on an existing Ray cluster (default: a local Ray started for this command)")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray (default: all of this machine's)")
    parser.add_argument("--retry-failed", action="store_true", help="run failed trials and checks again")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="only rewrite DIR/summary.md and the plots from DIR's store; runs nothing")


def run(args: argparse.Namespace) -> int:
    if args.report is not None:
        if args.spec is not None or args.out is not None:
            raise ConfigError("--report DIR takes no SPEC or -o; it only reads DIR's results store")
        from ..explore.report import write_report
        for path in write_report(args.report):
            print(f"wrote {path}")
        return 0
    if args.spec is None:
        raise ConfigError("give a SPEC file (see examples/explore_can.yaml) or --report DIR")
    from ..explore.sweep import SweepOptions, run_sweep
    command = "qmlp " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["explore"] else ""
    run_sweep(SweepOptions(spec=args.spec, out=args.out, address=args.address, cpus=args.cpus,
                           retry_failed=args.retry_failed, command=command),
              log=lambda line: print(line, flush=True))
    return 0
