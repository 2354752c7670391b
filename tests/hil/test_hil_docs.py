"""docs/hil.md documents every reply field and every plugin option the code has."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from qmlp.hil.client import BenchReply, RunReply

DOC = (Path(__file__).resolve().parents[2] / "docs" / "hil.md").read_text()


def test_reply_fields_and_plugin_options_are_documented():
    for cls in (RunReply, BenchReply):
        for field in fields(cls):
            assert f"`{field.name}`" in DOC, f"{cls.__name__}.{field.name} missing from docs/hil.md"
    source = (Path(__file__).resolve().parents[2] / "qmlp" / "hil" / "pytest_plugin.py").read_text()
    import re

    for option in re.findall(r'addoption\("(--[\w-]+)"', source):
        assert f"`{option}" in DOC, option
    for name in ("board", "hil_expected", "hil_target", "hil_out", "@pytest.mark.hil"):
        assert f"`{name}" in DOC, name
