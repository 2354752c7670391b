"""`qmlp compile --config` (JSON / TOML, FINN names, one-line errors, the command line wins) and
--stop-after / --start-from: a stopped and resumed build equals a straight one, file for file."""

from __future__ import annotations

import contextlib
import filecmp
import io
import json

import pytest

from qmlp.cli import main
from qmlp.compile_config import read_config
from qmlp.errors import ConfigError
from qmlp.ir import save
from qmlp.testing import random_dataflow


def _quiet(argv):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        status = main(argv)
    return status, out.getvalue()


def test_config_keys_finn_names_and_relative_paths(tmp_path):
    (tmp_path / "build.toml").write_text('model = "m.json"\noutput_dir = "out"\nsynth_clk_period_ns = 10\n'
                                         'target_fps = "1.5M"\nsynth = false\nstop_step = "fold"\n')
    config = read_config(tmp_path / "build.toml")
    assert config == {"model": tmp_path / "m.json", "out": tmp_path / "out", "clock_mhz": 100.0,
                      "target_fps": 1.5e6, "synth": False, "stop_after": "fold"}
    (tmp_path / "b.json").write_text(json.dumps({"board": "pynq-z2", "folding": "f.json", "argmax": True}))
    assert read_config(tmp_path / "b.json") == {"board": "pynq-z2", "folding": tmp_path / "f.json", "argmax": True}


@pytest.mark.parametrize("text, message", [
    ('{"target_fsp": 10}', "unknown key 'target_fsp'; known keys: argmax, backend, board,"),
    ('{"target_fps": "fast"}', "key 'target_fps' not a number of inferences/s; write e.g. 10k"),
    ('{"clock_mhz": -5}', "key 'clock_mhz' must be a positive number (got -5)"),
    ('{"synth": "yes"}', "key 'synth' must be true or false (got 'yes')"),
    ('{"backend": "vivado"}', "key 'backend' must be one of native, finn (got 'vivado')"),
    ('{"out": "a", "output_dir": "b"}', "key 'output_dir' given twice"),
    ('{"target_fps": 1e5, "folding_config_file": "f.json"}', "target_fps and folding_config_file both given"),
    ('[1, 2]', "the top level must be a table of options"),
    ('{"board": ', "not valid JSON"),
])
def test_config_errors_are_one_line_and_name_the_key(tmp_path, text, message):
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(ConfigError) as error:
        read_config(tmp_path / "c.json")
    assert message in str(error.value) and str(error.value).startswith(f"--config {tmp_path / 'c.json'}: ")
    assert "\n" not in str(error.value)


def test_stop_then_resume_equals_a_straight_build(tmp_path, capsys):
    save(random_dataflow(7, widths=(12, 9, 4)), tmp_path / "m.json")
    (tmp_path / "build.json").write_text(json.dumps({"model": "m.json", "output_dir": "staged", "target_fps": "100k",
                                                     "board": "kv260", "stop_step": "fold"}))
    status, text = _quiet(["compile", "--config", str(tmp_path / "build.json"), "--board", "zcu104"])  # CLI wins
    assert status == 0 and "[3/3] fold" in text and "zcu104" in text
    staged = tmp_path / "staged"
    assert sorted(p.name for p in (staged / "intermediate").iterdir()) == ["02_import.json", "03_fold.json",
                                                                             "progress.json"]
    assert not (staged / "rtl").exists()
    status, text = _quiet(["compile", "--start-from", str(staged)])
    assert status == 0 and "resume" in text and "03_fold.json" in text
    status, _ = _quiet(["compile", str(tmp_path / "m.json"), "--board", "zcu104", "--target-fps", "100k",
                        "-o", str(tmp_path / "straight")])
    assert status == 0
    same = filecmp.dircmp(staged / "rtl", tmp_path / "straight" / "rtl")
    assert same.left_list == same.right_list and not same.diff_files
    assert (staged / "dataflow.json").read_text() == (tmp_path / "straight" / "dataflow.json").read_text()
    assert main(["compile", "--start-from", str(staged)]) == 2
    assert "every step is done already" in capsys.readouterr().err


def test_stop_after_names_the_steps(tmp_path, capsys):
    save(random_dataflow(7, widths=(12, 9, 4)), tmp_path / "m.json")
    assert main(["compile", str(tmp_path / "m.json"), "-o", str(tmp_path / "o"), "--stop-after", "emit"]) == 2
    err = capsys.readouterr().err
    assert "--stop-after emit: not a step of this build; choose one of import, fold, estimate, write-ir, rtl" in err
    assert main(["compile"]) == 2
    assert "compile needs MODEL" in capsys.readouterr().err
    assert main(["compile", "--start-from", str(tmp_path)]) == 2
    assert "no intermediate/progress.json; pass the OUT of a compile run with --stop-after" in capsys.readouterr().err
