"""`qmlp boards [NAME|FILE] [--json]`: the known boards as a table (or one board in full)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..boards import Board, get_board, known_boards

__all__ = ["add_arguments", "run", "format_table"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("board", nargs="?", help="show one board (name or path to a board JSON file)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _row(board: Board) -> list[str]:
    res = board.resources
    return [board.name, board.part, board.ps_ip, f"{board.clock.name}@{board.clock.default_mhz:g}MHz",
            f"{board.dma.width_bits}b {board.dma.port}", f"{res.lut:,}", f"{res.ff:,}", str(res.bram36),
            str(res.uram), f"{res.dsp:,}", ",".join(board.power_rails) or "-"]


def format_table(boards: list[Board]) -> str:
    """Fixed-width text table, one board per line."""
    header = ["board", "part", "PS", "PL clock", "DMA", "LUT", "FF", "BRAM36", "URAM", "DSP", "power rails"]
    rows = [header] + [_row(b) for b in boards]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    boards = [get_board(args.board)] if args.board else [get_board(name) for name in known_boards()]
    if args.json:
        print(json.dumps([asdict(b) for b in boards], indent=2))
    else:
        print(format_table(boards))
    return 0
