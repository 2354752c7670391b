"""Wire protocol of the board agent: framing, typed payload parts and token authentication.

A frame is a fixed 16-byte prefix, a JSON header and an optional binary payload::

    magic  b"QHIL"   4 bytes
    header length    uint32, big-endian (JSON, UTF-8, an object)
    payload length   uint64, big-endian

The header lists the payload's parts in order (``parts``): numpy arrays (``dtype`` from a short
whitelist, ``shape``) or files (``sha256``); their ``size`` fields must add up to the payload
length exactly. Nothing here trusts the peer: every length is bounded before a byte is read, every
read has a deadline (a slow sender cannot hold a connection open by trickling bytes), dtypes never
include ``object`` and shapes must match sizes.

Authentication is a challenge-response over HMAC-SHA256: the agent sends a random nonce, the
client answers with ``HMAC(token, "client" | server_nonce | client_nonce)`` and the agent proves it
knows the token too with ``HMAC(token, "agent" | client_nonce | server_nonce)``. The token itself
never travels.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import QmlpError

__all__ = [
    "PROTOCOL_VERSION", "MAGIC", "PREFIX", "Limits", "Part", "Frame", "HilError", "ProtocolError",
    "FrameTooLarge", "FrameTimeout", "ConnectionClosed", "RemoteError", "encode_frame", "send_frame",
    "recv_frame", "array_part", "file_part", "new_nonce", "client_proof", "agent_proof", "check_proof",
    "read_token", "sha256_hex", "tune_socket", "ALLOWED_DTYPES",
]

PROTOCOL_VERSION = 1
MAGIC = b"QHIL"
PREFIX = struct.Struct("!4sIQ")

# Arrays may only use these dtypes (little-endian on the wire); anything else, in particular
# object arrays, is refused before numpy sees the bytes.
ALLOWED_DTYPES = frozenset({"|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f4", "<f8"})


class HilError(QmlpError):
    """A hardware-in-the-loop failure the user can act on (unreachable agent, refused request)."""


class ProtocolError(HilError):
    """The peer broke the framing rules; the connection cannot continue."""

    code = "BAD_FRAME"


class FrameTooLarge(ProtocolError):
    code = "FRAME_TOO_LARGE"


class FrameTimeout(ProtocolError):
    code = "TIMEOUT"


class ConnectionClosed(ProtocolError):
    code = "CLOSED"


class RemoteError(HilError):
    """The agent answered with an error frame (``code`` is machine-readable)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"agent refused: {code}: {message}")
        self.code = code
        self.remote_message = message


@dataclass(frozen=True)
class Limits:
    """Bounds on what one side accepts; the agent's defaults fit a bitstream plus driver."""

    max_header: int = 1 << 20
    max_payload: int = 256 << 20
    frame_seconds: float = 30.0  # deadline for one whole frame once its first byte arrived
    recv_seconds: float = 10.0  # longest silence inside a frame


@dataclass(frozen=True, eq=False)
class Part:
    """One payload part: an array (``array`` set) or a file's bytes (``data`` set)."""

    name: str
    array: np.ndarray | None = None
    data: bytes | None = None
    sha256: str | None = None


@dataclass(frozen=True, eq=False)
class Frame:
    header: Mapping[str, Any]
    parts: tuple[Part, ...] = field(default_factory=tuple)

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    def array(self, name: str) -> np.ndarray | None:
        part = self.part(name)
        return None if part is None else part.array


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_part(name: str, array: np.ndarray) -> Part:
    """A little-endian, C-contiguous copy of ``array`` ready to send."""
    arr = np.ascontiguousarray(array)
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    if arr.dtype.str not in ALLOWED_DTYPES:
        raise HilError(f"array {name!r}: dtype {arr.dtype} cannot be sent (allowed: {sorted(ALLOWED_DTYPES)})")
    return Part(name=name, array=arr)


def file_part(name: str, data: bytes) -> Part:
    return Part(name=name, data=bytes(data), sha256=sha256_hex(data))


def encode_frame(header: Mapping[str, Any], parts: Sequence[Part] = ()) -> list[bytes]:
    """The frame as a list of byte strings (prefix + header, then one buffer per part)."""
    described, buffers = [], []
    for part in parts:
        if part.array is not None:
            raw = part.array.tobytes()
            described.append({"name": part.name, "kind": "array", "dtype": part.array.dtype.str,
                              "shape": list(part.array.shape), "size": len(raw)})
        else:
            raw = part.data or b""
            described.append({"name": part.name, "kind": "file", "sha256": part.sha256 or sha256_hex(raw),
                              "size": len(raw)})
        buffers.append(raw)
    full = dict(header)
    if described:
        full["parts"] = described
    head = json.dumps(full, separators=(",", ":"), allow_nan=False).encode()
    payload_len = sum(len(b) for b in buffers)
    return [PREFIX.pack(MAGIC, len(head), payload_len) + head, *buffers]


def send_frame(sock: socket.socket, header: Mapping[str, Any], parts: Sequence[Part] = ()) -> None:
    chunks = encode_frame(header, parts)
    if sum(len(c) for c in chunks) <= 1 << 16:
        # One write for small frames: several small writes meet Nagle + delayed ACK (~40 ms each).
        chunks = [b"".join(chunks)]
    for chunk in chunks:
        sock.sendall(chunk)


def tune_socket(sock: socket.socket) -> None:
    """Request/response traffic: send every frame at once (no Nagle), notice dead peers."""
    for level, option in ((socket.IPPROTO_TCP, socket.TCP_NODELAY), (socket.SOL_SOCKET, socket.SO_KEEPALIVE)):
        try:
            sock.setsockopt(level, option, 1)
        except OSError:  # e.g. a socketpair in tests: not TCP
            pass


