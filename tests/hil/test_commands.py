"""`qmlp hil` and `qmlp agent` on bad input: one `qmlp: error:` line, exit status 2."""

from __future__ import annotations

import socket

import pytest

from qmlp.cli import main
from qmlp.hil.client import design_files, parse_target


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qmlp: error: ")
    return err[0]


def test_hil_needs_a_compiled_out(capsys, tmp_path):
    assert "no dataflow.json; pass the output folder of 'qmlp compile'" in _error(capsys, ["hil", str(tmp_path)])


BAD_TARGETS = ["board", "tcp://", "tcp://host", "http://h:1", "tcp://h:99999", "tcp://h:1/x", "tcp://[::1",
               "tcp://[::1:7373", "tcp://::1]:7373", "tcp://[zz]:1"]


@pytest.mark.parametrize("target", BAD_TARGETS)
def test_hil_rejects_bad_targets(capsys, design_dir, target):
    assert f"--target {target!r}: expected 'sim' or 'tcp://HOST:PORT'" in _error(capsys, ["hil", str(design_dir), "--target", target])


@pytest.mark.parametrize("target", ["tcp://[::1", "board"])
def test_profile_rejects_bad_targets(capsys, design_dir, target):
    assert f"--target {target!r}: expected 'sim' or 'tcp://HOST:PORT'" in _error(capsys, ["profile", str(design_dir), "--target", target])


def test_hil_tcp_needs_a_token_file_and_a_reachable_agent(capsys, design_dir, write_token):
    assert "needs --token-file" in _error(capsys, ["hil", str(design_dir), "--target", "tcp://127.0.0.1:9"])
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = _error(capsys, ["hil", str(design_dir), "--target", f"tcp://127.0.0.1:{port}", "--token-file", str(write_token())])
    assert f"cannot reach agent at 127.0.0.1:{port}" in message


def test_agent_rejects_bad_options(capsys, tmp_path):
    assert "--port 70000: must be 0..65535" in _error(capsys, ["agent", "--port", "70000", "--workdir", str(tmp_path)])
    assert "cannot read" in _error(capsys, ["agent", "--token-file", str(tmp_path / "none"), "--workdir", str(tmp_path)])


def test_parse_target():
    assert parse_target("sim") is None
    assert parse_target("tcp://192.168.2.99:7373") == ("192.168.2.99", 7373)
    assert parse_target("tcp://[::1]:7373") == ("::1", 7373)


def test_design_files_for_each_backend(design_dir):
    assert sorted(design_files(design_dir, "sim")) == ["dataflow.json", "rtl/qmlp_top.v"]
    from qmlp.errors import ConfigError

    deploy = design_dir / "deploy"
    (deploy / "bitstream").mkdir(parents=True)
    (deploy / "dataflow.json").write_bytes((design_dir / "dataflow.json").read_bytes())
    with pytest.raises(ConfigError, match=r"deploy/bitstream/qmlp.bit: missing; build the bitstream"):
        design_files(design_dir, "pynq")
    (deploy / "bitstream" / "qmlp.bit").write_bytes(b"bit")
    (deploy / "bitstream" / "qmlp.hwh").write_text("<hwh/>")
    (deploy / "qmlp_driver" / "__pycache__").mkdir(parents=True)
    (deploy / "qmlp_driver" / "__init__.py").write_text("# driver\n")
    (deploy / "qmlp_driver" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert sorted(design_files(design_dir, "pynq")) == ["bitstream/qmlp.bit", "bitstream/qmlp.hwh", "dataflow.json",
                                                        "qmlp_driver/__init__.py"]
    with pytest.raises(ConfigError, match="backend 'fpga' unknown"):
        design_files(design_dir, "fpga")


def test_board_side_modules_need_only_numpy():
    """The agent runs on a board's Python, where onnx/qonnx/torch are not installed."""
    import subprocess
    import sys

    code = ("import sys; import qmlp.hil.agent, qmlp.hil.client, qmlp.hil.pynq_backend, qmlp.hil.sim, qmlp.hil.__main__; "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'onnx', 'qonnx', 'onnxruntime', 'torch', 'brevitas', "
            "'scipy', 'pandas', 'pynq'}); print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_python_m_qmlp_hil_is_the_agent(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "qmlp.hil", "--port", "70000", "--workdir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == "qmlp: error: --port 70000: must be 0..65535"


def test_agent_creates_a_private_token_when_none_is_given(tmp_path):
    import os
    import re
    import subprocess
    import sys

    from qmlp.hil.client import BoardClient
    from qmlp.hil.protocol import read_token

    workdir = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "qmlp.hil", "--port", "0", "--workdir", str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert f"created token file {workdir / 'agent.token'}" in lines[0]
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", lines[1]).group(1))
        token_file = workdir / "agent.token"
        assert os.stat(token_file).st_mode & 0o777 == 0o600
        with BoardClient("127.0.0.1", port, read_token(token_file), timeout_s=10) as client:
            assert client.hello()["backend"] == "sim"
    finally:
        proc.terminate()
        proc.wait(10)
