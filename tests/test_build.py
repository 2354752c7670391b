"""qmlp.build owns the layout of a compiled folder: the IR's file name is spelled once (DATAFLOW), and
the top level's module name once (qmlp.interface.TOP_MODULE, its file name qmlp.build.TOP_VERILOG)."""

from __future__ import annotations

import ast
from pathlib import Path

from qmlp.build import DATAFLOW, TOP_VERILOG
from qmlp.interface import TOP_MODULE

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


def test_the_top_level_name_is_spelled_only_in_qmlp_interface():
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name == "interface.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if isinstance(node, ast.Constant) and node.value in (TOP_MODULE, TOP_VERILOG):
                spelled.append(f"{name}:{node.lineno}")
    assert not spelled, f"use qmlp.interface.TOP_MODULE / qmlp.build.TOP_VERILOG instead of the literal at {', '.join(spelled)}"
