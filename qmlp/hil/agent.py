"""The board agent: a small TCP server that runs HIL requests on one backend, one job at a time.

Threads: one accept loop and one short-lived thread per connection. A connection must
authenticate first (challenge-response, see ``protocol``) within ``handshake_seconds``; until
then it is *pending*, and pending connections are not sessions: at most
``max_pending_per_address`` per client address and ``max_pending`` in all, and when a newcomer
finds either quota full the oldest pending connection of that address (else the oldest of all)
is dropped. So strangers can neither exhaust the agent nor keep a token holder out: the newest
connection always gets its handshake. Only authenticated connections count against
``max_connections``; the first one owns the board until it disconnects or stays idle longer than
``idle_seconds``, the others get a BUSY error frame and are closed. Framing errors close the
connection (the stream cannot be resynchronised); a bad request gets an error frame and the
session goes on. Before authentication a peer gets only fixed texts, never an exception's.

LOAD is streamed: every file name is checked from the header first, then each file part is
written into a fresh private folder under ``workdir/designs`` as it arrives, hashed on the fly,
and the folder is renamed into place only when every hash, the manifest and ``dataflow.json``
check out. The agent never holds an upload in memory (one ``protocol.CHUNK`` at a time, plus
``dataflow.json``, at most ``max_dataflow_bytes``).

Trust: the token authorises uploading designs, and designs are code (a Python driver on a board,
Verilog compiled by Verilator on the virtual board), so a token holder can run code as the agent's
user. Everything without the token is refused before it costs more than a 4 KiB header.
"""

from __future__ import annotations

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
from ..build import DATAFLOW
from ..datatypes import BIPOLAR
from ..errors import QmlpError
from ..ir import Dataflow, from_json, verify
from ..untrusted import InputError, finite_floats, parse_json
from ..sim.bitaccurate import dequantize_output, quantize_input
from .backend import Backend, BackendError, NoRails
from .protocol import (PROTOCOL_VERSION, Frame, FrameHead, Limits, Part, PartSpec, ProtocolError, agent_proof,
                       array_part, check_proof, client_proof, new_nonce, recv_file, recv_frame, recv_head, recv_parts,
                       send_frame, sha256_hex, skip_payload, tune_socket)

__all__ = ["AgentConfig", "Agent", "Refusal", "safe_relative_path", "prepare_workdir", "ensure_folder"]

log = logging.getLogger("qmlp.hil.agent")

_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
_NONCE = re.compile(r"[0-9a-f]{16,128}")
_SMALL_FILES = ("manifest.json", "bitstream/SHA256SUMS")  # read back into memory to check the upload


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
    handshake_seconds: float = 3.0  # to start the AUTH frame, and again to finish it
    idle_seconds: float = 300.0
    busy_grace_seconds: float = 1.0
    auth_failure_delay_seconds: float = 0.25
    max_connections: int = 4  # authenticated sessions at once (the owner + clients being told BUSY)
    # Connections still in the handshake (one idle thread each). Per address, more than a
    # client ever needs at once, so ordinary reconnects never push a token holder out.
    max_pending: int = 64
    max_pending_per_address: int = 8
    max_batch: int = 1 << 16
    max_files: int = 512
    max_dataflow_bytes: int = 8 << 20  # parsed in memory; the seed design's is 0.13 MB
    max_small_file_bytes: int = 1 << 20  # manifest.json, bitstream/SHA256SUMS
    max_bench_iterations: int = 100_000
    max_bench_seconds: float = 600.0


def ensure_folder(path: Path, option: str) -> Path:
    """``path`` as an existing folder (created with mode 0700 if missing), absolute; QmlpError
    naming ``option`` with one line if it is a file or cannot be created."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise QmlpError(f"{option} {folder}: is a file, not a folder; give a folder (it is created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise QmlpError(f"{option} {folder}: cannot create it ({error.strerror}); pick a folder this user can write") from None
    return folder.resolve()


def prepare_workdir(path: Path) -> Path:
    """The agent's work folder with its ``designs`` folder (see ``ensure_folder``)."""
    folder = ensure_folder(path, "--workdir")
    ensure_folder(folder / "designs", "--workdir")
    return folder


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