def _recv_exact(sock: socket.socket, n: int, deadline: float, limits: Limits) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameTimeout(f"frame not complete within {limits.frame_seconds:g} s ({got} of {n} bytes)")
        sock.settimeout(min(remaining, limits.recv_seconds))
        try:
            count = sock.recv_into(view[got:], min(n - got, 1 << 20))
        except socket.timeout:
            if time.monotonic() >= deadline:
                raise FrameTimeout(f"frame not complete within {limits.frame_seconds:g} s ({got} of {n} bytes)") from None
            raise FrameTimeout(f"peer silent for {limits.recv_seconds:g} s inside a frame") from None
        except OSError as error:
            raise ConnectionClosed(f"connection lost: {error}") from None
        if count == 0:
            raise ConnectionClosed(f"peer closed the connection ({got} of {n} bytes of a frame received)")
        got += count
    return bytes(buf)


def recv_frame(sock: socket.socket, limits: Limits, first_byte_seconds: float | None = None) -> Frame:
    """Read one frame. ``first_byte_seconds`` bounds the wait for it to start (idle timeout);
    after that the whole frame must arrive within ``limits.frame_seconds``."""
    wait = limits.recv_seconds if first_byte_seconds is None else first_byte_seconds
    sock.settimeout(wait)
    try:
        first = sock.recv(1)
    except socket.timeout:
        raise FrameTimeout(f"no request within {wait:g} s") from None
    except OSError as error:
        raise ConnectionClosed(f"connection lost: {error}") from None
    if not first:
        raise ConnectionClosed("peer closed the connection")
    deadline = time.monotonic() + limits.frame_seconds
    prefix = first + _recv_exact(sock, PREFIX.size - 1, deadline, limits)
    magic, header_len, payload_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {magic!r} (expected {MAGIC!r}): not a qmlp HIL peer")
    if header_len > limits.max_header:
        raise FrameTooLarge(f"header of {header_len} bytes exceeds the limit of {limits.max_header}")
    if payload_len > limits.max_payload:
        raise FrameTooLarge(f"payload of {payload_len} bytes exceeds the limit of {limits.max_payload}")
    try:
        header = json.loads(_recv_exact(sock, header_len, deadline, limits).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # deep nesting -> RecursionError
        raise ProtocolError(f"header is not valid JSON: {type(error).__name__}: {str(error)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    described = header.get("parts", [])
    if not isinstance(described, list) or not all(isinstance(d, dict) for d in described):
        raise ProtocolError("header field 'parts' must be a list of objects")
    sizes = [d.get("size") for d in described]
    if not all(isinstance(s, int) and s >= 0 for s in sizes) or sum(sizes) != payload_len:
        raise ProtocolError(f"part sizes {sizes} do not add up to the payload length {payload_len}")
    payload = _recv_exact(sock, payload_len, deadline, limits) if payload_len else b""
    parts, offset = [], 0
    for desc, size in zip(described, sizes):
        parts.append(_decode_part(desc, payload[offset:offset + size]))
        offset += size
    return Frame(header=header, parts=tuple(parts))


def _decode_part(desc: Mapping[str, Any], raw: bytes) -> Part:
    name = desc.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError("every part needs a non-empty string 'name'")
    kind = desc.get("kind")
    if kind == "file":
        digest = desc.get("sha256")
        if not isinstance(digest, str):
            raise ProtocolError(f"file part {name!r} has no sha256")
        return Part(name=name, data=raw, sha256=digest)
    if kind != "array":
        raise ProtocolError(f"part {name!r}: kind must be 'array' or 'file', got {kind!r}")
    dtype, shape = desc.get("dtype"), desc.get("shape")
    if dtype not in ALLOWED_DTYPES:
        raise ProtocolError(f"array {name!r}: dtype {dtype!r} not allowed")
    if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ProtocolError(f"array {name!r}: bad shape {shape!r}")
    itemsize = np.dtype(dtype).itemsize
    if math.prod(shape) * itemsize != len(raw):
        raise ProtocolError(f"array {name!r}: shape {shape} x {itemsize} bytes != {len(raw)} bytes sent")
    array = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape)
    return Part(name=name, array=array)


# --- authentication ---------------------------------------------------------------------------

def new_nonce() -> str:
    return os.urandom(32).hex()


def _mac(token: bytes, *fields: str) -> str:
    return hmac.new(token, "|".join(fields).encode(), hashlib.sha256).hexdigest()


def client_proof(token: bytes, server_nonce: str, client_nonce: str) -> str:
    return _mac(token, "qmlp-hil-client", server_nonce, client_nonce)


def agent_proof(token: bytes, server_nonce: str, client_nonce: str) -> str:
    return _mac(token, "qmlp-hil-agent", client_nonce, server_nonce)


def check_proof(expected: str, given: Any) -> bool:
    """Constant-time comparison; anything that is not a string fails."""
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


def read_token(path: str | os.PathLike[str]) -> bytes:
    """The shared secret from a token file (surrounding whitespace ignored, at least 16 bytes)."""
    from pathlib import Path

    file = Path(path)
    try:
        token = file.read_bytes().strip()
    except OSError as error:
        raise HilError(f"token file {file}: cannot read ({error.strerror}); create one with e.g. "
                       f"`python -c 'import secrets; print(secrets.token_hex(32))' > {file}`") from None
    if len(token) < 16:
        raise HilError(f"token file {file}: token shorter than 16 bytes; use a longer random secret")
    return token
