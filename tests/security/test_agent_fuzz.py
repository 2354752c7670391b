"""Seeded, bounded fuzzing of the agent: every answer is ``ok`` or a one-line refusal (never
INTERNAL), nothing before authentication carries more than a fixed text, and the agent keeps
serving afterwards (issue 14)."""

from __future__ import annotations

import json
import random
import socket
from typing import Any, Iterator

import numpy as np
import pytest

from hil.conftest import TOKEN, design_dir, make_agent, raw_connect  # noqa: F401  (design_dir is a fixture)
from qmlp import ir
from qmlp.hil.client import BoardClient
from qmlp.hil.protocol import (ConnectionClosed, FrameTimeout, Limits, RemoteError, array_part, client_proof,
                               encode_frame, file_part, new_nonce, recv_frame)
from security.test_agent_requests import PREAUTH_MESSAGES

# Values a hostile dataflow.json might put anywhere: wrong types, extremes, empties.
VALUES: list[Any] = [None, -1, 0, 1, 2**70, -(2**70), 1e308, -1e-300, "x", "INT999", [], {}, [[1]], True, "", [None]]


def _paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc[:3]):
            yield from _paths(value, prefix + (index,))


def _mutate(doc: dict, rng: random.Random) -> dict:
    """``doc`` with one field (at any depth) replaced by a hostile value."""
    doc = json.loads(json.dumps(doc))
    path = rng.choice(list(_paths(doc))[1:])
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = rng.choice(VALUES)
    return doc


def test_mutated_dataflow_uploads_get_ok_or_one_line_refusals(tmp_path, design_dir):
    agent = make_agent(tmp_path / "w")
    good = json.loads((design_dir / "dataflow.json").read_text())
    rng, outcomes = random.Random(14), {}
    try:
        with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
            for _ in range(150):
                document = _mutate(good, rng)
                try:
                    client.request({"cmd": "LOAD"}, [file_part("dataflow.json", json.dumps(document).encode()),
                                                     file_part("rtl/qmlp_top.v", b"module m; endmodule\n")])
                    df = ir.from_json(document)
                    q = np.full((2, df.input.features), max(df.input.qmin, 0))
                    client.request({"cmd": "RUN"}, [array_part("q", q)])
                    outcome = "ok"
                except RemoteError as refused:
                    assert refused.code != "INTERNAL" and "\n" not in refused.remote_message, refused
                    outcome = refused.code
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            client.load(design_dir)  # the session is still good for a real design
    finally:
        agent.stop()
    assert outcomes.get("BAD_DESIGN", 0) > 50, outcomes


def _auth_frame(nonce: str) -> bytes:
    mine = new_nonce()
    return encode_frame({"cmd": "AUTH", "client_nonce": mine, "proof": client_proof(TOKEN, nonce, mine)})[0]


def test_mutated_handshakes_get_fixed_texts(tmp_path, design_dir):
    agent = make_agent(tmp_path / "w", auth_failure_delay_seconds=0.0, handshake_seconds=2.0)
    rng, answered = random.Random(14), {}
    try:
        for _ in range(150):
            sock, nonce = raw_connect(agent)
            frame = bytearray(_auth_frame(nonce))
            for _ in range(rng.randint(1, 4)):  # flip, drop or insert a few bytes
                at = rng.randrange(len(frame))
                choice = rng.random()
                if choice < 0.5:
                    frame[at] = rng.randrange(256)
                elif choice < 0.75:
                    del frame[at]
                else:
                    frame.insert(at, rng.randrange(256))
            try:
                sock.sendall(bytes(frame))
                sock.shutdown(socket.SHUT_WR)  # a truncated frame ends here instead of at the deadline
            except OSError:  # the agent already answered and closed
                pass
            try:
                reply = recv_frame(sock, Limits(), first_byte_seconds=5)
            except (ConnectionClosed, FrameTimeout):
                sock.close()
                continue
            header = reply.header
            assert header.get("type") == "ok" or header.get("message") in PREAUTH_MESSAGES, header
            answered[header.get("code", "ok")] = answered.get(header.get("code", "ok"), 0) + 1
            sock.close()
        with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
            assert client.load(design_dir)["files"] == 2
        print(answered)
        assert sum(answered.values()) >= 50 and len(answered) >= 3, answered  # refusals of several kinds were read
    except socket.timeout:
        pytest.fail("the agent stopped answering")
    finally:
        agent.stop()
