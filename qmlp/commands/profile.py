"""`qmlp profile`: not built yet (placeholder so the CLI lists it; the owning issue replaces this)."""

from __future__ import annotations

import argparse

from ..errors import QmlpError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    raise QmlpError("'qmlp profile' is not available in this build yet")
