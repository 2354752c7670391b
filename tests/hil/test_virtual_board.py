"""Done-when of the HIL issue: `qmlp hil OUT --target sim` passes on real RTL, and the same suite
passes unchanged against `tcp://127.0.0.1:PORT` served by a `qmlp agent` process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from qmlp import ir
from qmlp.cli import main
from qmlp.hil.client import BoardClient, open_board
from qmlp.sim.bitaccurate import run_integer

from .conftest import TOKEN, files_under

VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.hil  # virtual board: real RTL under Verilator


def test_virtual_board_runs_the_rtl_with_cycle_timing(compiled_out):
    df = ir.load(compiled_out / "dataflow.json")
    q = np.random.default_rng(3).integers(df.input.qmin, df.input.qmax + 1, size=(40, df.input.features))
    with open_board("sim") as board:
        assert board.hello()["engine"] == "verilator"
        board.load(compiled_out)
        reply = board.run(q=q)
    assert df.argmax and reply.y is None  # the fabric sends class indices: nothing to dequantize
    assert np.array_equal(reply.out, np.argmax(run_integer(df, q)[1][-1], axis=1)[:, None])
    assert reply.counters["inferences"] == 40
    assert reply.counters["last_latency_cycles"] == reply.latency_cycles[-1]  # AXI-Lite counter == stream timing
    assert len(reply.latency_cycles) == 40 and np.all(reply.latency_cycles > 0)
    assert reply.timings["modelled_s"] == pytest.approx(reply.timings["cycles"] / 200e6)


def test_qmlp_hil_sim_passes(compiled_out, tmp_path, capsys):
    junit = tmp_path / "hil.xml"
    assert main(["hil", str(compiled_out), "--target", "sim", "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    assert "11/11 passed" in out and ": PASS" in out and "(virtual, verilator)" in out
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("11", "0", "0")


def _start_agent(workdir: Path, token_file: Path) -> tuple[subprocess.Popen, int]:
    from qmlp.sim.rtl import cache_dir

    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    # --cache-dir: share the harness already built by the in-process tests (default: in WORKDIR).
    proc = subprocess.Popen([str(VENV_BIN / "qmlp"), "agent", "--port", "0", "--token-file", str(token_file),
                             "--workdir", str(workdir), "--backend", "sim", "--cache-dir", str(cache_dir())],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return proc, int(match.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("qmlp agent did not report its port")


@pytest.fixture
def agent_process(tmp_path, write_token):
    token_file = write_token()
    workdir = tmp_path / "agent-work"
    proc, port = _start_agent(workdir, token_file)
    yield port, token_file, workdir
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_same_suite_over_tcp_against_an_agent_process(compiled_out, agent_process, tmp_path, capsys):
    port, token_file, workdir = agent_process
    before = files_under(tmp_path) - {p for p in files_under(tmp_path) if p.startswith("agent-work")}
    argv = ["hil", str(compiled_out), "--target", f"tcp://127.0.0.1:{port}", "--token-file", str(token_file)]
    assert main(argv) == 0
    assert "11/11 passed" in capsys.readouterr().out
    # The agent wrote only inside its work folder: one design, uploaded names kept.
    designs = list((workdir / "designs").iterdir())
    assert len(designs) == 1 and (designs[0] / "rtl" / "qmlp_top.v").is_file()
    assert sorted(p.name for p in workdir.iterdir()) == ["designs", "tmp"] and not any((workdir / "tmp").iterdir())
    assert files_under(tmp_path) - {p for p in files_under(tmp_path) if p.startswith("agent-work")} == before
    # A wrong token is refused by the real process, which keeps serving.
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-agent-token-0123456789\n")
    assert main(["hil", str(compiled_out), "--target", f"tcp://127.0.0.1:{port}", "--token-file", str(wrong)]) == 2
    assert "AUTH_FAILED" in capsys.readouterr().err
    with BoardClient("127.0.0.1", port, TOKEN) as board:
        assert board.hello()["design"] is not None


USER_TESTS = '''
import numpy as np
import pytest

@pytest.mark.hil
def test_zero_input(board, hil_expected):
    q = np.zeros((2, board.dataflow.input.features), dtype=np.int64)
    assert np.array_equal(board.run(q=q).out, hil_expected(q))

@pytest.mark.hil
def test_counts_inferences(board):
    q = np.ones((5, board.dataflow.input.features), dtype=np.int64)
    assert board.run(q=q).counters["inferences"] == 5

@pytest.mark.hil
def test_deliberately_wrong(board, hil_expected):
    q = np.zeros((1, board.dataflow.input.features), dtype=np.int64)
    assert np.array_equal(board.run(q=q).out, hil_expected(q) + 1)
'''


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "user").mkdir(exist_ok=True)
    (tmp_path / "user" / "test_user_hil.py").write_text(USER_TESTS)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                           str(tmp_path / "user"), str(tmp_path / "user"), *args],
                          cwd=tmp_path / "user", capture_output=True, text=True, timeout=300)


def test_pytest_plugin_board_fixture_on_sim_and_tcp(compiled_out, agent_process, tmp_path):
    run = _pytest(tmp_path, "--hil-out", str(compiled_out))  # default target: the virtual board
    assert "2 passed" in run.stdout and "1 failed" in run.stdout, run.stdout + run.stderr
    assert "test_deliberately_wrong" in run.stdout
    port, token_file, _ = agent_process
    run = _pytest(tmp_path, "--hil-out", str(compiled_out), "--hil-target", f"tcp://127.0.0.1:{port}",
                  "--hil-token-file", str(token_file))
    assert "2 passed" in run.stdout and "1 failed" in run.stdout, run.stdout + run.stderr
    run = _pytest(tmp_path, "--hil-target", "none")
    assert "3 skipped" in run.stdout, run.stdout
    run = _pytest(tmp_path)  # no design given: a usage error, not a silent skip
    assert run.returncode != 0 and "needs a design: pass --hil-out" in run.stdout + run.stderr
