"""The suite's own logic: it passes a correct board and catches wrong, stale and lossy ones
(engines here are the bit-accurate model, correct or deliberately broken; the RTL runs in
test_virtual_board.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from qmlp import ir
from qmlp.datatypes import BIPOLAR, INT, UINT
from qmlp.hil.agent import Agent, AgentConfig
from qmlp.hil.client import BoardClient
from qmlp.hil.junit import to_junit_xml, write_junit, xml_text
from qmlp.hil.sim import EngineRun, SimBackend
from qmlp.hil.suite import CaseResult, SuiteReport, boundary_inputs, expected_outputs, run_suite
from qmlp.sim.bitaccurate import quantize_input
from qmlp.testing import random_dataflow

from .conftest import TOKEN, golden_engine


def _suite_with(engine, tmp_path, design_dir, large_batch=50):
    agent = Agent(AgentConfig(token=TOKEN, workdir=tmp_path / "w"), SimBackend(engine=engine))
    agent.start()
    try:
        with BoardClient(*agent.address, TOKEN) as client:
            return run_suite(client, design_dir, target="test", large_batch=large_batch)
    finally:
        agent.stop()


def test_correct_board_passes_every_case(tmp_path, design_dir):
    report = _suite_with(golden_engine, tmp_path, design_dir)
    assert report.passed, report.table()
    assert [r.name for r in report.results] == ["hello", "load", "golden_vectors", "random_vectors", "boundary_values",
                                                 "batch_sizes", "back_to_back", "reset_and_rerun", "reload_and_rerun",
                                                 "bench", "power"]
    assert report.results[5].vectors == 1 + 2 + 3 + 17 + 50
    assert "no rails: POWER refused cleanly" in report.table() and "11/11 passed" in report.table()


def test_one_wrong_bit_fails_the_vector_cases(tmp_path, design_dir):
    def off_by_one(df, rtl_dir, q):
        run = golden_engine(df, rtl_dir, q)
        out = run.outputs.copy()
        out[-1, -1] += 1
        return EngineRun(outputs=out, cycles=run.cycles, registers=run.registers)

    report = _suite_with(off_by_one, tmp_path, design_dir)
    status = {r.name: r.status for r in report.results}
    assert not report.passed
    assert status["hello"] == status["load"] == "pass"
    for name in ("golden_vectors", "random_vectors", "boundary_values", "batch_sizes", "back_to_back"):
        assert status[name] == "fail", report.table()
    golden = next(r for r in report.results if r.name == "golden_vectors")
    assert "1 of 256 outputs differ; first at vector 63, output 3" in golden.message


def test_stale_state_and_lost_vectors_are_caught(tmp_path, design_dir):
    memory = {}

    def stale(df, rtl_dir, q):  # answers the first vector of a call with the previous call's last output
        run = golden_engine(df, rtl_dir, q)
        out = run.outputs.copy()
        if "last" in memory:
            out[0] = memory["last"]
        memory["last"] = run.outputs[-1].copy()
        return EngineRun(outputs=out, registers=run.registers)

    report = _suite_with(stale, tmp_path, design_dir)
    assert {r.name for r in report.results if r.status == "fail"} >= {"back_to_back", "batch_sizes"}

    def lossy_counter(df, rtl_dir, q):
        run = golden_engine(df, rtl_dir, q)
        return EngineRun(outputs=run.outputs, registers={"INFERENCES": max(len(q) - 1, 0)})

    report = _suite_with(lossy_counter, tmp_path / "2", design_dir)
    golden = next(r for r in report.results if r.name == "golden_vectors")
    assert golden.status == "fail" and "counted 63 inferences for a batch of 64" in golden.message


def test_unreachable_cases_are_errors_not_failures(tmp_path, design_dir):
    def broken(df, rtl_dir, q):
        from qmlp.errors import ToolError
        raise ToolError("verilator exploded")

    report = _suite_with(broken, tmp_path, design_dir)
    golden = next(r for r in report.results if r.name == "golden_vectors")
    assert golden.status == "error" and "BACKEND_ERROR" in golden.message and "verilator exploded" in golden.message
    xml = ET.fromstring(to_junit_xml(report))
    assert xml.get("tests") == "11" and int(xml.get("errors")) >= 5
    assert xml.find("testcase[@name='golden_vectors']/error") is not None
    assert xml.find("testcase[@name='hello']/failure") is None


def test_junit_file_is_valid_and_complete(tmp_path, design_dir):
    report = _suite_with(golden_engine, tmp_path, design_dir)
    path = write_junit(report, tmp_path / "reports" / "hil.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuite" and root.get("failures") == "0" and root.get("errors") == "0"
    assert [c.get("name") for c in root.findall("testcase")] == [r.name for r in report.results]
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["target"] == "test" and props["board"] == "virtual"
    assert list((tmp_path / "reports").iterdir()) == [path]  # no temp file left behind


@pytest.mark.parametrize("dtype", [INT(8), UINT(2), BIPOLAR, INT(2)])
def test_boundary_inputs_cover_the_range(dtype):
    df = random_dataflow(5, widths=(6, 4, 3), input_dtype=dtype)
    ints, floats = boundary_inputs(df)
    assert ints.min() == df.input.qmin and ints.max() == df.input.qmax
    assert df.input.dtype.allows(ints) and np.isfinite(floats).all()
    with np.errstate(over="ignore"):
        q = quantize_input(df.input, floats)
    assert q.min() == df.input.qmin and q.max() == df.input.qmax  # the clip bounds are reached from floats


def test_expected_outputs_with_argmax_takes_the_first_maximum():
    df = ir.replace(random_dataflow(2, widths=(5, 3)), argmax=True)
    q = np.zeros((1, 5), dtype=np.int64)
    assert np.array_equal(expected_outputs(df, q), [[0]])  # all-zero accumulators: a tie, lowest index wins


def test_reference_vectors_case_and_its_input_checks(tmp_path, design_dir):
    from qmlp.errors import ConfigError
    from qmlp.hil.suite import load_vectors
    from qmlp.sim.bitaccurate import simulate

    df = ir.load(design_dir / "dataflow.json")
    x = np.random.default_rng(4).normal(scale=2, size=(30, df.input.features)).astype(np.float32)
    golden = simulate(df, x).outputs
    labels = np.argmax(golden, axis=1)
    labels[:3] = (labels[:3] + 1) % golden.shape[1]  # 27 of 30 right
    np.savez(tmp_path / "v.npz", x=x, expected=golden, y=labels)
    agent = Agent(AgentConfig(token=TOKEN, workdir=tmp_path / "w"), SimBackend(engine=golden_engine))
    agent.start()
    try:
        with BoardClient(*agent.address, TOKEN) as client:
            report = run_suite(client, design_dir, large_batch=20, vectors=load_vectors(tmp_path / "v.npz", df))
    finally:
        agent.stop()
    assert report.passed and report.results[3].name == "reference_vectors"
    assert report.results[3].message == ("30 vectors bit-exact, argmax agrees with the reference on 30/30, "
                                         "max |y - reference| 0, accuracy 90.00%")
    bad = [("nox.npz", {"q": x}, "no array 'x'"), ("shape.npz", {"x": x[:, :3]}, "is not floats shaped"),
           ("rows.npz", {"x": x, "y": labels[:5]}, "'y' has 5 rows but 'x' has 30")]
    for name, arrays, message in bad:
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ConfigError, match=message):
            load_vectors(tmp_path / name, df)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ConfigError, match="not a readable .npz"):
        load_vectors(tmp_path / "junk.npz", df)


def test_junit_is_well_formed_whatever_the_names_hold(tmp_path):
    hostile = "".join(map(chr, range(32))) + " ]]> & <x/> \"'\ud800\ufffe"
    report = SuiteReport(target=f"tcp://{hostile}", design=hostile, board={"board": hostile}, results=(
        CaseResult(hostile, "fail", 0.5, message=hostile, detail=hostile),
        CaseResult("ok" + hostile, "pass", 0.1, vectors=3, message=hostile)))
    root = ET.parse(write_junit(report, tmp_path / "hil.xml")).getroot()  # expat refuses any ill-formed byte
    case = root.find("testcase/failure")
    shown = "\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\t\n\\x0b\\x0c\r\\x0e"
    assert case.get("message").startswith(shown)
    assert case.text == xml_text(hostile).replace("\r", "\n")  # XML reads a raw CR in text as LF
    assert case.get("message").endswith(" ]]> & <x/> \"'\\ud800\\ufffe")
    assert [c.get("name") for c in root.findall("testcase")] == [xml_text(r.name) for r in report.results]
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["board"] == xml_text(hostile) and "\\x1f" in props["target"]
