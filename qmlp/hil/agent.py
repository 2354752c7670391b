"""The board agent: a small TCP server that runs HIL requests on one backend, one job at a time.

Threads: one accept loop, one short-lived thread per connection (at most ``max_connections``).
A connection must authenticate first (challenge-response, see ``protocol``); the first
authenticated client then owns the board until it disconnects or stays idle longer than
``idle_seconds``; any other client gets a BUSY error frame and is closed. Framing errors close the
connection (the stream cannot be resynchronised); a bad request gets an error frame and the
session goes on. Uploaded files land in a fresh folder under ``workdir/designs`` after their
names and hashes are checked, and the folder is renamed into place only when complete.

Trust: the token authorises uploading designs, and designs are code (a Python driver on a board,
Verilog compiled by Verilator on the virtual board), so a token holder can run code as the agent's
user. Everything without the token is refused before it costs more than a 4 KiB header.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..datatypes import BIPOLAR
from ..errors import QmlpError
from ..ir import Dataflow, IRError, from_json, verify
from ..sim.bitaccurate import dequantize_output, quantize_input
from .backend import Backend, BackendError, NoRails
from .protocol import (PROTOCOL_VERSION, Frame, Limits, Part, ProtocolError, agent_proof, array_part,
                       check_proof, client_proof, new_nonce, recv_frame, send_frame, sha256_hex, tune_socket)

__all__ = ["AgentConfig", "Agent", "Refusal", "safe_relative_path"]

log = logging.getLogger("qmlp.hil.agent")

_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")


class Refusal(Exception):
    """A request the agent declines; becomes an error frame with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AgentConfig:
    token: bytes
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    limits: Limits = field(default_factory=Limits)
    handshake_seconds: float = 10.0
    idle_seconds: float = 300.0
    busy_grace_seconds: float = 1.0
    auth_failure_delay_seconds: float = 0.25
    max_connections: int = 4
    max_batch: int = 1 << 16
    max_files: int = 512
    max_bench_iterations: int = 100_000
    max_bench_seconds: float = 600.0


