"""Energy formulas on recorded (synthetic, see fixtures/make_rail_traces.py) ZCU104 rail traces."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qmlp.errors import QmlpError
from qmlp.profile.energy import (TraceError, energy_per_inference, headline_rails, phase_stats, read_rail_csv,
                                 write_rail_csv)

FIXTURES = Path(__file__).parent / "fixtures"
TRACES = sorted(FIXTURES.glob("zcu104_*.csv"))
RAILS = ("12V", "INT", "1V8", "1V2", "MGTA", "3V3", "1V13", "5V0", "FMC", "MGTRA")


def test_fixtures_exist_and_say_synthetic():
    assert len(TRACES) == 2
    for path in TRACES:
        trace = read_rail_csv(path)
        assert trace.metadata["synthetic"].startswith("yes")
        assert trace.rails == RAILS
        assert set(np.unique(trace.marks)) == {0, 1, 2}


def test_fixtures_are_what_the_committed_script_generates(tmp_path):
    script = FIXTURES / "make_rail_traces.py"
    copy = tmp_path / script.name
    copy.write_text(script.read_text())
    subprocess.run([sys.executable, str(copy)], check=True, cwd=tmp_path)
    for path in TRACES:
        assert (tmp_path / path.name).read_text() == path.read_text()


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_formulas_match_an_independent_reading_of_the_csv(path):
    # Re-derive E_dyn and E_total with nothing but numpy from the raw file, then compare.
    meta = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            meta[key.strip()] = value.strip()
    rows = list(csv.reader(l for l in path.read_text().splitlines() if not l.startswith("#")))
    header, body = rows[0], rows[1:]
    stamps = np.array([np.datetime64(r[0].replace(" ", "T"), "ns") for r in body])
    seconds = (stamps - stamps[0]).astype(np.int64) / 1e9
    mark = np.array([int(r[header.index("Mark")]) for r in body])
    p12 = np.array([float(r[header.index("12V_power")]) for r in body])

    def mean_after_settle(m):
        sel = np.flatnonzero(mark == m)
        sel = sel[seconds[sel] >= seconds[sel[0]] + 1.0]
        return p12[sel].mean()

    n, t = int(meta["inferences"]), float(meta["active_seconds"])
    expected_dyn = (mean_after_settle(1) - mean_after_settle(0)) * t / n
    expected_total = mean_after_settle(1) * t / n

    trace = read_rail_csv(path)
    result = energy_per_inference(phase_stats(trace, 0), phase_stats(trace, 1), inferences=n, active_seconds=t)
    assert result.rails == ("12V",)
    assert result.e_dyn_j == pytest.approx(expected_dyn, rel=1e-12)
    assert result.e_total_j == pytest.approx(expected_total, rel=1e-12)
    # The generator's ground truth lies within the measurement's own uncertainty (4 sigma).
    truth = float(meta["truth_e_dyn_j_12V"])
    assert abs(result.e_dyn_j - truth) <= 4 * result.e_dyn_stderr_j
    assert result.e_total_j == pytest.approx(float(meta["truth_e_total_j_12V"]), rel=0.01)


def test_per_rail_numbers_and_rail_choice():
    trace = read_rail_csv(TRACES[0])
    idle, active = phase_stats(trace, 0), phase_stats(trace, 1)
    result = energy_per_inference(idle, active, inferences=1000, active_seconds=10.0, rails=("INT", "1V2"))
    assert result.rails == ("INT", "1V2")
    assert result.p_active_w == pytest.approx(active.mean_w["INT"] + active.mean_w["1V2"])
    assert result.per_rail["INT"]["e_total_j"] == pytest.approx(active.mean_w["INT"] * 10.0 / 1000)
    assert set(result.per_rail) == set(RAILS)
    assert headline_rails(("INT", "1V2")) == ("INT", "1V2")
    with pytest.raises(TraceError, match="rails \\['VCCAUX'\\] not in the trace"):
        energy_per_inference(idle, active, inferences=1, active_seconds=1.0, rails=("VCCAUX",))


def test_settling_drops_the_start_of_each_phase():
    trace = read_rail_csv(TRACES[0])
    full = phase_stats(trace, 1, settle_s=0.0)
    settled = phase_stats(trace, 1, settle_s=1.0)
    # 0.2 s sampling with the recorder thread's jitter: the first second holds 5 or 6 samples
    assert full.samples - settled.samples in (5, 6)
    assert settled.seconds >= 10.0


def test_voltage_times_current_when_no_power_column(tmp_path):
    path = tmp_path / "vi.csv"
    rows = [",Mark,INT_voltage,INT_current"]
    rows += [f"{0.2 * i:.1f},{0 if i < 10 else 1},0.85,{1.0 if i < 10 else 2.0}" for i in range(20)]
    path.write_text("\n".join(rows) + "\n")
    trace = read_rail_csv(path)
    assert trace.rails == ("INT",)
    e = energy_per_inference(phase_stats(trace, 0, settle_s=0.0), phase_stats(trace, 1, settle_s=0.0),
                             inferences=10, active_seconds=2.0)
    assert e.e_dyn_j == pytest.approx(0.85 * 1.0 * 2.0 / 10)


def test_write_then_read_round_trip(tmp_path):
    trace = read_rail_csv(TRACES[1])
    out = tmp_path / "copy.csv"
    write_rail_csv(trace, out, {"note": "copy"})
    again = read_rail_csv(out)
    assert again.rails == trace.rails and again.metadata["note"] == "copy"
    assert np.array_equal(again.marks, trace.marks)
    assert np.allclose(again.power, trace.power, rtol=0, atol=1e-9)
    assert np.allclose(again.times, trace.times, rtol=0, atol=2e-6)


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n", "no header with a 'Mark' column"),
    (",Mark,INT_power\n0.0,0,1.0,9\n", "data row 2 has 4 fields"),
    (",Mark,INT_power\n0.0,0,abc\n", "data row 2 is not numeric"),
    (",Mark,X\n0.0,0,1\n", "no '<RAIL>_power'"),
    (",Mark,INT_power\n1.0,0,1\n0.5,0,1\n", "timestamps go backwards"),
])
def test_bad_traces_name_the_file_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(QmlpError, match=message) as info:
        read_rail_csv(path)
    assert "bad.csv" in str(info.value)


def test_missing_phase_is_refused(tmp_path):
    path = tmp_path / "idle_only.csv"
    path.write_text(",Mark,INT_power\n" + "".join(f"{i * 0.2:.1f},0,1.0\n" for i in range(60)))
    trace = read_rail_csv(path)
    with pytest.raises(TraceError, match="no samples with Mark == 1"):
        phase_stats(trace, 1)
    with pytest.raises(TraceError, match="N >= 1"):
        energy_per_inference(phase_stats(trace, 0), phase_stats(trace, 0), inferences=0, active_seconds=1.0)
