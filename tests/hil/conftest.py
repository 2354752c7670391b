"""Fixtures for the HIL tests: a small design folder, agents on ephemeral 127.0.0.1 ports.

Protocol and security tests drive the agent with the bit-accurate simulator as its engine (they
test the agent, not the RTL, and stay fast); the suite tests further down use the real RTL."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from qmlp import ir
from qmlp.hil.agent import Agent, AgentConfig
from qmlp.hil.protocol import Limits, agent_proof, client_proof, new_nonce, recv_frame, send_frame
from qmlp.hil.sim import EngineRun, SimBackend
from qmlp.sim.bitaccurate import run_integer
from qmlp.testing import random_dataflow

TOKEN = b"test-token-0123456789abcdef"


def golden_engine(df: ir.Dataflow, rtl_dir: Path, q: np.ndarray) -> EngineRun:
    """The bit-accurate model in place of Verilator: for tests of the agent's protocol layer only."""
    return EngineRun(outputs=run_integer(df, q)[1][-1], cycles=7 * len(q) + 3,
                     latency_cycles=np.full(len(q), 5), registers={"INFERENCES": len(q), "LAST_LATENCY": 5})


@pytest.fixture
def design_dir(tmp_path: Path) -> Path:
    """dataflow.json + an rtl/ folder: enough for the agent's checks with the golden engine."""
    out = tmp_path / "out"
    (out / "rtl").mkdir(parents=True)
    ir.save(random_dataflow(3, widths=(10, 6, 4)), out / "dataflow.json")
    (out / "rtl" / "qmlp_top.v").write_text("module qmlp_top; endmodule\n")
    return out


def make_agent(workdir: Path, **config) -> Agent:
    agent = Agent(AgentConfig(token=TOKEN, workdir=workdir, **config), SimBackend(engine=golden_engine))
    agent.start()
    return agent


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    agent = make_agent(tmp_path / "agentwork", idle_seconds=20.0, handshake_seconds=3.0,
                       limits=Limits(max_payload=1 << 20, frame_seconds=1.5, recv_seconds=1.0))
    yield agent
    agent.stop()


def raw_connect(agent: Agent) -> tuple[socket.socket, str]:
    """A plain socket with the challenge already read: (socket, server nonce)."""
    sock = socket.create_connection(agent.address, timeout=5)
    challenge = recv_frame(sock, Limits(), first_byte_seconds=5)
    return sock, challenge.header["nonce"]


def raw_authenticated(agent: Agent) -> socket.socket:
    sock, nonce = raw_connect(agent)
    mine = new_nonce()
    send_frame(sock, {"cmd": "AUTH", "client_nonce": mine, "proof": client_proof(TOKEN, nonce, mine)})
    reply = recv_frame(sock, Limits(), first_byte_seconds=5)
    assert reply.header == {"type": "ok", "cmd": "AUTH", "proof": agent_proof(TOKEN, nonce, mine)}
    return sock


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def write_token(tmp_path: Path):
    def write(value: bytes = TOKEN) -> Path:
        path = tmp_path / "token"
        path.write_bytes(value + b"\n")
        os.chmod(path, 0o600)
        return path
    return write


@pytest.fixture(scope="session")
def compiled_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small compiled design with real RTL and the argmax unit (the example model covers raw
    outputs): folded by hand, emitted with ``qmlp.hwgen.emit.emit_rtl``. Its Verilator harness is
    cached by content hash, so every test (and subprocess) after the first reuses one build."""
    from dataclasses import replace

    from qmlp.hwgen.emit import emit_rtl
    from qmlp.ir import Folding, StreamFormat

    df = random_dataflow(11, widths=(12, 8, 6, 4), name="hil_small")
    folds = (Folding(pe=2, simd=4), Folding(pe=2, simd=2), Folding(pe=2, simd=2))
    df = replace(df, layers=tuple(replace(layer, folding=f) for layer, f in zip(df.layers, folds)),
                 stream=StreamFormat(in_elems_per_beat=4, out_elems_per_beat=1), clock_mhz=200.0, argmax=True)
    ir.verify(df)
    out = tmp_path_factory.mktemp("hil") / "out"
    out.mkdir()
    ir.save(df, out / "dataflow.json")
    emit_rtl(df, out / "rtl")
    return out


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_MODEL = EXAMPLES / "can_ids_w2a2.onnx"


def compile_example(model: Path, root: Path) -> Path:
    """`qmlp compile examples/<model>.onnx --board zcu104` (the real flow, a few seconds)."""
    from qmlp.cli import main

    out = root / model.stem
    assert main(["compile", str(model), "--board", "zcu104", "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def compiled_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_example(EXAMPLE_MODEL, tmp_path_factory.mktemp("example"))
