"""The docs' "real output" blocks are what qmlp prints today: docs/gen_real_output.py --check
reruns every marked command and compares (timings aside). After a change that alters output,
regenerate with ``python docs/gen_real_output.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_real_output_blocks_match_a_fresh_run(capsys):
    spec = importlib.util.spec_from_file_location("gen_real_output", ROOT / "docs" / "gen_real_output.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sum(len(module.blocks(path.read_text().split("\n"))) for path in module.FILES) >= 7
    status = module.main(["--check"])
    assert status == 0, capsys.readouterr().out


def test_timings_are_the_only_tolerated_difference():
    spec = importlib.util.spec_from_file_location("gen_real_output", ROOT / "docs" / "gen_real_output.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._normal(["[1/8] board 0.01 s  x", "(20.2 s)"]) == module._normal(["[1/8] board 3.50 s  x", "(1.0 s)"])
    assert module._normal(["~1406 LUT"]) != module._normal(["~1434 LUT"])
