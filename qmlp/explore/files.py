"""Folders of the output directory are replaced whole: built in a scratch sibling, then renamed
into place, so a reader (or a sweep killed halfway) never sees a half-written folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["scratch", "swap_in"]


def scratch(folder: Path) -> Path:
    """An empty hidden sibling of ``folder`` to build its new contents in (parents created)."""
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return tmp


def swap_in(new: Path, folder: Path) -> None:
    """Put ``new`` where ``folder`` is, the old one removed only after the rename."""
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
