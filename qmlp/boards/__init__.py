"""Boards and deployment: board data, Vivado block-design/bitstream scripts, the PYNQ driver and
the deploy package for a compiled Dataflow; plus the FINN build-directory backend (``qmlp.boards.finn``)."""

from .board import Board, Clock, DmaPort, Resources, get_board, known_boards, load_board_file, parse_board

__all__ = ["Board", "Clock", "DmaPort", "Resources", "get_board", "known_boards", "load_board_file",
           "parse_board", "emit_board_files"]


def emit_board_files(df, board, out_dir, **kwargs):  # noqa: ANN001 - documented in qmlp.boards.emit
    """See :func:`qmlp.boards.emit.emit_board_files` (imported lazily: it pulls in the IR)."""
    from .emit import emit_board_files as emit

    return emit(df, board, out_dir, **kwargs)
