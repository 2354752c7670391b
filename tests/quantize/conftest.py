"""tests/ is on pytest's sys.path and tests/profile is a package, so it shadows the standard
library module ``profile``; torch imports ``cProfile``, which imports ``profile``. These tests use
torch in-process, so import ``cProfile`` once against the real stdlib module, then put back
whatever ``profile`` was before (the test package must keep working for tests/profile).
Torch runs on one thread here, as ``qmlp train`` does by default."""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path


def _import_cprofile_with_stdlib_profile() -> None:
    if "cProfile" in sys.modules:
        return
    previous = sys.modules.pop("profile", None)
    spec = importlib.util.spec_from_file_location("profile", Path(sysconfig.get_paths()["stdlib"]) / "profile.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["profile"] = module
    try:
        spec.loader.exec_module(module)
        import cProfile  # noqa: F401 - binds the stdlib profile module for good
    finally:
        if previous is not None:
            sys.modules["profile"] = previous
        else:
            del sys.modules["profile"]


_import_cprofile_with_stdlib_profile()

import torch  # noqa: E402 - only after the fix above

torch.set_num_threads(1)  # 2 shared cores: more threads only oversubscribe them
