"""Hardware-in-the-loop: the board agent, its wire protocol, the virtual board and the test suite.

Everything imported here needs only the standard library and numpy, so the agent also runs on a
board's own Python (``pip install --no-deps qmlp``); the virtual board imports the RTL simulator
lazily and the PYNQ backend imports ``pynq`` lazily.
"""

from .backend import Backend, BackendError, NoRails, RunOutput
from .client import BenchReply, BoardBusy, BoardClient, RunReply, design_files, open_board, parse_target
from .protocol import HilError, ProtocolError, RemoteError

__all__ = [
    "Backend", "BackendError", "NoRails", "RunOutput", "BoardClient", "BoardBusy", "RunReply", "BenchReply",
    "design_files", "open_board", "parse_target", "HilError", "ProtocolError", "RemoteError",
]
