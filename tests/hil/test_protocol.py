"""Framing, payload parts and the challenge-response, over a socket pair."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from qmlp.hil.protocol import (MAGIC, PREFIX, ConnectionClosed, FrameTimeout, FrameTooLarge, HilError, Limits,
                               ProtocolError, agent_proof, array_part, check_proof, client_proof, encode_frame,
                               file_part, read_token, recv_frame, send_frame)


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_frame_round_trip_with_arrays_and_files(pair):
    a, b = pair
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    q = np.array([[-128, 127, 0]], dtype=np.int64)
    send_frame(a, {"cmd": "RUN", "n": 3}, [array_part("x", x), array_part("q", q), file_part("rtl/a.v", b"module a;")])
    frame = recv_frame(b, Limits())
    assert frame.header["cmd"] == "RUN" and frame.header["n"] == 3
    assert np.array_equal(frame.array("x"), x) and frame.array("x").dtype == np.float32
    assert np.array_equal(frame.array("q"), q) and frame.array("q").dtype == np.int64
    assert frame.part("rtl/a.v").data == b"module a;"
    assert frame.part("rtl/a.v").sha256 == "%s" % __import__("hashlib").sha256(b"module a;").hexdigest()


def test_object_arrays_are_not_sendable():
    with pytest.raises(HilError, match="cannot be sent"):
        array_part("x", np.array([object()], dtype=object))


def _raw(header: bytes, payload: bytes = b"", magic: bytes = MAGIC, payload_len: int | None = None) -> bytes:
    return PREFIX.pack(magic, len(header), len(payload) if payload_len is None else payload_len) + header + payload


@pytest.mark.parametrize("data, error, message", [
    (_raw(b"{}", magic=b"HTTP"), ProtocolError, "bad magic"),
    (_raw(b"not json"), ProtocolError, "not valid JSON"),
    (_raw(b"[1, 2]"), ProtocolError, "JSON object"),
    (_raw(b'{"parts": [{"name": "x", "kind": "array", "dtype": "|O", "shape": [1], "size": 8}]}', b"\0" * 8),
     ProtocolError, "dtype '|O' not allowed"),
    (_raw(b'{"parts": [{"name": "x", "kind": "array", "dtype": "<i8", "shape": [2], "size": 8}]}', b"\0" * 8),
     ProtocolError, "shape"),
    (_raw(b'{"parts": [{"name": "x", "kind": "array", "dtype": "<i8", "shape": [1], "size": 8}]}', b"\0" * 9),
     ProtocolError, "do not add up"),
    (_raw(b'{"parts": [{"name": "f", "kind": "file", "size": 1}]}', b"a"), ProtocolError, "no sha256"),
])
def test_malformed_frames_are_rejected(pair, data, error, message):
    a, b = pair
    a.sendall(data)
    with pytest.raises(error, match=message):
        recv_frame(b, Limits(recv_seconds=0.5, frame_seconds=1))


def test_oversized_frames_are_rejected_before_reading_them(pair):
    a, b = pair
    a.sendall(PREFIX.pack(MAGIC, 2, 1 << 40))  # claims a terabyte; nothing follows
    with pytest.raises(FrameTooLarge, match="payload of 1099511627776 bytes exceeds the limit of 1024"):
        recv_frame(b, Limits(max_payload=1024))
    a.sendall(PREFIX.pack(MAGIC, 1 << 30, 0))
    with pytest.raises(FrameTooLarge, match="header of"):
        recv_frame(b, Limits(max_header=4096))


def test_truncated_frame_then_close(pair):
    a, b = pair
    a.sendall(encode_frame({"cmd": "HELLO", "pad": "x" * 50})[0][:30])
    a.close()
    with pytest.raises(ConnectionClosed, match="peer closed"):
        recv_frame(b, Limits(recv_seconds=1))


def test_silence_inside_a_frame_and_slow_trickle_time_out(pair):
    a, b = pair
    a.sendall(b"QH")
    with pytest.raises(FrameTimeout, match="silent"):
        recv_frame(b, Limits(recv_seconds=0.2, frame_seconds=5))
    # Deadline for the whole frame: bytes arriving every 0.1 s do not keep it alive.
    frame = encode_frame({"cmd": "HELLO"})[0]
    import threading, time

    def trickle():
        for byte in frame:
            try:
                a.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.1)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    start = time.monotonic()
    with pytest.raises(FrameTimeout, match="not complete within 0.5 s"):
        recv_frame(b, Limits(recv_seconds=1, frame_seconds=0.5), first_byte_seconds=2)
    assert time.monotonic() - start < 1.5
    a.close()
    thread.join(5)


def test_no_first_byte_is_an_idle_timeout(pair):
    with pytest.raises(FrameTimeout, match="no request within 0.1 s"):
        recv_frame(pair[1], Limits(), first_byte_seconds=0.1)


def test_proofs_bind_token_and_both_nonces():
    token, other = b"a" * 32, b"b" * 32
    proof = client_proof(token, "n1", "n2")
    assert check_proof(proof, client_proof(token, "n1", "n2"))
    assert not check_proof(proof, client_proof(other, "n1", "n2"))
    assert not check_proof(proof, client_proof(token, "n1", "n3"))
    assert not check_proof(proof, agent_proof(token, "n1", "n2"))  # the two directions differ
    assert not check_proof(proof, None) and not check_proof(proof, 12)
    assert token.decode() not in proof


def test_read_token(tmp_path):
    path = tmp_path / "t"
    with pytest.raises(HilError, match="cannot read"):
        read_token(path)
    path.write_text("short\n")
    with pytest.raises(HilError, match="shorter than 16 bytes"):
        read_token(path)
    path.write_text("  0123456789abcdef0123  \n")
    assert read_token(path) == b"0123456789abcdef0123"


def test_file_parts_stream_to_a_sink_and_refused_payloads_can_be_skipped(pair):
    import hashlib
    import io

    from qmlp.hil.protocol import recv_file, recv_head, skip_payload

    a, b = pair
    big = bytes(range(256)) * 9000  # 2.3 MB: several CHUNKs

    def send():  # from another thread: the frames are larger than the socket buffers
        send_frame(a, {"cmd": "LOAD"}, [file_part("rtl/a.v", big), file_part("b", b"xyz")])
        send_frame(a, {"cmd": "LOAD"}, [file_part("skipped", b"0" * 5000)])
        send_frame(a, {"cmd": "HELLO"})

    import threading

    sender = threading.Thread(target=send)
    sender.start()
    head = recv_head(b, Limits())
    assert [(s.name, s.kind, s.size) for s in head.specs] == [("rtl/a.v", "file", len(big)), ("b", "file", 3)]
    sink = io.BytesIO()
    assert recv_file(b, head, head.specs[0], Limits(), sink) == hashlib.sha256(big).hexdigest()
    assert sink.getvalue() == big
    assert recv_file(b, head, head.specs[1], Limits(), None) == hashlib.sha256(b"xyz").hexdigest()
    skip_payload(b, recv_head(b, Limits()), Limits())
    assert recv_frame(b, Limits()).header == {"cmd": "HELLO"}  # still in step
    sender.join(5)


def test_the_part_list_is_checked_before_the_payload_is_waited_for(pair):
    a, b = pair
    a.sendall(_raw(b'{"parts": [{"name": "x", "kind": "array", "dtype": "|O", "shape": [1], "size": 8}]}',
                   payload_len=8))  # the 8 payload bytes never come
    with pytest.raises(ProtocolError, match="dtype '|O' not allowed"):
        recv_frame(b, Limits(recv_seconds=5, frame_seconds=5))


def test_a_declared_length_is_not_allocated_before_it_arrives(pair):
    import threading
    import tracemalloc

    a, b = pair
    declared = 200 << 20
    head = b'{"parts": [{"name": "q", "kind": "array", "dtype": "|u1", "shape": [%d], "size": %d}]}' % (declared, declared)

    def send_one_mib_then_close():
        a.sendall(_raw(head, payload_len=declared) + b"\0" * (1 << 20))
        a.close()

    thread = threading.Thread(target=send_one_mib_then_close)
    tracemalloc.start()
    try:
        thread.start()
        with pytest.raises(ConnectionClosed, match=r"peer closed the connection \(1048576 of 209715200 bytes"):
            recv_frame(b, Limits(max_payload=declared))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        thread.join(5)
    assert peak < 4 << 20, f"{peak / 2**20:.1f} MiB held for 1 MiB received"


@pytest.mark.parametrize("header", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e999}'])
def test_headers_hold_json_numbers_only(pair, header):
    a, b = pair
    a.sendall(_raw(header))
    with pytest.raises(ProtocolError, match="not valid JSON"):
        recv_frame(b, Limits())
