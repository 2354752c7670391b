"""HIL agent and virtual board costs: protocol round trips, payload throughput, RTL-backed RUN.

    .venv/bin/python -m bench.hil_agent [--model examples/can_ids_w2a2.onnx] [--no-write]

Writes the "HIL agent and virtual board" section of BENCHMARKS.md. Everything runs on
127.0.0.1; the numbers are for this machine (2 shared cores) and say where time goes, not how
fast a board is: the virtual board's `modelled` column is the fabric at the board clock, its
`wall` column is Verilator on the host.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from qmlp import ir
from qmlp.cli import main as qmlp_main
from qmlp.hil.agent import Agent, AgentConfig
from qmlp.hil.client import BoardClient, open_board
from qmlp.hil.sim import EngineRun, SimBackend
from qmlp.hil.suite import run_suite
from qmlp.sim.bitaccurate import run_integer

from .benchmarks_md import update_section

ROOT = Path(__file__).resolve().parent.parent


def _golden(df, rtl_dir, q):
    # The bit-accurate model as the engine: isolates protocol + agent cost from Verilator.
    return EngineRun(outputs=run_integer(df, q)[1][-1])


def _pcts(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def protocol_costs(out: Path) -> list[str]:
    df = ir.load(out / "dataflow.json")
    token = os.urandom(32).hex().encode()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        agent = Agent(AgentConfig(token=token, workdir=Path(work)), SimBackend(engine=_golden))
        agent.start()
        try:
            t = time.perf_counter()
            client = BoardClient(*agent.address, token)
            connect = time.perf_counter() - t
            times = []
            for _ in range(2000):
                t = time.perf_counter()
                client.hello()
                times.append(time.perf_counter() - t)
            p50, p99 = _pcts(times)
            rows.append(f"| connect + HMAC handshake | 1 | {connect * 1e3:.2f} ms | | |")
            rows.append(f"| HELLO round trip | 2000 | p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us | | |")
            t = time.perf_counter()
            client.load(out)
            rows.append(f"| LOAD (dataflow.json + rtl/, sha256-checked) | 1 | {(time.perf_counter() - t) * 1e3:.1f} ms | | |")
            rng = np.random.default_rng(0)
            for batch, reps in ((1, 500), (10_000, 10)):
                q = rng.integers(df.input.qmin, df.input.qmax + 1, size=(batch, df.input.features))
                times, overheads = [], []
                for _ in range(reps):
                    t = time.perf_counter()
                    reply = client.run(q=q)
                    times.append(time.perf_counter() - t)
                    overheads.append(times[-1] - reply.timings["wall_s"])  # minus the engine itself
                p50, p99 = _pcts(times)
                o50, _ = _pcts(overheads)
                moved = q.nbytes + sum(a.nbytes for a in (reply.out, reply.q, reply.y) if a is not None)
                rows.append(f"| RUN, bit-accurate engine | batch {batch}, {reps} calls | p50 {p50 * 1e3:.3f} ms, "
                            f"p99 {p99 * 1e3:.3f} ms | protocol + checks p50 {o50 * 1e3:.3f} ms "
                            f"({moved / 1e3:,.1f} kB moved, {moved / o50 / 1e6:.1f} MB/s) | engine = "
                            f"qmlp.sim.bitaccurate |")
            client.close()
        finally:
            agent.stop()
    return rows


def virtual_board_costs(out: Path) -> list[str]:
    df = ir.load(out / "dataflow.json")
    rows = []
    rng = np.random.default_rng(1)
    with open_board("sim") as board:
        t = time.perf_counter()
        board.load(out)
        board.run(q=np.zeros((1, df.input.features), dtype=np.int64))  # harness build (cached by content hash)
        rows.append(f"| first RUN incl. Verilator build or cache hit | 1 | {time.perf_counter() - t:.2f} s | | |")
        for batch, reps in ((1, 20), (1000, 5)):
            q = rng.integers(df.input.qmin, df.input.qmax + 1, size=(batch, df.input.features))
            walls, replies = [], []
            for _ in range(reps):
                t = time.perf_counter()
                replies.append(board.run(q=q))
                walls.append(time.perf_counter() - t)
            p50, _ = _pcts(walls)
            r = replies[-1]
            cycles = r.timings["cycles"]
            rows.append(f"| RUN, RTL under Verilator | batch {batch}, {reps} calls | wall p50 {p50 * 1e3:.1f} ms | "
                        f"{cycles} cycles = {r.timings['modelled_s'] * 1e6:.2f} us modelled | "
                        f"latency/vector {int(np.median(r.latency_cycles))} cycles |")
        t = time.perf_counter()
        report = run_suite(board, out, target="sim")
        rows.append(f"| whole HIL suite ({len(report.results)} cases) | {sum(x.vectors for x in report.results)} vectors | "
                    f"{time.perf_counter() - t:.1f} s | {'PASS' if report.passed else 'FAIL'} | |")
    return rows


def run(model: Path, write: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        if qmlp_main(["compile", str(model), "--board", "zcu104", "-o", str(out)]) != 0:
            raise SystemExit("compile failed")
        df = ir.load(out / "dataflow.json")
        rows = protocol_costs(out) + virtual_board_costs(out)
    body = "\n".join([
        f"Model `{model.relative_to(ROOT) if model.is_relative_to(ROOT) else model}` "
        f"({' -> '.join(str(n) for n in [df.input.features] + [l.out_features for l in df.layers])}), "
        f"compiled for zcu104 at {df.clock_mhz or 200:g} MHz; agent and client on 127.0.0.1, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs (shared). "
        "Reproduce: `.venv/bin/python -m bench.hil_agent`.",
        "",
        "| what | size | time | throughput / fabric | note |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "`modelled` = RTL cycles from the batch's first input beat to its last output beat at the board "
        "clock, output always ready (fabric only: no DMA, driver or network). `wall` = host time of the "
        "Verilator process; it does not predict a board.",
    ])
    if write:
        update_section("HIL agent and virtual board", body)
    return body


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples" / "can_ids_w2a2.onnx")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    print(run(args.model.resolve(), not args.no_write))
