"""Host side of the HIL protocol: ``BoardClient`` talks to an agent; ``open_board`` gives one for a
target string (``sim`` starts a private in-process agent on an ephemeral 127.0.0.1 port, so the
virtual board goes through exactly the same protocol as a remote board)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlparse

import numpy as np

from ..errors import ConfigError
from .protocol import (Frame, HilError, Limits, Part, ProtocolError, RemoteError, agent_proof, array_part,
                       check_proof, client_proof, file_part, new_nonce, read_token, recv_frame, send_frame,
                       tune_socket)

__all__ = ["BoardClient", "BoardBusy", "RunReply", "BenchReply", "parse_target", "design_files", "open_board"]


class BoardBusy(RemoteError):
    """Another client holds the board."""


@dataclass(frozen=True, eq=False)
class RunReply:
    out: np.ndarray  # int64 (batch, out): the fabric's integer outputs
    q: np.ndarray  # int64 (batch, features): the integers that entered the fabric
    y: np.ndarray | None  # float32 dequantized outputs shaped like the ONNX output (None with argmax)
    timings: Mapping[str, float] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    latency_cycles: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class BenchReply:
    wall_s: np.ndarray  # host seconds per call
    cycles: np.ndarray | None  # per call (virtual board)
    modelled_s: np.ndarray | None  # cycles at the board clock (virtual board)
    inferences: np.ndarray  # counter delta per call (-1 where unknown)
    info: Mapping[str, Any] = field(default_factory=dict)


class BoardClient:
    """One authenticated session with an agent. Every call sends one request and waits for its
    answer at most ``timeout_s`` (the first RUN on the virtual board compiles the RTL)."""

    def __init__(self, host: str, port: int, token: bytes, *, timeout_s: float = 900.0,
                 connect_timeout_s: float = 10.0, limits: Limits | None = None) -> None:
        self.host, self.port = host, port
        self._peer = f"agent {host}:{port}"  # names the other side in protocol errors
        self.timeout_s = timeout_s
        self.limits = limits or Limits(max_payload=1 << 34, frame_seconds=timeout_s, recv_seconds=60.0)
        try:
            self._sock = socket.create_connection((host, port), timeout=connect_timeout_s)
        except OSError as error:
            raise HilError(f"cannot reach agent at {host}:{port}: {error}; is `qmlp agent` running there?") from None
        tune_socket(self._sock)
        try:
            self._handshake(token, connect_timeout_s)
        except BaseException:
            self._sock.close()
            raise
        self.info: dict[str, Any] = {}
        self.out_dir: Path | None = None  # set by load()
        self.dataflow: Any = None  # the loaded design's Dataflow, set by load()

    def _handshake(self, token: bytes, wait: float) -> None:
        # Until the agent has proved it holds the token, it gets no more room than it gives a
        # stranger: small frames, no payload.
        small = Limits(max_header=4096, max_payload=0, frame_seconds=wait, recv_seconds=wait)
        challenge = recv_frame(self._sock, small, first_byte_seconds=wait, peer=self._peer)
        _raise_if_error(challenge)
        nonce = challenge.header.get("nonce")
        if challenge.header.get("type") != "challenge" or not isinstance(nonce, str):
            raise ProtocolError(f"{self.host}:{self.port} did not send a qmlp challenge")
        mine = new_nonce()
        send_frame(self._sock, {"cmd": "AUTH", "client_nonce": mine, "proof": client_proof(token, nonce, mine)})
        reply = recv_frame(self._sock, small, first_byte_seconds=wait, peer=self._peer)
        _raise_if_error(reply)
        # Mutual authentication: an impostor agent cannot produce this without the token.
        if not check_proof(agent_proof(token, nonce, mine), reply.header.get("proof")):
            raise HilError(f"agent at {self.host}:{self.port} failed to prove it holds the token; refusing to talk to it")

    def request(self, header: Mapping[str, Any], parts: Sequence[Part] = ()) -> Frame:
        try:
            send_frame(self._sock, header, parts)
        except OSError as error:
            raise HilError(f"lost the agent at {self.host}:{self.port}: {error}") from None
        reply = recv_frame(self._sock, self.limits, first_byte_seconds=self.timeout_s, peer=self._peer)
        _raise_if_error(reply)
        return reply

    # --- commands ----------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        self.info = dict(self.request({"cmd": "HELLO"}).header)
        return self.info

    def load(self, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
        backend = (self.info or self.hello()).get("backend", "sim")
        from ..build import Build

        build = Build.open(out_dir, folded=False)
        files = design_files(build.root, backend)
        reply = dict(self.request({"cmd": "LOAD"}, [file_part(n, d) for n, d in files.items()]).header)
        self.out_dir, self.dataflow = build.root, build.dataflow
        return reply

    def run(self, x: np.ndarray | None = None, *, q: np.ndarray | None = None) -> RunReply:
        """Float inputs ``x`` (quantized on the board side) or integer inputs ``q``."""
        if (x is None) == (q is None):
            raise HilError("run() takes exactly one of x (floats) or q (integers)")
        if x is not None:
            part = array_part("x", np.asarray(x, dtype=np.float32))  # the quantizer works in float32
        else:
            part = array_part("q", np.asarray(q, dtype=np.int64))
        reply = self.request({"cmd": "RUN"}, [part])
        return RunReply(out=reply.array("out"), q=reply.array("q"), y=reply.array("y"),
                        timings=dict(reply.header.get("timings", {})), counters=dict(reply.header.get("counters", {})),
                        latency_cycles=reply.array("latency_cycles"))

    def bench(self, *, warmup: int = 10, iterations: int = 100, batch: int = 1, seed: int = 0,
              max_seconds: float = 600.0) -> BenchReply:
        reply = self.request({"cmd": "BENCH", "warmup": warmup, "iterations": iterations, "batch": batch,
                              "seed": seed, "max_seconds": max_seconds})
        return BenchReply(wall_s=reply.array("wall_s"), cycles=reply.array("cycles"),
                          modelled_s=reply.array("modelled_s"), inferences=reply.array("inferences"),
                          info={k: v for k, v in reply.header.items() if k not in ("parts", "type")})

    def power(self, action: str, *, label: str | None = None, interval_s: float = 0.1) -> Frame:
        """``start`` / ``mark`` / ``stop``; RemoteError with code NO_RAILS on the virtual board."""
        header: dict[str, Any] = {"cmd": "POWER", "action": action, "interval_s": interval_s}
        if label is not None:
            header["label"] = label
        return self.request(header)

    def reset(self) -> dict[str, Any]:
        return dict(self.request({"cmd": "RESET"}).header)

    def close(self) -> None:
        try:
            self._sock.settimeout(2.0)
            send_frame(self._sock, {"cmd": "BYE"})
            recv_frame(self._sock, self.limits, first_byte_seconds=2.0)
        except (OSError, HilError):
            pass
        finally:
            self._sock.close()

    def __enter__(self) -> "BoardClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_if_error(frame: Frame) -> None:
    if frame.header.get("type") == "error":
        code, message = str(frame.header.get("code")), str(frame.header.get("message"))
        raise (BoardBusy if code == "BUSY" else RemoteError)(code, message)


def design_files(out_dir: Path, backend: str) -> dict[str, bytes]:
    """The files of a compiled OUT that a backend needs, by upload name.

    ``sim``: dataflow.json and every file under rtl/. ``pynq``: the whole OUT/deploy folder as
    the board would hold it (driver, dataflow.json, manifest.json, bitstream/qmlp.bit + .hwh)."""
    from ..build import DATAFLOW, Build

    build = Build.open(out_dir, folded=False)
    if backend == "sim":
        root, files = build.root, {DATAFLOW: build.dataflow_path.read_bytes()}  # the agent wants it by this name
        folder = build.rtl_dir
    elif backend == "pynq":
        root = folder = build.deploy_dir
        files = {}
        for slot in ("bitstream/qmlp.bit", "bitstream/qmlp.hwh"):
            if not (root / slot).is_file():
                raise ConfigError(f"{root / slot}: missing; build the bitstream with `make bitstream` in "
                                  f"{build.vivado_dir} (needs Vivado), or use --target sim")
    else:
        raise ConfigError(f"agent backend {backend!r} unknown to this client (expected sim or pynq)")
    if not folder.is_dir():
        raise ConfigError(f"{out_dir}: no {folder.name}/ folder; recompile with `qmlp compile`")
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def parse_target(target: str) -> tuple[str, int] | None:
    """``sim`` -> None; ``tcp://HOST:PORT`` -> (host, port); anything else: ConfigError."""
    if target == "sim":
        return None
    try:  # urlparse itself refuses an unclosed IPv6 bracket, .port a non-number
        parsed = urlparse(target)
        host, port = parsed.hostname, parsed.port
    except ValueError:
        parsed, host, port = None, None, None
    if parsed is None or parsed.scheme != "tcp" or not host or port is None or parsed.path not in ("", "/"):
        raise ConfigError(f"--target {target!r}: expected 'sim' or 'tcp://HOST:PORT' (e.g. tcp://192.168.2.99:7070)")
    return host, port


@contextmanager
def open_board(target: str, *, token_file: str | os.PathLike[str] | None = None,
               timeout_s: float = 900.0, clock_mhz: float | None = None) -> Iterator[BoardClient]:
    """A connected client for ``target``. For ``sim`` an in-process agent with a throw-away
    token and work folder serves the virtual board on 127.0.0.1 for the duration."""
    address = parse_target(target)
    if address is not None:
        if token_file is None:
            raise ConfigError(f"--target {target}: a remote agent needs --token-file (the agent's shared secret)")
        client = BoardClient(*address, read_token(token_file), timeout_s=timeout_s)
        try:
            yield client
        finally:
            client.close()
        return
    from .agent import Agent, AgentConfig
    from .sim import SimBackend

    workdir = Path(tempfile.mkdtemp(prefix="qmlp-vboard-"))
    token = os.urandom(32).hex().encode()
    agent = Agent(AgentConfig(token=token, workdir=workdir), SimBackend(clock_mhz=clock_mhz))
    try:
        host, port = agent.start()
        client = BoardClient(host, port, token, timeout_s=timeout_s)
        try:
            yield client
        finally:
            client.close()
    finally:
        agent.stop()
        shutil.rmtree(workdir, ignore_errors=True)
