"""Fixtures of the boards tests: an OUT directory with the packaged-IP file the Vivado scripts
expect, and the emitted driver imported with the fake pynq."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from .helpers import COMPONENT_HEADER


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """OUT/ as 'qmlp compile' leaves it before the board step: the packaged IP is there."""
    out = tmp_path / "out"
    (out / "ip").mkdir(parents=True)
    (out / "ip" / "component.xml").write_text(COMPONENT_HEADER)
    return out


def _forget_driver() -> None:
    for name in [m for m in sys.modules if m == "qmlp_driver" or m.startswith("qmlp_driver.")]:
        del sys.modules[name]


@pytest.fixture
def load_driver(monkeypatch):
    """``load(root, backend_for, **pynq_options)``: import the emitted ``qmlp_driver`` from a deploy
    directory, with the fake pynq (tests/boards/fake_pynq.py) forwarding to ``backend_for(bitfile)``."""
    from .fake_pynq import make_pynq

    def load(root: Path, backend_for, **pynq_options):
        _forget_driver()
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setitem(sys.modules, "pynq", make_pynq(backend_for, **pynq_options))
        return importlib.import_module("qmlp_driver")

    yield load
    _forget_driver()
