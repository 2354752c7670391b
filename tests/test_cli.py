"""The CLI shell: dispatch, one-line errors, and a board-side install without onnx/torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from qmlp.cli import COMMANDS, main

# Runs qmlp with onnx, qonnx, onnxruntime and torch made unimportable, as on a PYNQ image.
_WITHOUT_ONNX = textwrap.dedent("""
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split('.')[0] in ('onnx', 'qonnx', 'onnxruntime', 'torch', 'brevitas'):
                raise ImportError(f"No module named '{name}'", name=name)
    sys.meta_path.insert(0, Block())
    from qmlp.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _run_without_onnx(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _WITHOUT_ONNX, *args], capture_output=True, text=True, timeout=120)


def test_every_command_has_help(capsys):
    for name in COMMANDS:
        try:
            main([name, "--help"])
        except SystemExit as stop:
            assert stop.code == 0
    assert "usage: qmlp" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_board_side_agent_starts_without_onnx():
    result = _run_without_onnx("agent", "--help")
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout


def test_onnx_commands_say_what_is_missing_without_onnx():
    result = _run_without_onnx("verify", "model.onnx")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("qmlp: error: 'qmlp verify' needs the Python package 'onnx'")


def test_sigterm_during_compile_leaves_no_scratch_folder(tmp_path):
    """A compile killed with SIGTERM (here: during Yosys) removes its temporary build folder."""
    import signal
    import time
    from pathlib import Path

    model = Path(__file__).resolve().parent.parent / "examples" / "can_ids_w2a2.onnx"
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "qmlp", "compile", str(model), "-o", str(out), "--synth"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob(".out.tmp-*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert any(tmp_path.glob(".out.tmp-*")), "the compile never started its scratch folder"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert list(tmp_path.iterdir()) == []


def test_misspelt_command_and_board_get_a_suggestion(capsys):
    from qmlp.cli import main
    from qmlp.errors import did_you_mean

    assert main(["compil", "x.onnx"]) == 2
    assert capsys.readouterr().err.startswith("qmlp: error: unknown command 'compil'; did you mean 'compile'?")
    boards = ["kv260", "pynq-z2", "ultra96v2", "zcu104"]
    assert [did_you_mean(name, boards) for name in ("PYNQ-Z2", "pynqz2", "ultra96", "Kv260", "nosuch")] == [
        "pynq-z2", "pynq-z2", "ultra96v2", "kv260", None]
    assert main(["info", "x.onnx", "--json"]) == 2  # a real command still parses (and fails on the missing file)


def test_board_suggestion_in_the_error(capsys):
    from qmlp.boards import get_board
    from qmlp.errors import ConfigError

    import pytest

    with pytest.raises(ConfigError, match=r"unknown board 'PYNQ-Z2'; did you mean 'pynq-z2'\? known boards: "):
        get_board("PYNQ-Z2")


def test_torch_checkpoint_is_recognised(tmp_path):
    import pytest

    from qmlp.errors import ModelError
    from qmlp.frontend.load import load_model

    path = tmp_path / "model.pt"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 60)  # torch.save's zip container
    with pytest.raises(ModelError, match="a PyTorch checkpoint, not an ONNX model; export the Brevitas model with "
                                         r"brevitas.export.export_qonnx\("):
        load_model(path)
