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