def safe_relative_path(name: str) -> PurePosixPath:
    """An uploaded file name as a relative path of plain components, or Refusal(BAD_NAME).

    Allowed: up to 4 components of letters, digits and ``_.+-`` not starting with a dot, so
    ``..``, absolute paths, backslashes, drive letters, NUL and hidden files are all refused."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise Refusal("BAD_NAME", f"file name {name!r}: must be a non-empty relative path under 255 characters")
    components = name.split("/")
    if len(components) > 4 or not all(_COMPONENT.match(c) for c in components):
        raise Refusal("BAD_NAME", f"file name {name!r}: only relative paths of up to 4 plain components "
                                  "(letters, digits, _ . + -; no '..', no leading '/' or '.') are accepted")
    return PurePosixPath(*components)


class Agent:
    """``start()`` binds and serves in background threads; ``stop()`` shuts down and joins."""

    def __init__(self, config: AgentConfig, backend: Backend) -> None:
        if len(config.token) < 16:
            raise QmlpError("agent token shorter than 16 bytes; use a longer random secret")
        self.config = config
        self.backend = backend
        self.workdir = Path(config.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.workdir / "designs").mkdir(exist_ok=True, mode=0o700)
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._owner = threading.Lock()  # held by the session that owns the board
        self._slots = threading.BoundedSemaphore(config.max_connections)
        self._threads: set[threading.Thread] = set()
        self._conns: set[socket.socket] = set()
        self._threads_lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None
        self._df: Dataflow | None = None
        self._design: str | None = None
        self.address: tuple[str, int] | None = None
        self._commands: dict[str, Callable[[Frame], tuple[dict[str, Any], list[Part]]]] = {
            "HELLO": self._hello, "LOAD": self._load, "RUN": self._run, "BENCH": self._bench,
            "POWER": self._power, "RESET": self._reset,
        }

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.config.host, self.config.port))
        except OSError as error:
            sock.close()
            raise QmlpError(f"agent cannot listen on {self.config.host}:{self.config.port}: {error.strerror}; "
                            "pick another --port or --host") from None
        sock.listen(16)
        sock.settimeout(0.2)  # lets the accept loop notice stop()
        self._sock = sock
        self.address = sock.getsockname()[:2]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="qmlp-agent-accept", daemon=True)
        self._accept_thread.start()
        log.info("agent listening on %s:%d (backend %s, workdir %s)", *self.address, self.backend.name, self.workdir)
        return self.address

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        with self._threads_lock:
            threads, conns = list(self._threads), list(self._conns)
        for conn in conns:  # wake handlers blocked in recv (idle clients) so they end now
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(timeout)
        self.backend.close()

    def serve_forever(self) -> None:
        """Block until interrupted (``qmlp agent``)."""
        if self._sock is None:
            self.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> "Agent":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if not self._slots.acquire(blocking=False):
                self._refuse_quietly(conn, "BUSY", "too many connections; try again later")
                continue
            thread = threading.Thread(target=self._serve_connection, args=(conn, peer),
                                      name=f"qmlp-agent-{peer[1]}", daemon=True)
            with self._threads_lock:
                self._threads.add(thread)
                self._conns.add(conn)
            thread.start()

    def _refuse_quietly(self, conn: socket.socket, code: str, message: str) -> None:
        try:
            conn.settimeout(1.0)
            send_frame(conn, {"type": "error", "code": code, "message": message})
        except OSError:
            pass
        finally:
            conn.close()

    # --- one connection --------------------------------------------------------------------

    def _serve_connection(self, conn: socket.socket, peer: tuple[Any, ...]) -> None:
        owner = False
        try:
            tune_socket(conn)
            proof = self._authenticate(conn, peer)
            if proof is None:
                return
            # A short grace covers the moment between a previous owner's last answer and its
            # connection being torn down; a real job in progress still gets BUSY.
            owner = self._owner.acquire(timeout=self.config.busy_grace_seconds)
            if not owner:
                log.info("%s: refused, board busy", peer[0])
                self._send_error(conn, "BUSY", "another client holds the board; retry when its job has finished")
                return
            send_frame(conn, {"type": "ok", "cmd": "AUTH", "proof": proof})
            if self._session(conn, peer):  # BYE: free the board before confirming, so the
                self._owner.release()  # client's next connection finds it free
                owner = False
                send_frame(conn, {"type": "ok", "cmd": "BYE"})
        except ProtocolError as error:
            log.info("%s: %s", peer[0], error)
            self._send_error(conn, error.code, str(error))
        except OSError as error:  # vanished client: nothing to answer
            log.info("%s: connection lost: %s", peer[0], error)
        except Exception as error:
            log.exception("%s: connection handler crashed", peer[0])
            self._send_error(conn, "INTERNAL", f"agent error: {type(error).__name__}: {error}")
        finally:
            if owner:
                self._owner.release()
            with self._threads_lock:
                self._threads.discard(threading.current_thread())
                self._conns.discard(conn)
            conn.close()
            self._slots.release()

    def _send_error(self, conn: socket.socket, code: str, message: str) -> None:
        try:
            send_frame(conn, {"type": "error", "code": code, "message": message})
        except OSError:
            pass

    def _authenticate(self, conn: socket.socket, peer: tuple[Any, ...]) -> str | None:
        """Challenge-response; returns the agent's own proof for the client, None if refused."""
        nonce = new_nonce()
        send_frame(conn, {"type": "challenge", "protocol": PROTOCOL_VERSION, "agent": f"qmlp {__version__}",
                          "nonce": nonce})
        # The handshake frame is tiny: a client may not use the large-upload limits before it
        # has proved it knows the token.
        small = Limits(max_header=4096, max_payload=0, frame_seconds=self.config.handshake_seconds,
                       recv_seconds=self.config.handshake_seconds)
        frame = recv_frame(conn, small, first_byte_seconds=self.config.handshake_seconds)
        if frame.header.get("cmd") != "AUTH":
            self._send_error(conn, "AUTH_REQUIRED", "authenticate first: answer the challenge with AUTH")
            return None
        client_nonce, proof = frame.header.get("client_nonce"), frame.header.get("proof")
        if not isinstance(client_nonce, str) or not 16 <= len(client_nonce) <= 128 or proof is None:
            self._send_error(conn, "AUTH_FAILED", "AUTH needs client_nonce and proof (is a token file configured?)")
            return None
        if not check_proof(client_proof(self.config.token, nonce, client_nonce), proof):
            log.warning("%s: authentication failed", peer[0])
            time.sleep(self.config.auth_failure_delay_seconds)  # slows token guessing (with max_connections)
            self._send_error(conn, "AUTH_FAILED", "wrong token: the proof does not match the agent's token file")
            return None
        return agent_proof(self.config.token, nonce, client_nonce)

    def _session(self, conn: socket.socket, peer: tuple[Any, ...]) -> bool:
        """Serve requests until the client leaves; True if it said BYE (still to be answered)."""
        while not self._stop.is_set():
            try:
                frame = recv_frame(conn, self.config.limits, first_byte_seconds=self.config.idle_seconds)
            except ProtocolError as error:
                if error.code == "CLOSED":
                    return False
                raise
            cmd = frame.header.get("cmd")
            if cmd == "BYE":
                return True
            handler = self._commands.get(cmd) if isinstance(cmd, str) else None
            try:
                if handler is None:
                    raise Refusal("UNKNOWN_COMMAND", f"unknown command {cmd!r}; expected one of "
                                                     f"{', '.join(sorted(self._commands))}, BYE")
                header, parts = handler(frame)
            except Refusal as refusal:
                self._send_error(conn, refusal.code, str(refusal))
                continue
            except NoRails as error:
                self._send_error(conn, "NO_RAILS", str(error))
                continue
            except (BackendError, QmlpError) as error:
                log.warning("%s: %s failed: %s", peer[0], cmd, error)
                self._send_error(conn, "BACKEND_ERROR", str(error))
                continue
            except Exception as error:  # a bug must not take the session (or the agent) down silently
                log.exception("%s: %s crashed", peer[0], cmd)
                self._send_error(conn, "INTERNAL", f"{cmd} failed inside the agent: {type(error).__name__}: {error}")
                continue
            # A client that stops reading cannot pin the agent: the whole answer must leave
            # within frame_seconds (sendall's timeout covers the total since Python 3.5).
            conn.settimeout(self.config.limits.frame_seconds)
            send_frame(conn, {"type": "ok", "cmd": cmd, **header}, parts)
        return False

    # --- commands ----------------------------------------------------------------------------

    def _hello(self, frame: Frame) -> tuple[dict[str, Any], list[Part]]:
        return {
            "protocol": PROTOCOL_VERSION, "qmlp": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "backend": self.backend.name, **self.backend.describe(),
            "design": self._design, "design_name": None if self._df is None else self._df.name,
            "limits": {"max_batch": self.config.max_batch, "max_payload": self.config.limits.max_payload},
        }, []

    def _load(self, frame: Frame) -> tuple[dict[str, Any], list[Part]]:
        files = [p for p in frame.parts if p.data is not None]
        if not files or len(files) != len(frame.parts):
            raise Refusal("BAD_REQUEST", "LOAD takes file parts only (dataflow.json and the design files)")
        if len(files) > self.config.max_files:
            raise Refusal("LIMIT", f"LOAD of {len(files)} files exceeds the limit of {self.config.max_files}")
        paths = [safe_relative_path(p.name) for p in files]
        if len(set(paths)) != len(paths):
            raise Refusal("BAD_NAME", "LOAD lists the same file name twice")
        for part in files:  # check every hash before anything touches the disk
            actual = sha256_hex(part.data or b"")
            if actual != str(part.sha256).lower():
                raise Refusal("HASH_MISMATCH", f"{part.name}: received bytes hash to sha256 {actual[:16]}..., "
                                               f"declared {str(part.sha256)[:16]}...; re-send an intact copy")
        self._check_manifest({p.name: p.data or b"" for p in files})
        if PurePosixPath("dataflow.json") not in paths:
            raise Refusal("BAD_DESIGN", "LOAD without dataflow.json: upload OUT/dataflow.json with the design")
        df = self._parse_dataflow(next(p.data for p in files if p.name == "dataflow.json") or b"")
        for needed in self.backend.required_files(df):
            folder = needed.endswith("/")
            if not any(str(p) == needed or (folder and str(p).startswith(needed)) for p in paths):
                raise Refusal("BAD_DESIGN", f"LOAD for backend {self.backend.name!r} needs {needed!r}")
        digest = sha256_hex("".join(f"{p.name}:{p.sha256}\n" for p in sorted(files, key=lambda p: p.name)).encode())[:16]
        design_dir = self._store(files, paths, digest)
        try:
            info = self.backend.load(design_dir, df)
        except BaseException:
            # The backend refused (or failed on) the upload: keep no files and no stale design.
            shutil.rmtree(design_dir, ignore_errors=True)
            self._df = self._design = None
            raise
        self._df, self._design = df, digest
        self._prune(keep=design_dir)
        log.info("loaded design %s (%s, %d files)", digest, df.name, len(files))
        return {"design": digest, "name": df.name, "files": len(files), **info}, []

    @staticmethod
    def _check_manifest(files: dict[str, bytes]) -> None:
        """A deploy folder carries manifest.json (sha256 of every file) and, once Vivado ran,
        bitstream/SHA256SUMS: check the uploaded bytes against both before storing anything."""
        expected: dict[str, str] = {}
        if "manifest.json" in files:
            try:
                manifest = json.loads(files["manifest.json"].decode("utf-8"))
                listed = manifest["files"] if manifest.get("schema") == "qmlp.deploy" else {}
                expected.update({str(k): str(v) for k, v in dict(listed).items()})
            except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
                raise Refusal("BAD_DESIGN", f"manifest.json is unreadable: {error}") from None
        if "bitstream/SHA256SUMS" in files:
            for line in files["bitstream/SHA256SUMS"].decode("utf-8", "replace").splitlines():
                digest, _, name = line.partition("  ")
                if name.strip():
                    expected[f"bitstream/{name.strip()}"] = digest.strip()
        for name, digest in sorted(expected.items()):
            if name not in files:
                raise Refusal("BAD_DESIGN", f"{name}: listed in the deploy manifest but not uploaded")
            actual = sha256_hex(files[name])
            if actual != digest.lower():
                raise Refusal("HASH_MISMATCH", f"{name}: sha256 {actual[:16]}... does not match the deploy manifest "
                                               f"({digest[:16]}...): corrupt or edited file; rebuild or re-copy it")

    def _parse_dataflow(self, data: bytes) -> Dataflow:
        try:
            df = from_json(json.loads(data.decode("utf-8")))
            verify(df)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, IRError) as error:
            raise Refusal("BAD_DESIGN", f"dataflow.json is not a valid qmlp dataflow: {error}") from None
        return df

    def _store(self, files: list[Part], paths: list[PurePosixPath], digest: str) -> Path:
        designs = self.workdir / "designs"
        incoming = designs / f".incoming-{os.urandom(6).hex()}"
        incoming.mkdir(mode=0o700)
        try:
            for part, rel in zip(files, paths):
                target = incoming.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                # O_EXCL + O_NOFOLLOW: never write through a link or over an existing file.
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(part.data or b"")
            final = designs / digest
            if final.exists():
                shutil.rmtree(final)
            incoming.rename(final)
            return final
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise

    def _prune(self, keep: Path) -> None:
        for entry in (self.workdir / "designs").iterdir():
            if entry != keep and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)

    def _require_design(self) -> Dataflow:
        if self._df is None:
            raise Refusal("NOT_LOADED", "no design loaded: send LOAD with OUT/dataflow.json and the design files first")
        return self._df

    def _inputs(self, frame: Frame, df: Dataflow) -> tuple[np.ndarray, bool]:
        """Integer inputs from part ``q`` (checked against the input range) or floats from ``x``
        (quantized here exactly as the IR says). Returns (q, came_from_floats)."""
        x, q = frame.array("x"), frame.array("q")
        if (x is None) == (q is None):
            raise Refusal("BAD_REQUEST", "RUN needs exactly one input array: 'x' (floats) or 'q' (integers)")
        data = x if x is not None else q
        assert data is not None
        batch = data.shape[0] if data.ndim else 0
        if not 1 <= batch <= self.config.max_batch:
            raise Refusal("LIMIT", f"batch of {batch} outside 1..{self.config.max_batch}")
        features = df.input.features
        if x is not None:
            if x.dtype.kind != "f":
                raise Refusal("BAD_INPUT", f"'x' must be float32/float64, got {x.dtype}")
            if x.shape[1:] != tuple(df.input_shape) and x.shape[1:] != (features,):
                raise Refusal("BAD_INPUT", f"'x' shape {x.shape} != (batch, {', '.join(map(str, df.input_shape))})")
            if np.isnan(x).any():
                raise Refusal("BAD_INPUT", "'x' contains NaN; the input quantizer has no code for NaN")
            with np.errstate(over="ignore"):  # x / scale overflowing to inf clips to qmax, as in QONNX
                return quantize_input(df.input, x.reshape(batch, features)), True
        if q.dtype.kind not in "iu" or q.shape != (batch, features):
            raise Refusal("BAD_INPUT", f"'q' must be integers shaped (batch, {features}), got {q.dtype} {q.shape}")
        q = q.astype(np.int64)
        if df.input.dtype == BIPOLAR:
            bad = ~np.isin(q, (-1, 1))
        else:
            bad = (q < df.input.qmin) | (q > df.input.qmax)
        if bad.any():
            raise Refusal("BAD_INPUT", f"'q' values outside the input range [{df.input.qmin}, {df.input.qmax}] "
                                       f"of {df.input.dtype} (first at index {np.argwhere(bad)[0].tolist()})")
        return q, False

    def _run(self, frame: Frame) -> tuple[dict[str, Any], list[Part]]:
        df = self._require_design()
        q, _ = self._inputs(frame, df)
        result = self.backend.run(q)
        out = np.asarray(result.outputs, dtype=np.int64)
        if out.ndim != 2 or out.shape[0] != q.shape[0]:
            raise BackendError(f"backend returned outputs shaped {out.shape} for a batch of {q.shape[0]}")
        parts = [array_part("out", out), array_part("q", q)]
        if not df.argmax:
            y = dequantize_output(df, out).reshape((q.shape[0], *df.output_shape))
            parts.append(array_part("y", y))
        if result.latency_cycles is not None:
            parts.append(array_part("latency_cycles", np.asarray(result.latency_cycles, dtype=np.int64)))
        return {"timings": dict(result.timings), "counters": dict(result.counters)}, parts

    def _bench(self, frame: Frame) -> tuple[dict[str, Any], list[Part]]:
        df = self._require_design()
        h = frame.header
        warmup, iterations, batch = h.get("warmup", 10), h.get("iterations", 100), h.get("batch", 1)
        seed, budget = h.get("seed", 0), h.get("max_seconds", self.config.max_bench_seconds)
        for key, value, top in (("warmup", warmup, self.config.max_bench_iterations),
                                ("iterations", iterations, self.config.max_bench_iterations),
                                ("batch", batch, self.config.max_batch)):
            if not isinstance(value, int) or isinstance(value, bool) or not (0 if key == "warmup" else 1) <= value <= top:
                raise Refusal("LIMIT", f"BENCH {key}={value!r} outside {0 if key == 'warmup' else 1}..{top}")
        if not isinstance(budget, (int, float)) or not 0 < budget <= self.config.max_bench_seconds:
            raise Refusal("LIMIT", f"BENCH max_seconds={budget!r} outside (0, {self.config.max_bench_seconds:g}]")
        if not isinstance(seed, int):
            raise Refusal("BAD_REQUEST", "BENCH seed must be an integer")
        rng = np.random.default_rng(seed)
        lo, hi = df.input.qmin, df.input.qmax
        q = rng.integers(lo, hi + 1, size=(batch, df.input.features))
        if df.input.dtype == BIPOLAR:
            q = np.where(q >= 0, 1, -1)
        deadline = time.monotonic() + float(budget)
        for _ in range(warmup):
            if time.monotonic() > deadline:
                break
            self.backend.run(q)
        walls, cycles, modelled, inferences, padding = [], [], [], [], 0
        for _ in range(iterations):
            if time.monotonic() > deadline:
                break
            result = self.backend.run(q)
            padding = int(result.counters.get("padding_vectors", 0))
            walls.append(result.timings.get("wall_s", float("nan")))
            cycles.append(result.timings.get("cycles", -1))
            modelled.append(result.timings.get("modelled_s", float("nan")))
            inferences.append(result.counters.get("inferences", -1))
        parts = [array_part("wall_s", np.asarray(walls, dtype=np.float64))]
        if any(c >= 0 for c in cycles):
            parts.append(array_part("cycles", np.asarray(cycles, dtype=np.int64)))
            parts.append(array_part("modelled_s", np.asarray(modelled, dtype=np.float64)))
        parts.append(array_part("inferences", np.asarray(inferences, dtype=np.int64)))
        header = {"warmup": warmup, "iterations": len(walls), "requested": iterations, "batch": batch,
                  "padding_vectors": padding, "truncated": len(walls) < iterations, **self.backend.describe()}
        return header, parts

    def _power(self, frame: Frame) -> tuple[dict[str, Any], list[Part]]:
        action = frame.header.get("action")
        if action not in ("start", "mark", "stop"):
            raise Refusal("BAD_REQUEST", f"POWER action {action!r}: expected start, mark or stop")
        label = frame.header.get("label")
        interval = frame.header.get("interval_s", 0.1)
        if not isinstance(interval, (int, float)) or not 0.01 <= interval <= 10:
            raise Refusal("LIMIT", f"POWER interval_s={interval!r} outside 0.01..10")
        info = self.backend.power(action, None if label is None else str(label)[:200], float(interval))
        parts = [array_part(k, v) for k, v in info.pop("arrays", {}).items()]
        return info, parts

    def _reset(self, frame: Frame) -> tuple[dict[str, Any], list[Part]]:
        self.backend.reset()
        return {"design": self._design}, []
