"""`qmlp agent` refuses unusable options with one line and exit 2, before it listens (issue 14)."""

from __future__ import annotations

import pytest

from qmlp.cli import main


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qmlp: error: "), err
    return err[0]


def test_workdir_that_is_a_file(capsys, tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    message = _error(capsys, ["agent", "--port", "0", "--workdir", str(file)])
    assert f"--workdir {file}: is a file, not a folder" in message
    assert file.read_text() == "mine\n"


def test_cache_dir_that_is_a_file(capsys, tmp_path):
    (tmp_path / "cache").write_text("x")
    message = _error(capsys, ["agent", "--port", "0", "--workdir", str(tmp_path / "w"), "--cache-dir", str(tmp_path / "cache")])
    assert f"--cache-dir {tmp_path / 'cache'}: is a file, not a folder" in message


def test_workdir_under_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    assert "cannot create it" in _error(capsys, ["agent", "--port", "0", "--workdir", str(tmp_path / "f" / "w")])


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "1e300"])
def test_idle_timeout_must_be_finite_and_positive(capsys, tmp_path, value):
    message = _error(capsys, ["agent", "--port", "0", "--workdir", str(tmp_path), f"--idle-timeout={value}"])
    assert message.startswith(f"qmlp: error: --idle-timeout {float(value)}: must be a number of seconds in (0, ")


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0"])
def test_clock_must_be_finite_and_positive(capsys, tmp_path, value):
    message = _error(capsys, ["agent", "--port", "0", "--workdir", str(tmp_path), f"--clock-mhz={value}"])
    assert f"--clock-mhz {float(value)}: must be a positive number of MHz" in message
    assert not (tmp_path / "agent.token").exists()  # refused before anything was written
