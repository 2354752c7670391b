"""docs/api.md's examples are real: every ```python block runs, in order, in one namespace, in a
scratch folder that sees the repository's examples/."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_api_example_runs(tmp_path):
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "docs" / "api.md").read_text(), flags=re.S | re.M)
    assert len(blocks) >= 5
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    namespace: dict = {}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            for index, block in enumerate(blocks):
                exec(compile(block, f"docs/api.md block {index + 1}", "exec"), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
    text = printed.getvalue()
    assert "verify: PASS" in text and "findings" in text
    assert (tmp_path / "build" / "digits" / "dataflow.json").is_file()
