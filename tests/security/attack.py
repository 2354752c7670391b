"""Shared by the attack suite: run the CLI in-process as a hostile user would, and build small
valid inputs (an ONNX model, a dataflow.json, a compiled OUT) to break."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qmlp.cli import main
from qmlp.ir import save
from qmlp.testing import random_dataflow

from frontend.builders import save as save_onnx, small_mlp

__all__ = ["Result", "cli", "assert_refused", "onnx_model", "ir_file", "compiled", "text_files"]


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str


def cli(*args: object) -> Result:
    """``qmlp ARGS`` in this process. Anything but a clean exit propagates, so a traceback the
    user would have seen fails the test with that traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in args])
        except SystemExit as stop:  # argparse usage errors
            status = stop.code if isinstance(stop.code, int) else 2
    return Result(status, out.getvalue(), err.getvalue())


def assert_refused(result: Result, *fragments: str) -> None:
    """Exit 2 with exactly one line ``qmlp: error: ...`` holding every fragment."""
    assert result.status == 2, result
    assert result.err.startswith("qmlp: error: ") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err, (fragment, result.err)


def onnx_model(directory: Path, name: str = "small.onnx", **overrides) -> Path:
    """x(6) -> INT8 -> ternary -> BN -> ReLU -> UINT2 -> ternary -> y(3) (tests/frontend/builders.py)."""
    path = Path(directory) / name
    save_onnx(small_mlp(np.random.default_rng(0), **overrides), path)
    return path


def ir_file(directory: Path, name: str = "dataflow.json", **kwargs) -> Path:
    path = Path(directory) / name
    save(random_dataflow(0, **kwargs), path)
    return path


def compiled(directory: Path, model: Path | None = None) -> Path:
    """``qmlp compile`` of ``model`` (default: a small random IR) into ``directory/out``."""
    out = Path(directory) / "out"
    model = model or ir_file(directory, "source.json")
    result = cli("compile", model, "-o", out)
    assert result.status == 0, result
    return out


def text_files(root: Path) -> dict[Path, str]:
    """Every generated text file under ``root`` (binary files such as model.onnx and PNGs skipped)."""
    files = {}
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        data = path.read_bytes()
        if b"\0" in data or path.suffix in (".png", ".onnx"):
            continue
        files[path] = data.decode("utf-8")
    return files


def load_json(path: Path):
    return json.loads(Path(path).read_text())
