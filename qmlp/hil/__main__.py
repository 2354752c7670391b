"""``python -m qmlp.hil [agent options]``: the board agent without the rest of the command line.

On a board only numpy (and pynq) is installed; the full ``qmlp`` command line also loads the
compiler's commands, some of which import onnx. This entry point loads the agent command alone.
"""

from __future__ import annotations

import argparse
import sys

from ..commands import agent
from ..errors import QmlpError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qmlp.hil", description="qmlp board agent (same options as `qmlp agent`)")
    agent.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(agent.run(args) or 0)
    except QmlpError as error:
        print(f"qmlp: error: {error}", file=sys.stderr)
        return error.exit_status


if __name__ == "__main__":
    sys.exit(main())
