"""The agent against well-behaved and hostile clients: every refusal is a clean error frame, the
agent keeps serving afterwards and writes nothing outside its work folder."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from qmlp.hil.agent import Refusal, safe_relative_path
from qmlp.hil.client import BoardBusy, BoardClient
from qmlp.hil.protocol import (MAGIC, PREFIX, FrameTooLarge, HilError, Limits, RemoteError, array_part, client_proof, encode_frame,
                               file_part, new_nonce, recv_frame, send_frame)
from qmlp.sim.bitaccurate import run_integer, simulate
from qmlp import ir
from qmlp.testing import wait_for

from .conftest import TOKEN, files_under, raw_authenticated, raw_connect


def _still_serves(agent, design_dir: Path) -> None:
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        assert client.hello()["backend"] == "sim"
        client.load(design_dir)
        df = ir.load(design_dir / "dataflow.json")
        q = np.full((2, df.input.features), df.input.qmax)
        assert np.array_equal(client.run(q=q).out, run_integer(df, q)[1][-1])


def _error(sock: socket.socket) -> tuple[str, str]:
    reply = recv_frame(sock, Limits(), first_byte_seconds=5)
    assert reply.header["type"] == "error", reply.header
    return reply.header["code"], reply.header["message"]


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_hello_load_run_bench_reset(agent, design_dir):
    df = ir.load(design_dir / "dataflow.json")
    with BoardClient(*agent.address, TOKEN) as client:
        hello = client.hello()
        assert hello["protocol"] == 1 and hello["board"] == "virtual" and hello["rails"] == [] and hello["design"] is None
        info = client.load(design_dir)
        assert info["name"] == df.name and info["files"] == 2
        x = np.random.default_rng(0).normal(scale=3, size=(7, df.input.features)).astype(np.float32)
        reply = client.run(x)
        golden = simulate(df, x)
        assert np.array_equal(reply.q, golden.inputs)
        assert np.array_equal(reply.out, golden.activations[-1])
        assert np.array_equal(reply.y, golden.outputs)
        assert reply.timings["cycles"] == 7 * 7 + 3 and reply.timings["modelled_s"] == pytest.approx(52 / 200e6)
        assert reply.counters == {"inferences": 7, "last_latency_cycles": 5}
        bench = client.bench(warmup=1, iterations=3, batch=2)
        assert len(bench.wall_s) == 3 and np.array_equal(bench.cycles, [17, 17, 17])
        assert np.array_equal(bench.inferences, [2, 2, 2]) and not bench.info["truncated"]
        assert client.reset()["design"] == info["design"]
        with pytest.raises(RemoteError, match="NO_RAILS"):
            client.power("start")
        assert client.hello()["design"] == info["design"]


def test_requests_with_bad_arguments_are_refused_and_the_session_goes_on(agent, design_dir):
    df = ir.load(design_dir / "dataflow.json")
    n = df.input.features
    with BoardClient(*agent.address, TOKEN) as client:
        with pytest.raises(RemoteError, match="NOT_LOADED"):
            client.run(q=np.zeros((1, n)))
        client.load(design_dir)
        cases = [
            ({"cmd": "NOPE"}, [], "UNKNOWN_COMMAND"),
            ({"cmd": "RUN"}, [], "BAD_REQUEST"),
            ({"cmd": "RUN"}, [array_part("q", np.full((1, n), df.input.qmax + 1))], "BAD_INPUT"),
            ({"cmd": "RUN"}, [array_part("q", np.zeros((1, n + 1), np.int64))], "BAD_INPUT"),
            ({"cmd": "RUN"}, [array_part("x", np.full((1, n), np.nan, np.float32))], "BAD_INPUT"),
            ({"cmd": "RUN"}, [array_part("q", np.zeros((0, n), np.int64))], "LIMIT"),
            ({"cmd": "BENCH", "iterations": 10**9}, [], "LIMIT"),
            ({"cmd": "BENCH", "batch": "many"}, [], "LIMIT"),
            ({"cmd": "POWER", "action": "explode"}, [], "BAD_REQUEST"),
            ({"cmd": "LOAD"}, [array_part("q", np.zeros(3))], "BAD_REQUEST"),
            ({"cmd": "LOAD"}, [file_part("rtl/top.v", b"x")], "BAD_DESIGN"),
            ({"cmd": "LOAD"}, [file_part("dataflow.json", b"{not json")], "BAD_DESIGN"),
            ({"cmd": "LOAD"}, [file_part("dataflow.json", (design_dir / "dataflow.json").read_bytes())], "BAD_DESIGN"),
        ]
        for header, parts, code in cases:
            with pytest.raises(RemoteError) as refused:
                client.request(header, parts)
            assert refused.value.code == code, (header, refused.value)
        assert client.hello()["design"] is not None  # the loaded design survived all of it
    _still_serves(agent, design_dir)


@pytest.mark.parametrize("token", [b"wrong-token-0123456789abcdef", b""])
def test_wrong_or_missing_token_is_refused(agent, design_dir, token):
    sock, nonce = raw_connect(agent)
    mine = new_nonce()
    header = {"cmd": "AUTH", "client_nonce": mine}
    if token:
        header["proof"] = client_proof(token, nonce, mine)
    send_frame(sock, header)
    code, message = _error(sock)
    assert code == "AUTH_FAILED" and ("wrong token" in message or "needs client_nonce and proof" in message)
    assert _closed(sock)
    with pytest.raises(RemoteError, match="AUTH_FAILED"):
        BoardClient(*agent.address, b"another-token-0123456789")
    _still_serves(agent, design_dir)


def test_commands_before_authentication_are_refused(agent, design_dir):
    sock, _ = raw_connect(agent)
    send_frame(sock, {"cmd": "RUN"})
    assert _error(sock)[0] == "AUTH_REQUIRED" and _closed(sock)
    sock, _ = raw_connect(agent)
    sock.sendall(encode_frame({"cmd": "AUTH"}, [file_part("big", b"x" * 100)])[0])  # payload before auth
    assert _error(sock)[0] == "FRAME_TOO_LARGE" and _closed(sock)
    sock, _ = raw_connect(agent)
    sock.sendall(PREFIX.pack(MAGIC, 4000, 0) + b"[" * 2000 + b"]" * 2000)  # nesting bomb within the 4 KiB
    assert _error(sock)[0] == "BAD_FRAME" and _closed(sock)
    _still_serves(agent, design_dir)


@pytest.mark.parametrize("data, code", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "BAD_FRAME"),
    (PREFIX.pack(MAGIC, 5, 0) + b"{oops", "BAD_FRAME"),
    (PREFIX.pack(MAGIC, 2, 1 << 31) + b"{}", "FRAME_TOO_LARGE"),
    (PREFIX.pack(MAGIC, 1 << 30, 0), "FRAME_TOO_LARGE"),
    (PREFIX.pack(MAGIC, 60000, 0) + b"[" * 30000 + b"]" * 30000, "BAD_FRAME"),  # nesting bomb
    (PREFIX.pack(MAGIC, 4, 0) + b"\xff\xfe{}", "BAD_FRAME"),
])
def test_malformed_and_oversized_frames_after_auth(agent, design_dir, data, code):
    sock = raw_authenticated(agent)
    sock.sendall(data)
    assert _error(sock)[0] == code and _closed(sock)
    _still_serves(agent, design_dir)


def test_a_crashing_command_is_an_internal_error_and_the_session_goes_on(agent, design_dir):
    def broken(frame):
        raise ZeroDivisionError("bug")

    agent._commands["RESET"] = broken
    with BoardClient(*agent.address, TOKEN) as client:
        with pytest.raises(RemoteError, match="INTERNAL: RESET failed inside the agent: ZeroDivisionError: bug"):
            client.reset()
        assert client.hello()["protocol"] == 1


def test_truncated_frame_and_vanished_client(agent, design_dir):
    sock = raw_authenticated(agent)
    sock.sendall(encode_frame({"cmd": "HELLO", "pad": "y" * 100})[0][:40])
    sock.close()  # vanishes mid-frame while owning the board
    _still_serves(agent, design_dir)  # the board is free again at once


def test_slowloris_client_is_cut_off(agent, design_dir):
    sock = raw_authenticated(agent)
    frame = encode_frame({"cmd": "HELLO", "pad": "z" * 200})[0]
    start = time.monotonic()
    try:
        for byte in frame:  # one byte every 0.2 s: each recv succeeds, the frame never completes
            sock.sendall(bytes([byte]))
            time.sleep(0.2)
            if time.monotonic() - start > 5:
                break
    except OSError:
        pass
    code, message = _error(sock)
    assert code == "TIMEOUT" and "not complete within 1.5 s" in message
    assert time.monotonic() - start < 5
    _still_serves(agent, design_dir)


def test_silent_client_times_out_during_handshake(tmp_path, design_dir):
    from .conftest import make_agent

    agent = make_agent(tmp_path / "w", handshake_seconds=0.3, idle_seconds=0.5)
    try:
        sock, _ = raw_connect(agent)  # never answers the challenge
        assert _error(sock)[0] == "TIMEOUT" and _closed(sock)
        owner = raw_authenticated(agent)  # authenticates, then stays idle and releases the board
        assert _error(owner)[0] == "TIMEOUT" and _closed(owner)
        _still_serves(agent, design_dir)
    finally:
        agent.stop()


@pytest.mark.parametrize("name", ["../escape.v", "/etc/passwd", "rtl/../../x", "..", ".hidden", "rtl//a.v",
                                  "a\\..\\b", "C:x", "rtl/\x00.v", "a/b/c/d/e", "x" * 300, ""])
def test_path_traversal_names_are_refused(agent, design_dir, tmp_path, name):
    before = files_under(tmp_path)
    with BoardClient(*agent.address, TOKEN) as client:
        parts = [file_part("dataflow.json", (design_dir / "dataflow.json").read_bytes()),
                 file_part("rtl/top.v", b"module t; endmodule"), file_part(name, b"pwned")]
        with pytest.raises(RemoteError) as refused:
            client.request({"cmd": "LOAD"}, parts)
        # An empty name already breaks the framing rules (the connection ends); others are BAD_NAME.
        assert refused.value.code == ("BAD_FRAME" if name == "" else "BAD_NAME")
    assert files_under(tmp_path) == before  # nothing written anywhere, not even in the work folder's designs
    _still_serves(agent, design_dir)


def test_safe_relative_path_accepts_plain_names():
    assert str(safe_relative_path("rtl/qmlp_mvau.v")) == "rtl/qmlp_mvau.v"
    assert str(safe_relative_path("driver/qmlp_driver/__init__.py")) == "driver/qmlp_driver/__init__.py"
    with pytest.raises(Refusal, match="no '..'"):
        safe_relative_path("rtl/../x")


def test_corrupt_file_hash_is_refused_and_nothing_is_stored(agent, design_dir):
    with BoardClient(*agent.address, TOKEN) as client:
        client.load(design_dir)
        loaded = client.hello()["design"]
        stored = files_under(agent.workdir)
        good = file_part("rtl/top.v", b"module t; endmodule\n")
        corrupt = type(good)(name="rtl/top.v", data=b"module t; endmodule\n" + b"\x00", sha256=good.sha256)
        with pytest.raises(RemoteError) as refused:
            client.request({"cmd": "LOAD"}, [file_part("dataflow.json", (design_dir / "dataflow.json").read_bytes()), corrupt])
        assert refused.value.code == "HASH_MISMATCH" and "rtl/top.v" in str(refused.value)
        assert files_under(agent.workdir) == stored and client.hello()["design"] == loaded
    _still_serves(agent, design_dir)


def test_uploads_stay_inside_the_work_folder(agent, design_dir, tmp_path):
    outside = files_under(tmp_path) - {str(p.relative_to(tmp_path)) for p in agent.workdir.rglob("*")}
    with BoardClient(*agent.address, TOKEN) as client:
        client.load(design_dir)
        client.load(design_dir)
    inside = files_under(agent.workdir)
    assert all(p.startswith("designs") for p in inside)
    designs = [p for p in (agent.workdir / "designs").iterdir()]
    assert len(designs) == 1 and sorted(files_under(designs[0])) == ["dataflow.json", "rtl", "rtl/qmlp_top.v"]
    now_outside = files_under(tmp_path) - {str(p.relative_to(tmp_path)) for p in agent.workdir.rglob("*")}
    assert now_outside - {"agentwork"} == outside - {"agentwork"}


def test_second_client_while_a_job_runs_gets_busy(tmp_path, design_dir):
    from .conftest import make_agent

    started, release = threading.Event(), threading.Event()
    agent = make_agent(tmp_path / "w")
    inner = agent.backend._engine

    def slow_engine(df, rtl_dir, q):
        started.set()
        release.wait(10)
        return inner(df, rtl_dir, q)

    agent.backend._engine = slow_engine
    try:
        with BoardClient(*agent.address, TOKEN) as first:
            first.load(design_dir)
            df = ir.load(design_dir / "dataflow.json")
            result = {}
            job = threading.Thread(target=lambda: result.setdefault("r", first.run(q=np.zeros((3, df.input.features)))))
            job.start()
            assert started.wait(5)
            with pytest.raises(BoardBusy, match="BUSY: another client holds the board"):
                BoardClient(*agent.address, TOKEN)
            release.set()
            job.join(10)
            assert np.array_equal(result["r"].out, run_integer(df, np.zeros((3, df.input.features), np.int64))[1][-1])
        _still_serves(agent, design_dir)  # the first client left: the board is free
    finally:
        release.set()
        agent.stop()


def test_connection_limit_counts_authenticated_sessions_only(tmp_path, design_dir):
    """Silent strangers are not sessions; past max_connections token holders get BUSY at once."""
    from .conftest import make_agent

    agent = make_agent(tmp_path / "w", max_connections=2, busy_grace_seconds=2.0)
    try:
        strangers = [raw_connect(agent)[0] for _ in range(3)]  # in the handshake: no session slot
        owner = raw_authenticated(agent)  # session 1, owns the board
        waiting, nonce = raw_connect(agent)  # session 2: authenticated, waits for the board
        mine = new_nonce()
        send_frame(waiting, {"cmd": "AUTH", "client_nonce": mine, "proof": client_proof(TOKEN, nonce, mine)})
        wait_for(lambda: not agent._slots._value, "session 2 to hold its slot", timeout=5)
        extra, nonce = raw_connect(agent)
        send_frame(extra, {"cmd": "AUTH", "client_nonce": mine, "proof": client_proof(TOKEN, nonce, mine)})
        code, message = _error(extra)
        assert code == "BUSY" and "too many connections" in message and _closed(extra)
        assert _error(waiting) == ("BUSY", "another client holds the board; retry when its job has finished")
        for sock in (owner, waiting, *strangers):
            sock.close()
        deadline = time.monotonic() + 5
        while True:  # the board is free once the agent notices the owner's closed socket
            try:
                _still_serves(agent, design_dir)
                break
            except (RemoteError, HilError):
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        agent.stop()


def test_agent_refuses_short_tokens_and_binds_loopback_by_default(tmp_path):
    from qmlp.errors import QmlpError
    from qmlp.hil.agent import Agent, AgentConfig
    from qmlp.hil.sim import SimBackend

    with pytest.raises(QmlpError, match="shorter than 16 bytes"):
        Agent(AgentConfig(token=b"short", workdir=tmp_path), SimBackend())
    assert AgentConfig(token=TOKEN, workdir=tmp_path).host == "127.0.0.1"


def test_client_that_stops_reading_is_dropped(tmp_path, design_dir):
    from .conftest import make_agent

    agent = make_agent(tmp_path / "w", limits=Limits(max_payload=64 << 20, frame_seconds=1.5, recv_seconds=1.0))
    try:
        _stop_reading(agent, design_dir)
    finally:
        agent.stop()


def _stop_reading(agent, design_dir):
    df = ir.load(design_dir / "dataflow.json")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a tiny window
    sock.connect(agent.address)
    sock.settimeout(5)
    challenge = recv_frame(sock, Limits(), first_byte_seconds=5)
    mine = new_nonce()
    send_frame(sock, {"cmd": "AUTH", "client_nonce": mine, "proof": client_proof(TOKEN, challenge.header["nonce"], mine)})
    recv_frame(sock, Limits(), first_byte_seconds=5)
    files = [file_part("dataflow.json", (design_dir / "dataflow.json").read_bytes()), file_part("rtl/qmlp_top.v", b"m")]
    send_frame(sock, {"cmd": "LOAD"}, files)
    recv_frame(sock, Limits(), first_byte_seconds=5)
    q = np.zeros((65_000, df.input.features), dtype=np.int64)  # the ~10 MB answer cannot fit in socket buffers
    send_frame(sock, {"cmd": "RUN"}, [array_part("q", q)])
    start = time.monotonic()
    while True:  # the board is released once the agent gives up sending (frame_seconds = 1.5 s)
        try:
            _still_serves(agent, design_dir)
            break
        except RemoteError as error:
            assert error.code == "BUSY" and time.monotonic() - start < 10
            time.sleep(0.2)
    assert time.monotonic() - start < 10
    sock.close()


def test_stop_ends_idle_sessions_promptly(tmp_path):
    from .conftest import make_agent

    agent = make_agent(tmp_path / "w", idle_seconds=300.0)
    idle = raw_authenticated(agent)  # owns the board and says nothing
    start = time.monotonic()
    agent.stop()
    assert time.monotonic() - start < 3
    assert _closed(idle)
    with pytest.raises(HilError, match="cannot reach agent"):
        BoardClient(*agent.address, TOKEN, connect_timeout_s=2)


def _client_against(impostor, error: type[Exception], match: str) -> None:
    """Connect a BoardClient to a one-shot server running ``impostor(conn)``; expect ``error``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        with conn:
            impostor(conn)
            conn.settimeout(5)
            try:
                conn.recv(1)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(error, match=match):
            BoardClient(*server.getsockname(), TOKEN, connect_timeout_s=5)
    finally:
        thread.join(5)
        server.close()


def test_client_refuses_an_impostor_agent():
    """An agent that does not hold the token cannot fake its proof: the client stops there."""
    def impostor(conn):
        send_frame(conn, {"type": "challenge", "protocol": 1, "nonce": new_nonce()})
        recv_frame(conn, Limits(), first_byte_seconds=5)
        send_frame(conn, {"type": "ok", "cmd": "AUTH", "proof": "0" * 64})  # accepts anyone

    _client_against(impostor, HilError, "failed to prove it holds the token; refusing to talk to it")


def test_the_client_gives_an_unproven_agent_no_room():
    """An impostor's challenge declaring a huge payload is refused before anything is read."""
    def impostor(conn):
        head = json.dumps({"type": "challenge", "nonce": "ab" * 32,
                           "parts": [{"name": "x", "kind": "file", "size": 1 << 33, "sha256": "0" * 64}]}).encode()
        conn.sendall(PREFIX.pack(MAGIC, len(head), 1 << 33) + head)

    _client_against(impostor, FrameTooLarge, "payload of 8589934592 bytes exceeds the limit of 0")
