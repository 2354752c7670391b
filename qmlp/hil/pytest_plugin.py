"""pytest plugin (entry point ``pytest11: qmlp_hil``): write your own HIL tests.

Options: ``--hil-target sim|tcp://HOST:PORT|none`` (default ``sim``: the virtual board),
``--hil-out OUT`` (the compiled design; or override the ``hil_out`` fixture in a conftest) and
``--hil-token-file F`` for remote agents. Fixtures: ``board`` (session-wide ``BoardClient``,
authenticated, design loaded; ``board.dataflow`` is the IR) and ``hil_expected`` (the
bit-accurate outputs for integer inputs). Marker: ``@pytest.mark.hil``; with
``--hil-target none`` those tests are skipped, visibly, with that reason.

Example::

    @pytest.mark.hil
    def test_all_zero_input(board, hil_expected):
        q = np.zeros((1, board.dataflow.input.features), dtype=np.int64)
        assert np.array_equal(board.run(q=q).out, hil_expected(q))
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

__all__ = ["pytest_addoption", "pytest_configure", "pytest_collection_modifyitems", "hil_target", "hil_out",
           "board", "hil_expected"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qmlp-hil", "qmlp hardware-in-the-loop")
    group.addoption("--hil-target", default="sim",
                    help="board for @pytest.mark.hil tests: sim (virtual board, default), tcp://HOST:PORT, or none")
    group.addoption("--hil-out", default=None, help="compiled design folder (output of `qmlp compile`)")
    group.addoption("--hil-token-file", default=None, help="token file of the remote agent")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: hardware-in-the-loop test, runs against --hil-target (default: sim)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hil-target") != "none":
        return
    skip = pytest.mark.skip(reason="--hil-target none: hardware-in-the-loop tests deselected by the user")
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def hil_target(pytestconfig: pytest.Config) -> str:
    target = pytestconfig.getoption("--hil-target")
    if target == "none":
        pytest.skip("--hil-target none")
    return target


@pytest.fixture(scope="session")
def hil_out(pytestconfig: pytest.Config) -> Path:
    """The design under test; override this fixture to build one in your conftest."""
    value = pytestconfig.getoption("--hil-out")
    if value is None:
        raise pytest.UsageError("the board fixture needs a design: pass --hil-out OUT (from `qmlp compile`) "
                                "or override the hil_out fixture")
    from ..build import Build
    from ..errors import QmlpError

    try:
        return Build.open(value, folded=False).root
    except QmlpError as error:
        raise pytest.UsageError(f"--hil-out {error}") from None


@pytest.fixture(scope="session")
def board(hil_target: str, hil_out: Path, pytestconfig: pytest.Config) -> Iterator["object"]:
    from .client import open_board

    with open_board(hil_target, token_file=pytestconfig.getoption("--hil-token-file")) as client:
        client.load(hil_out)
        yield client


@pytest.fixture(scope="session")
def hil_expected(board) -> Callable[[np.ndarray], np.ndarray]:
    from .suite import expected_outputs

    return lambda q: expected_outputs(board.dataflow, np.asarray(q, dtype=np.int64))
