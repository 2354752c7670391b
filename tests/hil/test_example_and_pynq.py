"""The example model end to end: `qmlp compile` then `qmlp hil --target sim`; and the PYNQ backend
driving the generated driver, with a host stand-in for pynq whose DMA streams into the RTL."""

from __future__ import annotations

import hashlib
import shutil
import sys

import numpy as np
import pytest

from qmlp.cli import main
from qmlp.hil.agent import Agent, AgentConfig
from qmlp.hil.backend import BackendError
from qmlp.hil.client import BoardClient
from qmlp.hil.protocol import RemoteError
from qmlp.hil.suite import run_suite

from . import fake_pynq
from .conftest import EXAMPLE_MODEL, EXAMPLES, TOKEN, compile_example

pytestmark = pytest.mark.hil  # virtual board: real RTL under Verilator


@pytest.mark.parametrize("model", sorted(EXAMPLES.glob("*.onnx")), ids=lambda p: p.stem)
def test_qmlp_hil_sim_passes_on_the_example_models(model, compiled_example, tmp_path, capsys):
    out_dir = compiled_example if model == EXAMPLE_MODEL else compile_example(model, tmp_path)
    capsys.readouterr()
    vectors = model.with_suffix(".npz")
    if not vectors.is_file():  # a model without test vectors still gets the whole generated suite
        assert main(["hil", str(out_dir), "--target", "sim"]) == 0
        assert "11/11 passed" in capsys.readouterr().out
        return
    samples = len(np.load(vectors)["x"])
    assert main(["hil", str(out_dir), "--target", "sim", "--vectors", str(vectors)]) == 0
    out = capsys.readouterr().out
    assert f"HIL suite: {model.stem} on sim" in out and "12/12 passed" in out
    line = next(l for l in out.splitlines() if l.startswith("reference_vectors"))
    assert f"{samples} vectors bit-exact, argmax agrees with the reference on {samples}/{samples}" in line
    assert "accuracy " in line


@pytest.fixture
def deployed(compiled_example, tmp_path):
    """OUT with its bitstream slots filled as `make bitstream` would (placeholder bytes: the
    stand-in overlay runs the RTL instead) and a SHA256SUMS for them."""
    out = tmp_path / "out"
    shutil.copytree(compiled_example, out)
    bits = out / "deploy" / "bitstream"
    (bits / "qmlp.bit").write_bytes(b"placeholder bitstream: the stand-in overlay simulates ../rtl\n")
    (bits / "qmlp.hwh").write_text("<placeholder hardware handoff/>\n")
    (bits / "SHA256SUMS").write_text("".join(f"{hashlib.sha256((bits / n).read_bytes()).hexdigest()}  {n}\n"
                                             for n in ("qmlp.bit", "qmlp.hwh")))
    return out


@pytest.fixture(params=[1024, 7], ids=["one-transfer", "7-vector-transfers"])
def pynq_agent(deployed, tmp_path, monkeypatch, request):
    from qmlp.hil.pynq_backend import PynqBackend

    fake_pynq.install(monkeypatch, deployed / "rtl")
    agent = Agent(AgentConfig(token=TOKEN, workdir=tmp_path / "board"), PynqBackend(batch_size=request.param))
    agent.start()
    yield agent
    agent.stop()
    for name in [n for n in sys.modules if n.startswith("qmlp_driver")]:
        del sys.modules[name]  # the uploaded driver package must not leak into other tests


def test_pynq_backend_passes_the_suite_through_the_generated_driver(pynq_agent, deployed):
    with BoardClient(*pynq_agent.address, TOKEN) as board:
        hello = board.hello()
        assert hello["backend"] == "pynq" and hello["rails"] == ["12V", "1V8", "INT"]
        report = run_suite(board, deployed, target="pynq-standin", large_batch=300)
    assert report.passed, report.table()
    names = {r.name: r for r in report.results}
    assert "samples over rails 12V, 1V8, INT" in names["power"].message
    uploaded = {p.relative_to(pynq_agent.workdir / "designs").as_posix().split("/", 1)[1]
                for p in (pynq_agent.workdir / "designs").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert {"bitstream/qmlp.bit", "bitstream/qmlp.hwh", "manifest.json", "dataflow.json",
            "qmlp_driver/accelerator.py"} <= uploaded


def test_power_trace_over_the_protocol(pynq_agent, deployed):
    with BoardClient(*pynq_agent.address, TOKEN) as board:
        board.load(deployed)
        with pytest.raises(RemoteError, match="without POWER start"):
            board.power("stop")
        assert board.power("start", label="idle").header["rails"] == ["12V", "1V8", "INT"]
        assert board.power("mark", label="active").header["mark"] == 1
        trace = board.power("stop")
    power, marks = trace.array("power_w"), trace.array("mark")
    assert trace.header["columns"] == ["12V_power", "1V8_power", "INT_power"]
    assert power.shape == (trace.header["samples"], 3) and np.all(power == [9.875, 0.375, 1.25])
    assert list(marks) == sorted(marks) and marks[-1] == 1 and trace.array("t_s")[0] == 0


@pytest.mark.parametrize("victim, where", [("bitstream/qmlp.bit", "SHA256SUMS"),
                                           ("qmlp_driver/accelerator.py", "manifest")])
def test_corrupt_bitstream_or_driver_is_refused(pynq_agent, deployed, victim, where):
    target = deployed / "deploy" / victim
    target.write_bytes(target.read_bytes() + b"\n# tampered\n")
    with BoardClient(*pynq_agent.address, TOKEN) as board:
        with pytest.raises(RemoteError) as refused:
            board.load(deployed)
        assert refused.value.code == "HASH_MISMATCH" and victim in str(refused.value)
        assert board.hello()["design"] is None
    assert list((pynq_agent.workdir / "designs").iterdir()) == []  # nothing kept


def test_pynq_backend_needs_pynq(monkeypatch):
    from qmlp.hil.pynq_backend import PynqBackend

    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(BackendError, match="run `qmlp agent --backend pynq` on the board"):
        PynqBackend()
