"""An upload costs the agent a fixed amount of memory, not its size (issue 14, finding 5).

The agent runs as its own process (``python -m qmlp.hil``) so its resident memory can be read
from /proc/PID/status: VmHWM is the peak since start, VmRSS the current value."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from hil.conftest import TOKEN, design_dir, raw_authenticated  # noqa: F401  (design_dir is a fixture)
from qmlp.hil.protocol import MAGIC, PREFIX, Limits, recv_frame
from qmlp.testing import wait_for

MIB = 1 << 20
pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status (Linux)")


def _status_mib(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) / 1024


@contextmanager
def agent_process(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """``python -m qmlp.hil`` on an ephemeral 127.0.0.1 port with the test token."""
    token = tmp_path / "token"
    token.write_bytes(TOKEN + b"\n")
    os.chmod(token, 0o600)
    workdir = tmp_path / "agentwork"
    proc = subprocess.Popen([sys.executable, "-m", "qmlp.hil", "--port", "0", "--workdir", str(workdir),
                             "--token-file", str(token), "--idle-timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1))
        yield SimpleNamespace(pid=proc.pid, address=("127.0.0.1", port), workdir=workdir)
    finally:
        proc.terminate()
        proc.wait(10)


def _load(agent, design_dir: Path, blob_bytes: int) -> None:
    """LOAD dataflow.json + rtl/qmlp_top.v + an rtl/blob.mem of ``blob_bytes``, sent as a 1 MiB
    random chunk over and over so this process never holds the payload either."""
    chunk = os.urandom(MIB)
    digest = hashlib.sha256()
    for start in range(0, blob_bytes, MIB):
        digest.update(chunk[:blob_bytes - start])
    small = {name: (design_dir / name).read_bytes() for name in ("dataflow.json", "rtl/qmlp_top.v")}
    parts = [{"name": name, "kind": "file", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
             for name, data in small.items()]
    parts.append({"name": "rtl/blob.mem", "kind": "file", "size": blob_bytes, "sha256": digest.hexdigest()})
    head = json.dumps({"cmd": "LOAD", "parts": parts}).encode()
    sock = raw_authenticated(agent)
    try:
        sock.sendall(PREFIX.pack(MAGIC, len(head), sum(p["size"] for p in parts)) + head + b"".join(small.values()))
        for start in range(0, blob_bytes, MIB):
            sock.sendall(chunk[:blob_bytes - start])
        reply = recv_frame(sock, Limits(), first_byte_seconds=60)
        assert reply.header.get("type") == "ok" and reply.header["files"] == 3, reply.header
    finally:
        sock.close()


def test_load_peak_memory_does_not_grow_with_the_payload(tmp_path, design_dir):
    with agent_process(tmp_path) as agent:
        _load(agent, design_dir, MIB)  # warm-up: every code path of LOAD has run once
        base = _status_mib(agent.pid, "VmHWM")
        _load(agent, design_dir, 16 * MIB)
        after_16 = _status_mib(agent.pid, "VmHWM")
        _load(agent, design_dir, 64 * MIB)
        after_64 = _status_mib(agent.pid, "VmHWM")
    # Buffering the upload (the old agent) would add ~2.2x: +35 MiB, then +140 MiB.
    print(f"agent VmHWM: {base:.1f} MiB after a 1 MiB LOAD, {after_16:.1f} after 16 MiB, {after_64:.1f} after 64 MiB")
    assert after_16 - base < 8 and after_64 - base < 8, (base, after_16, after_64)


def test_a_declared_length_is_not_held_before_its_bytes_arrive(tmp_path, design_dir):
    with agent_process(tmp_path) as agent:
        _load(agent, design_dir, MIB)
        base = _status_mib(agent.pid, "VmRSS")
        sock = raw_authenticated(agent)
        dataflow, declared = (design_dir / "dataflow.json").read_bytes(), 200 * MIB
        parts = [{"name": "dataflow.json", "kind": "file", "size": len(dataflow),
                  "sha256": hashlib.sha256(dataflow).hexdigest()},
                 {"name": "rtl/blob.mem", "kind": "file", "size": declared, "sha256": "0" * 64}]
        head = json.dumps({"cmd": "LOAD", "parts": parts}).encode()
        sock.sendall(PREFIX.pack(MAGIC, len(head), len(dataflow) + declared) + head + dataflow + b"\0" * MIB)
        designs = agent.workdir / "designs"
        wait_for(lambda: sum(p.stat().st_size for p in designs.glob(".incoming-*/rtl/blob.mem")) >= MIB,
                 "the agent to write the 1 MiB it was sent", timeout=10)
        held = _status_mib(agent.pid, "VmRSS") - base
        print(f"agent VmRSS {base:.1f} MiB before, +{held:.1f} MiB while 1 MiB of a declared 200 MiB has arrived")
        sock.close()
        # the partial upload is removed once the client is gone
        wait_for(lambda: not list(designs.glob(".incoming-*")), "the partial upload to be removed", timeout=20)
    assert held < 8, f"agent holds {held:.1f} MiB more while 1 MiB of a 200 MiB upload arrived"


def test_a_256_mib_load_peaks_under_300_mib(tmp_path, design_dir):
    """The issue's bound, at the agent's default payload limit (256 MiB in all; ~3 s here)."""
    with agent_process(tmp_path) as agent:
        small = len((design_dir / "dataflow.json").read_bytes()) + len((design_dir / "rtl" / "qmlp_top.v").read_bytes())
        start = _status_mib(agent.pid, "VmHWM")
        _load(agent, design_dir, 256 * MIB - small)
        peak = _status_mib(agent.pid, "VmHWM")
    print(f"agent VmHWM: {start:.1f} MiB at start, {peak:.1f} MiB after a 256 MiB LOAD")
    assert peak < 300
