"""`qmlp agent`: serve HIL requests for one board (or the virtual board) over TCP.

Binds 127.0.0.1 unless --host says otherwise. Without --token-file the agent creates a random
token in its work folder (mode 0600) and prints where, so a client on the same machine can use it.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
from pathlib import Path

from ..errors import ConfigError

DEFAULT_PORT = 7373
MAX_IDLE_SECONDS = 86400.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument("--token-file", type=Path, help="shared secret (default: create WORKDIR/agent.token)")
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".qmlp-agent",
                        help="the only folder the agent writes to (default ~/.qmlp-agent)")
    parser.add_argument("--backend", choices=("sim", "pynq"), default="sim",
                        help="sim: virtual board (RTL under Verilator); pynq: the board this runs on")
    parser.add_argument("--clock-mhz", type=float, help="board clock for the virtual board's timing (default: the design's)")
    parser.add_argument("--cache-dir", type=Path,
                        help="sim: where compiled Verilator harnesses are kept (default WORKDIR/verilator-cache)")
    parser.add_argument("--dma-batch", type=int, default=1024, help="pynq: vectors per DMA transfer (default 1024)")
    parser.add_argument("--idle-timeout", type=float, default=300.0, help="drop a silent client after this many seconds")


def _token(args: argparse.Namespace) -> bytes:
    from ..hil.protocol import read_token

    if args.token_file is not None:
        token = read_token(args.token_file)
        if os.name == "posix" and args.token_file.stat().st_mode & 0o077:
            print(f"qmlp agent: WARNING {args.token_file} is readable by other users; chmod 600 it", flush=True)
        return token
    path = args.workdir / "agent.token"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(32).hex() + "\n")
        print(f"qmlp agent: created token file {path} (copy it to the host running `qmlp hil`)", flush=True)
    return read_token(path)


def run(args: argparse.Namespace) -> int:
    from ..hil.agent import Agent, AgentConfig, ensure_folder, prepare_workdir

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be 0..65535")
    # socket timeouts need finite seconds; a day is far beyond any real job's silence
    if not 0 < args.idle_timeout <= MAX_IDLE_SECONDS:
        raise ConfigError(f"--idle-timeout {args.idle_timeout}: must be a number of seconds in (0, {MAX_IDLE_SECONDS}]")
    if args.clock_mhz is not None and not (math.isfinite(args.clock_mhz) and args.clock_mhz > 0):
        raise ConfigError(f"--clock-mhz {args.clock_mhz}: must be a positive number of MHz (e.g. 200)")
    prepare_workdir(args.workdir)
    if args.backend == "pynq":
        from ..hil.pynq_backend import PynqBackend

        if args.dma_batch < 1:
            raise ConfigError(f"--dma-batch {args.dma_batch}: must be at least 1")
        backend = PynqBackend(batch_size=args.dma_batch)
    else:
        from ..hil.sim import SimBackend

        # The agent process writes only under its work folder: the harness cache and the RTL
        # simulator's scratch files go there too (this process only, not the library default).
        cache = ensure_folder(args.cache_dir, "--cache-dir") if args.cache_dir else args.workdir / "verilator-cache"
        os.environ["QMLP_VERILATOR_CACHE"] = str(cache.resolve())
        tempfile.tempdir = str(ensure_folder(args.workdir / "tmp", "--workdir"))
        backend = SimBackend(clock_mhz=args.clock_mhz)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    config = AgentConfig(token=_token(args), workdir=args.workdir, host=args.host, port=args.port,
                         idle_seconds=args.idle_timeout)
    agent = Agent(config, backend)
    host, port = agent.start()
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(f"qmlp agent: WARNING listening on {host}: any machine that can reach it and holds the token can run jobs",
              flush=True)
    print(f"qmlp agent: listening on {host}:{port} (backend {backend.name}, workdir {agent.workdir})", flush=True)
    try:
        agent.serve_forever()
    except KeyboardInterrupt:
        print("qmlp agent: stopped", flush=True)
    return 0
