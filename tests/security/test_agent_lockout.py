"""Strangers cannot lock a token holder out of the agent (issue 14, finding 3).

Everything runs on loopback against an in-process agent; strangers come from other 127.0.0.x
addresses (all of 127/8 is loopback on Linux) so the per-address quota is exercised, and every
stranger loop stops by itself after a bounded time and count."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque

import numpy as np

from hil.conftest import TOKEN, design_dir, make_agent  # noqa: F401  (design_dir is a fixture)
from qmlp import ir
from qmlp.hil.client import BoardClient
from qmlp.hil.protocol import Limits, recv_frame
from qmlp.sim.bitaccurate import run_integer


def _connect_from(address: str, agent) -> socket.socket:
    sock = socket.socket()
    sock.bind((address, 0))
    sock.settimeout(5)
    sock.connect(agent.address)
    return sock


def _dropped(sock: socket.socket) -> bool:
    """True once the agent has closed ``sock`` (after its challenge), False if still open after 5 s."""
    recv_frame(sock, Limits(), first_byte_seconds=5)  # the challenge every connection gets
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _served(agent, df: ir.Dataflow) -> float:
    """One full token-holder session (connect, HELLO, RUN, BYE); returns its seconds."""
    start = time.monotonic()
    with BoardClient(*agent.address, TOKEN, timeout_s=10, connect_timeout_s=10) as client:
        assert client.hello()["design"] is not None
        q = np.full((1, df.input.features), df.input.qmax)
        assert np.array_equal(client.run(q=q).out, run_integer(df, q)[1][-1])
    return time.monotonic() - start


def _hammer(address: str, agent, stop: threading.Event, opened: list[int], hold: int = 12,
            max_count: int = 3000) -> None:
    """Open silent connections from ``address`` as fast as possible, keeping ``hold`` open."""
    socks: deque[socket.socket] = deque()
    try:
        while not stop.is_set() and opened[0] < max_count:
            try:
                socks.append(_connect_from(address, agent))
            except OSError:
                continue
            opened[0] += 1
            if len(socks) > hold:
                socks.popleft().close()
    finally:
        for sock in socks:
            sock.close()


def test_strangers_hammering_never_keep_a_token_holder_out(tmp_path, design_dir):
    agent = make_agent(tmp_path / "w")
    df = ir.load(design_dir / "dataflow.json")
    stop = threading.Event()
    counts = [[0] for _ in range(4)]
    strangers = [threading.Thread(target=_hammer, args=(f"127.0.0.{2 + i}", agent, stop, counts[i]), daemon=True)
                 for i in range(4)]
    try:
        with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
            client.load(design_dir)
        for thread in strangers:
            thread.start()
        pending_seen, sessions, end = 0, [], time.monotonic() + 3.0
        while time.monotonic() < end:
            sessions.append(_served(agent, df))  # raises (BUSY, closed, timeout) if kept out
            pending_seen = max(pending_seen, len(agent._pending))
            assert len(agent._pending) <= agent.config.max_pending
    finally:
        stop.set()
        for thread in strangers:
            thread.join(10)
        agent.stop()
    assert len(sessions) >= 3 and max(sessions) < 5, sessions
    assert sum(c[0] for c in counts) > 100  # the strangers really hammered
    assert pending_seen >= 16  # ... and filled their addresses' quotas while the holder was served


def test_silent_connections_from_the_holders_own_address_do_not_lock_it_out(tmp_path, design_dir):
    """The original finding: four silent connections, reopened as soon as they are dropped,
    used to fill max_connections so a token holder got BUSY every time."""
    agent = make_agent(tmp_path / "w", handshake_seconds=0.5)
    df = ir.load(design_dir / "dataflow.json")
    stop = threading.Event()

    def silent() -> None:
        for _ in range(20):  # bounded: at most 20 reconnects each
            if stop.is_set():
                return
            with _connect_from("127.0.0.1", agent) as sock:
                sock.settimeout(2)
                try:
                    while sock.recv(4096):  # hold it until the agent drops it
                        pass
                except OSError:
                    pass

    threads = [threading.Thread(target=silent, daemon=True) for _ in range(4)]
    try:
        with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
            client.load(design_dir)
        for thread in threads:
            thread.start()
        for _ in range(8):
            _served(agent, df)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        agent.stop()


def test_per_address_quota_drops_that_address_oldest_first(tmp_path):
    agent = make_agent(tmp_path / "w", max_pending_per_address=3)
    try:
        socks = [_connect_from("127.0.0.9", agent) for _ in range(5)]
        other = _connect_from("127.0.0.10", agent)
        recv_frame(other, Limits(), first_byte_seconds=5)  # accepted and registered
        assert [_dropped(s) for s in socks[:2]] == [True, True]  # the two oldest made room
        assert sorted(agent._pending.values()) == ["127.0.0.10"] + ["127.0.0.9"] * 3
        for sock in (*socks, other):
            sock.close()
    finally:
        agent.stop()


def test_global_quota_drops_the_oldest_pending_connection(tmp_path):
    agent = make_agent(tmp_path / "w", max_pending=4, max_pending_per_address=3)
    try:
        first = _connect_from("127.0.0.11", agent)
        rest = [_connect_from(f"127.0.0.{12 + i}", agent) for i in range(4)]
        for sock in rest:
            recv_frame(sock, Limits(), first_byte_seconds=5)  # accepted and registered
        assert _dropped(first)
        assert len(agent._pending) == 4
        for sock in (first, *rest):
            sock.close()
    finally:
        agent.stop()


def test_a_silent_stranger_is_dropped_at_the_handshake_deadline(tmp_path):
    handshake = 0.3
    agent = make_agent(tmp_path / "w", handshake_seconds=handshake)
    try:
        sock = _connect_from("127.0.0.1", agent)
        recv_frame(sock, Limits(), first_byte_seconds=5)
        start = time.monotonic()
        reply = recv_frame(sock, Limits(), first_byte_seconds=5)
        assert reply.header == {"type": "error", "code": "TIMEOUT",
                                "message": "no complete AUTH frame within the handshake deadline"}
        assert time.monotonic() - start < handshake + 2
        sock.close()
    finally:
        agent.stop()


def test_strangers_cannot_flood_the_agents_log(tmp_path, caplog):
    agent = make_agent(tmp_path / "w", max_pending_per_address=2, auth_failure_delay_seconds=0.0)
    caplog.set_level(logging.INFO, logger="qmlp.hil.agent")
    try:
        start = time.monotonic()
        for _ in range(200):  # each one drops an older one, then is itself dropped or closed
            sock = _connect_from("127.0.0.20", agent)
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            sock.close()
        seconds = time.monotonic() - start
        lines = [r for r in caplog.records if r.name == "qmlp.hil.agent" and "127.0.0.20" in r.getMessage()]
        assert len(lines) <= seconds + 2, [r.getMessage() for r in lines]
        if len(lines) > 1:
            assert "similar lines suppressed" in lines[-1].getMessage()
    finally:
        agent.stop()
