"""`qmlp profile --target tcp://... --power` against a real agent over the real protocol.

No board is attached here, so the agent drives a stand-in board: the bit-accurate simulator for
the outputs, the RTL cycle count for the LAST_LATENCY counter, and a replay of a recorded
(synthetic) ZCU104 rail trace for POWER. What is under test is the profiler's board path: the
counters, BENCH timings, the idle/active recording and the measured-energy report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qmlp.hil.agent import Agent, AgentConfig
from qmlp.hil.sim import EngineRun, SimBackend
from qmlp.hwgen.emit import emit_rtl
from qmlp.hwgen.estimate import estimate, write_estimate_reports
from qmlp.hwgen.fold import fold
from qmlp.ir import replace, save
from qmlp.profile.energy import energy_per_inference, phase_stats, read_rail_csv
from qmlp.profile.report import check_schema, reproduce
from qmlp.profile.run import ProfileOptions, profile
from qmlp.sim.bitaccurate import run_integer
from qmlp.testing import random_dataflow

TRACE = Path(__file__).parent / "fixtures" / "zcu104_batch1_burst.csv"
LATENCY = 77


class ReplayBoard(SimBackend):
    """A stand-in board with rails: outputs from the golden model, a fixed latency counter and
    the recorded trace replayed on POWER stop."""

    def __init__(self) -> None:
        def engine(df, rtl_dir, q):  # noqa: ANN001
            _, acts = run_integer(df, q)
            return EngineRun(outputs=acts[-1], registers={"LAST_LATENCY": LATENCY, "INFERENCES": len(q)})

        super().__init__(engine=engine)
        self.actions: list[str] = []

    def describe(self):  # noqa: ANN201
        return {**super().describe(), "board": "zcu104", "rails": list(read_rail_csv(TRACE).rails)}

    def power(self, action, label=None, interval_s=0.1):  # noqa: ANN001, ANN201
        self.actions.append(action)
        if action != "stop":
            return {"action": action}
        trace = read_rail_csv(TRACE)
        return {"action": "stop", "rails": list(trace.rails), "samples": len(trace.times),
                "arrays": {"t_s": trace.times, "mark": trace.marks, "power_w": trace.power}}


@pytest.fixture(scope="module")
def board_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    out = root / "out"
    df = replace(fold(random_dataflow(4, widths=(10, 8, 3)), target_fps=1e7, clock_mhz=200.0),
                 metadata={"board": "zcu104"})
    out.mkdir()
    save(df, out / "dataflow.json")
    emit_rtl(df, out / "rtl")
    write_estimate_reports(estimate(df), out / "report")
    token = root / "token"
    token.write_text("t" * 32)
    backend = ReplayBoard()
    agent = Agent(AgentConfig(token=b"t" * 32, workdir=root / "agent"), backend)
    host, port = agent.start()
    try:
        data = profile(ProfileOptions(out_dir=out, target=f"tcp://{host}:{port}", power=True, runs=1000, warmup=5,
                                      batch=16, token_file=token, phase_seconds=0.2), log=lambda line: None)
    finally:
        agent.stop()
    return out, data, backend


def test_board_layers_are_measured(board_report):
    _, data, _ = board_report
    lat = data["latency"]
    assert data["target"]["kind"] == "board"
    assert lat["fabric"]["kind"].startswith("measured: LAST_LATENCY counter")
    assert lat["fabric"]["cycles"]["p50"] == lat["fabric"]["cycles"]["max"] == LATENCY
    assert lat["fabric"]["seconds"]["p50_s"] == pytest.approx(LATENCY / 200e6)
    assert lat["call"]["kind"].startswith("measured") and lat["call"]["seconds"]["runs"] == 1000
    assert lat["end_to_end"]["seconds"]["p50_s"] > lat["call"]["seconds"]["min_s"]
    assert data["throughput"]["call_ips"] > 0
    check_schema(data)


def test_power_recording_gives_measured_energy(board_report):
    out, data, backend = board_report
    assert backend.actions == ["start", "mark", "stop"]
    energy = data["energy"]
    assert energy["kind"] == "measured" and energy["rails"] == ["12V"]
    trace = read_rail_csv(out / "report" / "power_trace.csv")
    n, t = int(trace.metadata["inferences"]), float(trace.metadata["active_seconds"])
    assert n > 0 and n % 16 == 0 and t >= 0.2
    expected = energy_per_inference(phase_stats(trace, 0), phase_stats(trace, 1), inferences=n, active_seconds=t)
    assert energy["e_dyn_j"] == expected.e_dyn_j and energy["e_total_j"] == expected.e_total_j
    assert set(energy["per_rail"]) == set(trace.rails)
    assert (out / "report" / "profile_power.png").stat().st_size > 0
    assert not data["seed_comparison"]["applicable"]  # 10-8-3 is not the seed topology


def test_board_report_reproduces(board_report):
    out, data, _ = board_report
    for dotted, value in reproduce(out / "report").items():
        node = data
        for key in dotted.split("."):
            node = node[key]
        assert node == value, dotted
    assert json.loads((out / "report" / "profile.json").read_text()) == data


def test_board_table_says_measured(board_report):
    from qmlp.profile.report import format_table

    _, data, _ = board_report
    table = format_table(data)
    assert "energy (measured, rails 12V)" in table and "ESTIMATE" not in table
    assert "agent timer around the driver call" in table
