"""``emit_board_files(df, board, out_dir)``: OUT/vivado, OUT/driver, OUT/deploy and OUT/README.md
for a folded Dataflow, called by ``qmlp compile`` after dataflow.json, rtl/ and ip/ are written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ConfigError
from ..ir import Dataflow, verify
from .board import Board, get_board
from .deploy import emit_deploy
from .driver import emit_driver
from .readme import write_out_readme
from .stream import stream_layout
from .vivado import IP_VLNV, emit_vivado, read_ip_vlnv

__all__ = ["SUBDIRS", "emit_board_files"]

SUBDIRS = ("vivado", "driver", "deploy")


def emit_board_files(df: Dataflow, board: Board | str, out_dir: str | Path, *,
                     clock_mhz: float | None = None) -> list[Path]:
    """Write OUT/vivado/, OUT/driver/ and OUT/deploy/ for ``df`` (folded: ``df.stream`` set).

    The clock is ``clock_mhz``, else ``df.clock_mhz``, else the board's default. The packaged IP's
    VLNV is read from OUT/ip/component.xml when it exists. The three directories are built in a
    temporary sibling and moved into place together, so a failure leaves OUT as it was.
    Returns every file written (final paths)."""
    board = get_board(board) if isinstance(board, str) else board
    verify(df)
    stream_layout(df)  # ConfigError now if unfolded or too wide, before anything is written
    clock = clock_mhz if clock_mhz is not None else (df.clock_mhz or board.clock.default_mhz)
    if not clock > 0:
        raise ConfigError(f"clock {clock!r} MHz: must be a positive frequency")
    out_dir = Path(out_dir)
    component = out_dir / "ip" / "component.xml"
    ip_vlnv = read_ip_vlnv(component) if component.exists() else IP_VLNV
    work = out_dir / f".boards-tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        emit_vivado(df, board, work / "vivado", clock_mhz=clock, ip_vlnv=ip_vlnv)
        emit_driver(df, board, work / "driver", clock_mhz=clock)
        emit_deploy(df, board, work / "deploy", work / "driver")
        for name in SUBDIRS:
            if (out_dir / name).exists():
                shutil.rmtree(out_dir / name)
            (work / name).rename(out_dir / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    readme = write_out_readme(df, board, out_dir, clock)
    return sorted([readme, *(p for name in SUBDIRS for p in (out_dir / name).rglob("*") if p.is_file())])
