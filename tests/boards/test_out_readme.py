"""OUT/README.md names every entry of the compiled folder and the commands it gives exist."""

from __future__ import annotations

import contextlib
import io
import re

from qmlp.cli import main
from qmlp.ir import save
from qmlp.testing import random_dataflow


def test_readme_covers_the_folder_and_its_commands_exist(tmp_path):
    save(random_dataflow(2, widths=(10, 6, 3)), tmp_path / "m.json")
    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["compile", str(tmp_path / "m.json"), "--board", "pynq-z2", "-o", str(out)]) == 0
    text = (out / "README.md").read_text()
    assert text.startswith("# random: compiled by qmlp ") and "for pynq-z2 (xc7z020clg400-1) at 100 MHz" in text
    listed = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))
    present = {p.name + ("/" if p.is_dir() else "") for p in out.iterdir()} - {"README.md"}
    assert present <= listed and listed - present == {"model.onnx"}  # compiled from a dataflow.json
    makefile = (out / "vivado" / "Makefile").read_text()
    for target in re.findall(r"cd vivado && make (\w+)", text):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
    assert "python3 -m qmlp_driver.check --selftest 1000" in (out / "deploy" / "README.md").read_text()
    assert "python3 -m qmlp_driver.check --selftest 1000" in text
