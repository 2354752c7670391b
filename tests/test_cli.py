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
