"""qmlp_tlast_batch (qmlp/boards/hdl): lint-clean, and its Verilator testbench passes — random
valid/ready, packets of 1..9 vectors of 1..3 beats, TLAST exactly at packet ends, data unchanged.
The fake pynq's TlastBatch model follows the same rule; both are checked against one sequence."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from qmlp.sim.rtl import verilator_command
from testbench import build_testbench, verilator_env

from .fake_pynq import TlastBatch
from .helpers import HERE

pytestmark = pytest.mark.slow
MODULE = Path(__file__).parents[2] / "qmlp" / "boards" / "hdl" / "qmlp_tlast_batch.v"
TESTBENCH = HERE / "tb_qmlp_tlast_batch.v"


def test_module_is_lint_clean():
    proc = subprocess.run(verilator_command("--lint-only", "-Wall", str(MODULE)), capture_output=True, text=True,
                          env=verilator_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def testbench() -> Path:
    return build_testbench("tlast_batch", [MODULE, TESTBENCH])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_testbench_passes(testbench, seed):
    proc = subprocess.run([str(testbench), f"+verilator+seed+{seed}"], capture_output=True, text=True, timeout=120)
    results = [line for line in proc.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert proc.returncode == 0 and len(results) == 1 and results[0].startswith("PASS 60 "), proc.stdout[-2000:]


def test_python_model_follows_the_same_rule():
    batch = TlastBatch()
    kept = []
    for frames, vectors in [(0, 3), (1, 2), (3, 6), (4, 2)]:
        batch.set_frames(0)
        batch.set_frames(frames)
        kept.append([batch.keeps_tlast() for _ in range(vectors)])
    # The (4, 2) packet is cut short: writing 0 then 4 again restarts the count.
    batch.set_frames(0)
    batch.set_frames(4)
    kept.append([batch.keeps_tlast() for _ in range(4)])
    assert kept == [[True] * 3, [True] * 2, [False, False, True] * 2, [False, False], [False, False, False, True]]
