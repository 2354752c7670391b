"""Shared fixtures. ``zoo``: name -> path of a Brevitas-exported model from tests/zoo.py.

The models are exported in a separate Python process, once per session, into a temp dir:
torch/brevitas stay out of the test process, and pytest's sys.path (which holds tests/, whose
sub-packages such as tests/profile would shadow stdlib modules torch imports) cannot interfere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_ZOO_FILE = Path(__file__).with_name("zoo.py")
_BUILD = ("import importlib.util, sys\n"
          "spec = importlib.util.spec_from_file_location('qmlp_test_zoo', sys.argv[1])\n"
          "zoo = importlib.util.module_from_spec(spec); sys.modules['qmlp_test_zoo'] = zoo\n"
          "spec.loader.exec_module(zoo)\n"
          "[zoo.build(name, sys.argv[2]) for name in (sys.argv[3:] or zoo.NAMES)]\n")


def _builder(tmp_path_factory, zoo_file: Path, folder: str, each: bool):
    directory = tmp_path_factory.mktemp(folder)

    def get(name: str) -> Path:
        path = directory / f"{name}.onnx"
        if not path.exists():
            names = [name] if each else []
            done = subprocess.run([sys.executable, "-c", _BUILD, str(zoo_file), str(directory), *names],
                                  cwd=directory, capture_output=True, text=True)
            if done.returncode != 0 or not path.exists():
                raise RuntimeError(f"building zoo model {name!r} failed:\n{done.stderr[-3000:]}")
        return path

    return get


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """Callable ``zoo(name) -> Path``; the first call exports every zoo model (~10 s)."""
    return _builder(tmp_path_factory, _ZOO_FILE, "zoo", each=False)


@pytest.fixture(scope="session")
def finn_zoo(tmp_path_factory):
    """Callable ``finn_zoo(name) -> Path``: FINN's example MLPs (tests/finn_zoo.py); the first call exports them all."""
    return _builder(tmp_path_factory, Path(__file__).with_name("finn_zoo.py"), "finn_zoo", each=False)
