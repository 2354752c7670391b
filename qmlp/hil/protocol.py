"""Wire protocol of the board agent: framing, typed payload parts and token authentication.

A frame is a fixed 16-byte prefix, a JSON header and an optional binary payload::

    magic  b"QHIL"   4 bytes
    header length    uint32, big-endian (JSON, UTF-8, an object)
    payload length   uint64, big-endian

The header lists the payload's parts in order (``parts``): numpy arrays (``dtype`` from a short
whitelist, ``shape``) or files (``sha256``); their ``size`` fields must add up to the payload
length exactly. Nothing here trusts the peer: every length is bounded before a byte is read, every
read has a deadline (a slow sender cannot hold a connection open by trickling bytes), dtypes never
include ``object`` and shapes must match sizes. The part list is checked before any payload byte
is read, buffers grow only as bytes arrive (a declared length costs nothing until it is sent), and
a receiver can stream file parts to disk with ``recv_file`` (hash computed on the fly) instead of
holding them in memory.

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
from typing import Any, BinaryIO, Iterator, Mapping, Sequence

import numpy as np

from ..errors import QmlpError

__all__ = [
    "PROTOCOL_VERSION", "MAGIC", "PREFIX", "Limits", "Part", "Frame", "HilError", "ProtocolError",
    "FrameTooLarge", "FrameTimeout", "ConnectionClosed", "RemoteError", "encode_frame", "send_frame",
    "recv_frame", "recv_head", "recv_parts", "recv_file", "skip_payload", "PartSpec", "FrameHead", "CHUNK",
    "array_part", "file_part", "new_nonce", "client_proof", "agent_proof", "check_proof", "read_token",
    "sha256_hex", "tune_socket", "ALLOWED_DTYPES",
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


CHUNK = 1 << 20  # bytes read per recv: the fixed part of a frame's memory cost


def _recv_chunks(sock: socket.socket, n: int, deadline: float, limits: Limits, peer: str) -> Iterator[memoryview]:
    """``n`` bytes as consecutive views into one reused scratch buffer of at most ``CHUNK`` bytes
    (each view is valid until the next one is produced). Memory never depends on ``n``."""
    scratch = bytearray(min(n, CHUNK))
    got = 0
    while got < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameTimeout(f"frame not complete within {limits.frame_seconds:g} s ({got} of {n} bytes)")
        sock.settimeout(min(remaining, limits.recv_seconds))
        try:
            count = sock.recv_into(scratch, min(n - got, len(scratch)))
        except socket.timeout:
            if time.monotonic() >= deadline:
                raise FrameTimeout(f"frame not complete within {limits.frame_seconds:g} s ({got} of {n} bytes)") from None
            raise FrameTimeout(f"peer silent for {limits.recv_seconds:g} s inside a frame") from None
        except OSError as error:
            raise ConnectionClosed(f"connection to {peer} lost: {error}") from None
        if count == 0:
            raise ConnectionClosed(f"{peer} closed the connection ({got} of {n} bytes of a frame received)")
        got += count
        yield memoryview(scratch)[:count]


def _recv_exact(sock: socket.socket, n: int, deadline: float, limits: Limits, peer: str) -> bytearray:
    """``n`` bytes in a buffer that grows as they arrive: a declared length that is never sent
    costs nothing."""
    buf = bytearray()
    for chunk in _recv_chunks(sock, n, deadline, limits, peer):
        buf += chunk
    return buf


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} overflows a float")
    return value


@dataclass(frozen=True)
class PartSpec:
    """One payload part as the header declares it, checked before any payload byte is read."""

    name: str
    kind: str  # "array" or "file"
    size: int
    dtype: str | None = None
    shape: tuple[int, ...] = ()
    sha256: str | None = None


@dataclass(frozen=True, eq=False)
class FrameHead:
    """A frame whose header has arrived and whose payload (``specs``, in order) is still unread."""

    header: Mapping[str, Any]
    specs: tuple[PartSpec, ...]
    deadline: float  # the whole frame, payload included, must have arrived by then
    peer: str


def recv_head(sock: socket.socket, limits: Limits, first_byte_seconds: float | None = None,
              peer: str = "peer") -> FrameHead:
    """Read a frame's prefix and header and check its part list. ``first_byte_seconds`` bounds
    the wait for the frame to start (idle timeout); after that the whole frame must arrive within
    ``limits.frame_seconds``. ``peer`` names the other side in messages ("agent 10.0.0.2:7373")."""
    wait = limits.recv_seconds if first_byte_seconds is None else first_byte_seconds
    sock.settimeout(wait)
    try:
        first = sock.recv(1)
    except socket.timeout:
        raise FrameTimeout(f"no request within {wait:g} s") from None
    except OSError as error:
        raise ConnectionClosed(f"connection to {peer} lost: {error}") from None
    if not first:
        raise ConnectionClosed(f"{peer} closed the connection")
    deadline = time.monotonic() + limits.frame_seconds
    prefix = first + _recv_exact(sock, PREFIX.size - 1, deadline, limits, peer)
    magic, header_len, payload_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {magic!r} (expected {MAGIC!r}): not a qmlp HIL peer")
    if header_len > limits.max_header:
        raise FrameTooLarge(f"header of {header_len} bytes exceeds the limit of {limits.max_header}")
    if payload_len > limits.max_payload:
        raise FrameTooLarge(f"payload of {payload_len} bytes exceeds the limit of {limits.max_payload}")
    try:
        header = json.loads(_recv_exact(sock, header_len, deadline, limits, peer).decode("utf-8"),
                            parse_constant=_json_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # deep nesting -> RecursionError
        raise ProtocolError(f"header is not valid JSON: {type(error).__name__}: {str(error)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    described = header.get("parts", [])
    if not isinstance(described, list) or not all(isinstance(d, dict) for d in described):
        raise ProtocolError("header field 'parts' must be a list of objects")
    sizes = [d.get("size") for d in described]
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes) or sum(sizes) != payload_len:
        raise ProtocolError(f"part sizes {sizes} do not add up to the payload length {payload_len}")
    return FrameHead(header=header, specs=tuple(_part_spec(d) for d in described), deadline=deadline, peer=peer)


def _part_spec(desc: Mapping[str, Any]) -> PartSpec:
    name, kind, size = desc.get("name"), desc.get("kind"), desc["size"]
    if not isinstance(name, str) or not name:
        raise ProtocolError("every part needs a non-empty string 'name'")
    if kind == "file":
        digest = desc.get("sha256")
        if not isinstance(digest, str):
            raise ProtocolError(f"file part {name!r} has no sha256")
        return PartSpec(name=name, kind=kind, size=size, sha256=digest)
    if kind != "array":
        raise ProtocolError(f"part {name!r}: kind must be 'array' or 'file', got {kind!r}")
    dtype, shape = desc.get("dtype"), desc.get("shape")
    if dtype not in ALLOWED_DTYPES:
        raise ProtocolError(f"array {name!r}: dtype {dtype!r} not allowed")
    if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ProtocolError(f"array {name!r}: bad shape {shape!r}")
    itemsize = np.dtype(dtype).itemsize
    if math.prod(shape) * itemsize != size:
        raise ProtocolError(f"array {name!r}: shape {shape} x {itemsize} bytes != {size} bytes sent")
    return PartSpec(name=name, kind=kind, size=size, dtype=dtype, shape=tuple(shape))


def recv_parts(sock: socket.socket, head: FrameHead, limits: Limits) -> tuple[Part, ...]:
    """The payload in memory, one buffer per part (no copies beyond the bytes themselves)."""
    parts = []
    for spec in head.specs:
        raw = _recv_exact(sock, spec.size, head.deadline, limits, head.peer)
        if spec.kind == "file":
            parts.append(Part(name=spec.name, data=bytes(raw), sha256=spec.sha256))
        else:
            parts.append(Part(name=spec.name, array=np.frombuffer(raw, dtype=np.dtype(spec.dtype)).reshape(spec.shape)))
    return tuple(parts)


def recv_file(sock: socket.socket, head: FrameHead, spec: PartSpec, limits: Limits,
              sink: BinaryIO | None) -> str:
    """Stream the next part of the payload into ``sink`` (None: discard it) and return the
    sha256 of the bytes received; at most one ``CHUNK`` is held in memory at a time."""
    digest = hashlib.sha256()
    for chunk in _recv_chunks(sock, spec.size, head.deadline, limits, head.peer):
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest()


def skip_payload(sock: socket.socket, head: FrameHead, limits: Limits) -> None:
    """Read and drop a payload that was refused, so the next frame starts in step."""
    for spec in head.specs:
        recv_file(sock, head, spec, limits, None)


def recv_frame(sock: socket.socket, limits: Limits, first_byte_seconds: float | None = None,
               peer: str = "peer") -> Frame:
    """Read one whole frame into memory (``recv_head`` + ``recv_parts``)."""
    head = recv_head(sock, limits, first_byte_seconds, peer)
    return Frame(header=head.header, parts=recv_parts(sock, head, limits))


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
    """Constant-time comparison; anything that is not an ASCII string fails (a lone surrogate
    or other non-ASCII text from the peer is a wrong proof, not an encoding error)."""
    return isinstance(given, str) and given.isascii() and hmac.compare_digest(expected.encode(), given.encode())


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