def upload_paths(specs: tuple[PartSpec, ...], max_files: int) -> list[PurePosixPath]:
    """The relative paths of a LOAD's parts, checked from the header alone: file parts only, at
    most ``max_files``, safe names, no duplicates and no name that is also another's folder."""
    if not specs or any(spec.kind != "file" for spec in specs):
        raise Refusal("BAD_REQUEST", "LOAD takes file parts only (dataflow.json and the design files)")
    if len(specs) > max_files:
        raise Refusal("LIMIT", f"LOAD of {len(specs)} files exceeds the limit of {max_files}")
    paths = [safe_relative_path(spec.name) for spec in specs]
    if len(set(paths)) != len(paths):
        raise Refusal("BAD_NAME", "LOAD lists the same file name twice")
    folders = {parent for path in paths for parent in path.parents}
    for path in paths:
        if path in folders:
            inner = next(p for p in paths if path in p.parents)
            raise Refusal("BAD_NAME", f"file name {str(path)!r} is also the folder of {str(inner)!r}; "
                                      "a name cannot be both a file and a folder")
    return paths


class _Sink:
    """One uploaded file being written. A write error is remembered and later writes are
    dropped, so the payload is still read to its end and the session stays in step."""

    def __init__(self, path: Path) -> None:
        self.error: OSError | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # O_EXCL + O_NOFOLLOW: never write through a link or over an existing file.
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as error:
            self._fd, self.error = None, error

    def write(self, data: memoryview) -> None:
        """Unbuffered: what has arrived is on disk (chunks are large; a buffer would gain nothing)."""
        while self._fd is not None and data:
            try:
                data = data[os.write(self._fd, data):]
            except OSError as error:
                self.error = error
                self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _outside(q: np.ndarray, lo: int, hi: int, bipolar: bool) -> np.ndarray:
    """Mask of the integers in ``q`` outside [lo, hi] (BIPOLAR: not -1 or +1), compared in q's
    own dtype: a uint64 2**64-1 is out of range, never wrapped to -1 first."""
    info = np.iinfo(q.dtype)
    if bipolar:
        allowed = np.array([v for v in (-1, 1) if info.min <= v <= info.max], dtype=q.dtype)
        return ~np.isin(q, allowed)
    lo, hi = max(lo, int(info.min)), min(hi, int(info.max))
    if lo > hi:
        return np.ones(q.shape, dtype=bool)
    return (q < q.dtype.type(lo)) | (q > q.dtype.type(hi))


