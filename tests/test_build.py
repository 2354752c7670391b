"""qmlp.build owns the layout of a compiled folder: the IR's file name is spelled once (DATAFLOW)."""

from __future__ import annotations

import ast
from pathlib import Path

from qmlp.build import DATAFLOW

PACKAGE = Path(__file__).resolve().parents[1] / "qmlp"
# Modules that may not import qmlp.build, with the reason.
EXEMPT = {
    "build.py": "the owner",
    "ir.py": "qmlp.build imports it; the name is only the default label of error messages in from_json",
    "boards/driver_src/qmlp_driver/accelerator.py": "runs on the board without qmlp (reads deploy/dataflow.json)",
}


def test_the_ir_file_name_is_spelled_only_in_qmlp_build():
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in EXEMPT:
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            # a whole string literal is a file name in code; the word inside a message or docstring is prose
            if isinstance(node, ast.Constant) and node.value == DATAFLOW:
                spelled.append(f"{name}:{node.lineno}")
    assert not spelled, f"use qmlp.build.DATAFLOW instead of the literal at {', '.join(spelled)}"