class _Throttle:
    """Log lines about unauthenticated peers, at most one per ``seconds``: strangers cannot fill
    the agent's log (or the disk it is redirected to). Lines in between are counted and the count
    is reported with the next line that is written."""

    def __init__(self, seconds: float = 1.0) -> None:
        self._seconds, self._next, self._skipped = seconds, 0.0, 0
        self._lock = threading.Lock()

    def __call__(self, level: int, message: str, *args: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                self._skipped += 1
                return
            skipped, self._skipped, self._next = self._skipped, 0, now + self._seconds
        if skipped:
            message, args = message + " (%d similar lines suppressed)", (*args, skipped)
        log.log(level, message, *args)


def _shut(conn: socket.socket) -> None:
    """Wake whatever thread is blocked on ``conn``: its recv returns at once."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Agent:
    """``start()`` binds and serves in background threads; ``stop()`` shuts down and joins."""

    def __init__(self, config: AgentConfig, backend: Backend) -> None:
        if len(config.token) < 16:
            raise QmlpError("agent token shorter than 16 bytes; use a longer random secret")
        self.config = config
        self.backend = backend
        self.workdir = prepare_workdir(config.workdir)
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._owner = threading.Lock()  # held by the session that owns the board
        self._slots = threading.BoundedSemaphore(config.max_connections)  # authenticated sessions
        self._threads: set[threading.Thread] = set()
        self._conns: set[socket.socket] = set()
        self._pending: dict[socket.socket, str] = {}  # in the handshake, oldest first -> address
        self._log_stranger = _Throttle()
        self._threads_lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None
        self._df: Dataflow | None = None
        self._design: str | None = None
        self.address: tuple[str, int] | None = None
        self._commands: dict[str, Callable[[Frame], tuple[dict[str, Any], list[Part]]]] = {
            "HELLO": self._hello, "RUN": self._run, "BENCH": self._bench, "POWER": self._power, "RESET": self._reset,
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
        sock.listen(512)  # a burst of strangers must not fill the queue a token holder waits in
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
            _shut(conn)
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
            thread = threading.Thread(target=self._serve_connection, args=(conn, peer),
                                      name=f"qmlp-agent-{peer[1]}", daemon=True)
            with self._threads_lock:
                self._threads.add(thread)
                self._conns.add(conn)
            self._admit(conn, str(peer[0]))
            thread.start()

    def _admit(self, conn: socket.socket, address: str) -> None:
        """Register a connection that has yet to authenticate. If its address already has
        ``max_pending_per_address`` of them, or all addresses ``max_pending``, the oldest such
        connection is dropped (its thread ends at once): the newcomer always gets its turn."""
        with self._threads_lock:
            same = [c for c, a in self._pending.items() if a == address]
            if len(same) >= self.config.max_pending_per_address:
                victim: socket.socket | None = same[0]
            elif len(self._pending) >= self.config.max_pending:
                victim = next(iter(self._pending))
            else:
                victim = None
            if victim is not None:
                del self._pending[victim]
            self._pending[conn] = address
        if victim is not None:
            self._log_stranger(logging.INFO, "%s: dropped a connection still in the handshake to admit a newer one", address)
            _shut(victim)

    def _claim(self, conn: socket.socket) -> bool:
        """Move an authenticated connection out of the pending pool; False if it was dropped."""
        with self._threads_lock:
            return self._pending.pop(conn, None) is not None

    def _refuse_quietly(self, conn: socket.socket, code: str, message: str) -> None:
        """One error frame with a short send deadline, for a peer owed nothing more."""
        try:
            conn.settimeout(1.0)
            send_frame(conn, {"type": "error", "code": code, "message": message})
        except OSError:
            pass

    # --- one connection --------------------------------------------------------------------

    def _serve_connection(self, conn: socket.socket, peer: tuple[Any, ...]) -> None:
        authenticated = owner = slot = False
        try:
            tune_socket(conn)
            proof = self._authenticate(conn, peer)
            if proof is None or not self._claim(conn):
                return
            authenticated = True
            slot = self._slots.acquire(blocking=False)
            if not slot:
                self._refuse_quietly(conn, "BUSY", "too many connections; try again later")
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
            self._note(authenticated, "%s: %s", peer[0], error)
            if authenticated:
                self._send_error(conn, error.code, str(error))
            else:
                self._refuse_unauthenticated(conn, error.code)
        except OSError as error:  # vanished client: nothing to answer
            self._note(authenticated, "%s: connection lost: %s", peer[0], error)
        except Exception as error:
            log.exception("%s: connection handler crashed", peer[0])
            if authenticated:
                self._send_error(conn, "INTERNAL", f"agent error: {type(error).__name__}: {error}")
            else:
                self._refuse_quietly(conn, "INTERNAL", "agent error during the handshake (details in the agent's log)")
        finally:
            if owner:
                self._owner.release()
            if slot:
                self._slots.release()
            with self._threads_lock:
                self._pending.pop(conn, None)
                self._threads.discard(threading.current_thread())
                self._conns.discard(conn)
            conn.close()

    def _note(self, authenticated: bool, message: str, *args: Any) -> None:
        """An INFO line about a connection; throttled while the peer has not authenticated."""
        if authenticated:
            log.info(message, *args)
        else:
            self._log_stranger(logging.INFO, message, *args)

    def _refuse_unauthenticated(self, conn: socket.socket, code: str) -> None:
        """Before authentication the peer learns which rule it broke, never an exception's text."""
        if code == "FRAME_TOO_LARGE":
            self._refuse_quietly(conn, code, "before authentication a frame is one header of at most 4 KiB, no payload")
        elif code == "TIMEOUT":
            self._refuse_quietly(conn, code, "no complete AUTH frame within the handshake deadline")
        elif code != "CLOSED":
            self._refuse_quietly(conn, "BAD_FRAME", "not a valid qmlp frame; answer the challenge with AUTH")

    def _send_error(self, conn: socket.socket, code: str, message: str) -> None:
        # The client needs no absolute path of the agent's machine: WORKDIR stands for it.
        text = message.replace(str(self.workdir), "WORKDIR")
        try:
            send_frame(conn, {"type": "error", "code": code, "message": text})
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
        frame = recv_frame(conn, small, first_byte_seconds=self.config.handshake_seconds, peer=f"client {peer[0]}")
        if frame.header.get("cmd") != "AUTH":
            self._refuse_quietly(conn, "AUTH_REQUIRED", "authenticate first: answer the challenge with AUTH")
            return None
        client_nonce, proof = frame.header.get("client_nonce"), frame.header.get("proof")
        if not isinstance(client_nonce, str) or not _NONCE.fullmatch(client_nonce) or not isinstance(proof, str):
            self._refuse_quietly(conn, "AUTH_FAILED", "AUTH needs client_nonce and proof (is a token file configured?)")
            return None
        if not check_proof(client_proof(self.config.token, nonce, client_nonce), proof):
            self._log_stranger(logging.WARNING, "%s: authentication failed", peer[0])
            time.sleep(self.config.auth_failure_delay_seconds)  # slows token guessing
            self._refuse_quietly(conn, "AUTH_FAILED", "wrong token: the proof does not match the agent's token file")
            return None
        return agent_proof(self.config.token, nonce, client_nonce)

    def _session(self, conn: socket.socket, peer: tuple[Any, ...]) -> bool:
        """Serve requests until the client leaves; True if it said BYE (still to be answered)."""
        while not self._stop.is_set():
            try:
                head = recv_head(conn, self.config.limits, first_byte_seconds=self.config.idle_seconds,
                                 peer=f"client {peer[0]}")
            except ProtocolError as error:
                if error.code == "CLOSED":
                    return False
                raise
            cmd = head.header.get("cmd")
            if cmd == "BYE":
                return True
            try:
                header, parts = self._dispatch(conn, head)
            except ProtocolError:  # the stream is out of step: the connection ends
                raise
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

    def _dispatch(self, conn: socket.socket, head: FrameHead) -> tuple[dict[str, Any], list[Part]]:
        """Run one request; LOAD reads its own payload (to disk), every other command gets it in memory."""
        cmd = head.header.get("cmd")
        if cmd == "LOAD":
            return self._load(conn, head)
        frame = Frame(header=head.header, parts=recv_parts(conn, head, self.config.limits))
        handler = self._commands.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            raise Refusal("UNKNOWN_COMMAND", f"unknown command {cmd!r}; expected one of "
                                             f"{', '.join(sorted([*self._commands, 'LOAD']))}, BYE")
        return handler(frame)

    # --- commands ----------------------------------------------------------------------------

    def _hello(self, frame: Frame) -> tuple[dict[str, Any], list[Part]]:
        return {
            "protocol": PROTOCOL_VERSION, "qmlp": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "backend": self.backend.name, **self.backend.describe(),
            "design": self._design, "design_name": None if self._df is None else self._df.name,
            "limits": {"max_batch": self.config.max_batch, "max_payload": self.config.limits.max_payload},
        }, []

    def _load(self, conn: socket.socket, head: FrameHead) -> tuple[dict[str, Any], list[Part]]:
        """Check the names from the header, stream every file into a fresh private folder (hash
        on the fly), then check hashes, manifest and dataflow.json and rename the folder into place.
        The payload is always read to its end, so a refused LOAD leaves the session in step."""
        specs = head.specs
        incoming = self.workdir / "designs" / f".incoming-{os.urandom(6).hex()}"
        try:
            paths = upload_paths(specs, self.config.max_files)
            self._check_upload_sizes(specs)
            try:
                incoming.mkdir(mode=0o700)
            except OSError as error:
                raise Refusal("STORAGE", f"cannot create an upload folder in the agent's work folder "
                                         f"({error.strerror}); free space there or fix its permissions") from None
        except Refusal:
            skip_payload(conn, head, self.config.limits)
            raise
        try:
            digests = self._receive_files(conn, head, paths, incoming)
            self._check_manifest(incoming, digests)
            df = self._parse_dataflow((incoming / DATAFLOW).read_bytes())
            for needed in self.backend.required_files(df):
                folder = needed.endswith("/")
                if not any(str(p) == needed or (folder and str(p).startswith(needed)) for p in paths):
                    raise Refusal("BAD_DESIGN", f"LOAD for backend {self.backend.name!r} needs {needed!r}")
            digest = sha256_hex("".join(f"{name}:{digests[name]}\n" for name in sorted(digests)).encode())[:16]
            design_dir = self.workdir / "designs" / digest
            if design_dir.exists():
                shutil.rmtree(design_dir)
            incoming.rename(design_dir)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        try:
            info = self.backend.load(design_dir, df)
        except BaseException:
            # The backend refused (or failed on) the upload: keep no files and no stale design.
            shutil.rmtree(design_dir, ignore_errors=True)
            self._df = self._design = None
            raise
        self._df, self._design = df, digest
        self._prune(keep=design_dir)
        log.info("loaded design %s (%s, %d files)", digest, df.name, len(specs))
        return {"design": digest, "name": df.name, "files": len(specs), **info}, []

    def _check_upload_sizes(self, specs: tuple[PartSpec, ...]) -> None:
        """Files the agent reads back into memory have a size limit, checked before any byte arrives."""
        sizes = {spec.name: spec.size for spec in specs}
        if DATAFLOW not in sizes:
            raise Refusal("BAD_DESIGN", "LOAD without dataflow.json: upload OUT/dataflow.json with the design")
        limits = {DATAFLOW: self.config.max_dataflow_bytes,
                  **{name: self.config.max_small_file_bytes for name in _SMALL_FILES}}
        for name, limit in limits.items():
            if sizes.get(name, 0) > limit:
                raise Refusal("LIMIT", f"LOAD: {name} of {sizes[name]} bytes exceeds the limit of {limit}")

    def _receive_files(self, conn: socket.socket, head: FrameHead, paths: list[PurePosixPath],
                       incoming: Path) -> dict[str, str]:
        """Every file part written under ``incoming`` as it arrives; returns name -> sha256 once
        all of them match the hashes the header declared."""
        digests, problems = {}, []
        for spec, rel in zip(head.specs, paths):
            sink = _Sink(incoming.joinpath(*rel.parts))
            try:
                digests[spec.name] = recv_file(conn, head, spec, self.config.limits, sink)
            finally:
                sink.close()
            if sink.error is not None and not problems:
                problems.append(Refusal("STORAGE", f"{spec.name}: cannot store it in the agent's work folder "
                                                   f"({sink.error.strerror}); free space there and retry"))
        for spec in head.specs:
            actual = digests[spec.name]
            if actual != str(spec.sha256).lower():
                problems.append(Refusal("HASH_MISMATCH", f"{spec.name}: received bytes hash to sha256 {actual[:16]}..., "
                                                         f"declared {str(spec.sha256)[:16]}...; re-send an intact copy"))
        if problems:
            raise problems[0]
        return digests

    @staticmethod
    def _check_manifest(folder: Path, digests: dict[str, str]) -> None:
        """A deploy folder carries manifest.json (sha256 of every file) and, once Vivado ran,
        bitstream/SHA256SUMS: check the uploaded files against both before the design is used."""
        expected: dict[str, str] = {}
        if "manifest.json" in digests:
            try:
                manifest = parse_json((folder / "manifest.json").read_bytes(), "manifest.json")
                listed = manifest["files"] if manifest.get("schema") == "qmlp.deploy" else {}
                expected.update({str(k): str(v) for k, v in dict(listed).items()})
            except (InputError, ValueError, KeyError, TypeError, AttributeError) as error:
                raise Refusal("BAD_DESIGN", f"manifest.json is unreadable: {type(error).__name__}: {str(error)[:200]}") from None
        if "bitstream/SHA256SUMS" in digests:
            text = (folder / "bitstream" / "SHA256SUMS").read_bytes().decode("utf-8", "replace")
            for line in text.splitlines():
                digest, _, name = line.partition("  ")
                if name.strip():
                    expected[f"bitstream/{name.strip()}"] = digest.strip()
        for name, digest in sorted(expected.items()):
            if name not in digests:
                raise Refusal("BAD_DESIGN", f"{name[:200]!r}: listed in the deploy manifest but not uploaded")
            actual = digests[name]
            if actual != digest.lower():
                raise Refusal("HASH_MISMATCH", f"{name}: sha256 {actual[:16]}... does not match the deploy manifest "
                                               f"({digest[:16]}...): corrupt or edited file; rebuild or re-copy it")

    @staticmethod
    def _parse_dataflow(data: bytes) -> Dataflow:
        """The uploaded IR, or Refusal(BAD_DESIGN) with one line for anything malformed: read and
        checked exactly as the CLI reads OUT/dataflow.json (``untrusted.parse_json``: size, depth,
        no NaN/Infinity; ``ir.from_json`` field by field; ``ir.verify``)."""
        try:
            df = from_json(parse_json(data, DATAFLOW), DATAFLOW)
            verify(df)
        except Exception as error:  # untrusted input: whatever the loader trips on is a refusal
            text = " ".join(str(error).split())[:300]
            raise Refusal("BAD_DESIGN", f"dataflow.json is not a valid qmlp dataflow: {type(error).__name__}: {text}") from None
        return df

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
            try:  # qmlp's one rule for non-finite inputs, as `qmlp simulate` and the driver apply it
                x = finite_floats(x, "'x'")
            except InputError as error:
                raise Refusal("BAD_INPUT", str(error)) from None
            with np.errstate(over="ignore"):  # a finite x / scale overflowing to inf clips to qmax, as in QONNX
                return quantize_input(df.input, x.reshape(batch, features)), True
        if q.dtype.kind not in "iu" or q.shape != (batch, features):
            raise Refusal("BAD_INPUT", f"'q' must be integers shaped (batch, {features}), got {q.dtype} {q.shape}")
        bad = _outside(q, df.input.qmin, df.input.qmax, bipolar=df.input.dtype == BIPOLAR)
        if bad.any():
            raise Refusal("BAD_INPUT", f"'q' values outside the input range [{df.input.qmin}, {df.input.qmax}] "
                                       f"of {df.input.dtype} (first at index {np.argwhere(bad)[0].tolist()})")
        return q.astype(np.int64), False

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
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 1 << 63:
            raise Refusal("BAD_REQUEST", f"BENCH seed={seed!r}: must be an integer in 0..2**63-1")
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
