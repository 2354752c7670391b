"""`qmlp profile OUT --target sim` end to end on a small compiled design: cycle counts against the
RTL simulation and the estimator, the report's reproducibility and its stable JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qmlp.cli import main
from qmlp.hwgen.emit import emit_rtl
from qmlp.hwgen.estimate import estimate, write_estimate_reports
from qmlp.hwgen.fold import fold
from qmlp.ir import replace, save
from qmlp.profile.report import REQUIRED_KEYS, SCHEMA_VERSION, check_schema, reproduce
from qmlp.sim.rtl import simulate_rtl
from qmlp.testing import random_dataflow


def _compiled(root: Path, target_fps: float) -> Path:
    """A compiled OUT without the ONNX frontend: random IR -> fold -> estimate -> RTL."""
    df = fold(random_dataflow(3, widths=(16, 12, 8, 4)), target_fps=target_fps, clock_mhz=200.0)
    df = replace(df, metadata={"board": "zcu104"})
    root.mkdir(parents=True)
    save(df, root / "dataflow.json")
    emit_rtl(df, root / "rtl")
    write_estimate_reports(estimate(df), root / "report")
    return root


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """`qmlp compile` (from a lowered dataflow.json) then `qmlp profile --json`, both via the CLI."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("prof")
    save(random_dataflow(3, widths=(16, 12, 8, 4)), root / "random.json")
    out = root / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["compile", str(root / "random.json"), "--board", "zcu104", "-o", str(out),
                     "--target-fps", "5000000"]) == 0
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(["profile", str(out), "--target", "sim", "--json", "--runs", "1000", "--batch", "64"])
    assert status == 0
    return out, json.loads(stdout.getvalue())


def test_json_on_stdout_is_the_written_report(profiled):
    out, printed = profiled
    written = json.loads((out / "report" / "profile.json").read_text())
    assert printed == written
    for name in ("profile_latency.png", "profile_latency_samples.csv", "profile_activity.json"):
        assert (out / "report" / name).stat().st_size > 0
    assert not list(out.glob(".profile-*"))  # the scratch folder is gone


def test_three_layers_and_an_energy_estimate(profiled):
    _, data = profiled
    lat = data["latency"]
    for layer in ("fabric", "call", "end_to_end"):
        s = lat[layer]["seconds"]
        assert s["runs"] == 1000 and s["warmup"] == 20
        assert 0 < s["p50_s"] <= s["p90_s"] <= s["p99_s"] <= s["max_s"]
    assert lat["fabric"]["seconds"]["p50_s"] < lat["call"]["seconds"]["p50_s"] < lat["end_to_end"]["seconds"]["p50_s"]
    assert lat["call"]["kind"].startswith("modelled")
    assert lat["end_to_end"]["host_code"].startswith("OUT/driver/qmlp_driver")  # the generated driver, timed
    assert any("assumption" in a for a in lat["call"]["assumptions"])
    energy = data["energy"]
    assert energy["kind"] == "estimate" and "ESTIMATE" in energy["note"]
    assert energy["activity"]["source"].startswith("measured: Verilator toggle coverage")
    assert 0 < energy["activity"]["logic_toggle"] < 1
    details = energy["activity"]["details"]
    assert details["register_bits"] > 0 and details["register_bits"] + details["net_bits"] == details["bits"]
    assert energy["activity"]["register_toggle"] == details["register_rate"]
    assert energy["activity"]["logic_toggle"] == details["net_rate"]
    assert energy["resources"]["source"].startswith("estimate")
    assert 0 < energy["e_dyn_j"] < energy["e_total_j"]
    # a 16-12-8-4 network is not the seed design: no seed figures beside it
    assert data["seed_comparison"] == {"applicable": False, "reason": "the model is 16-12-8-4, not the seed's "
                                       "40-256-128-64-32-4: no like-for-like figures"}
    assert data["throughput"]["fabric_ips"] >= data["throughput"]["call_ips"] >= data["throughput"]["end_to_end_ips"]


def test_fabric_cycles_equal_the_rtl_simulation_and_track_the_estimator(profiled, tmp_path):
    out, data = profiled
    from qmlp.ir import load

    df = load(out / "dataflow.json")
    q = np.random.default_rng(5).integers(df.input.qmin, df.input.qmax + 1, size=(1, df.input.features))
    rtl = simulate_rtl(df, out / "rtl", q, backpressure=False, seed=0)
    cycles = data["latency"]["fabric"]["cycles"]
    assert cycles["p50"] == cycles["max"] == rtl.latency[0] == rtl.registers["LAST_LATENCY"]
    assert data["latency"]["fabric"]["seconds"]["p50_s"] == pytest.approx(rtl.latency[0] / 200e6, rel=1e-12)
    # The analytical estimator follows the RTL cycle model: batch-1 latency and II agree exactly,
    # on this design and on a more folded one.
    assert data["latency"]["fabric"]["estimate_cycles"] == rtl.latency[0]
    assert data["throughput"]["ii_cycles"] == data["throughput"]["estimate_ii_cycles"]
    other = _compiled(tmp_path / "folded", 1e6)
    df2 = load(other / "dataflow.json")
    rtl2 = simulate_rtl(df2, other / "rtl", q, backpressure=False, seed=0)
    est2 = json.loads((other / "report" / "estimate_network_performance.json").read_text())["latency_cycles"]
    assert est2 == rtl2.latency[0]
    assert rtl2.latency[0] > rtl.latency[0]  # more folding, more cycles


def test_reported_numbers_reproduce_from_the_named_files(profiled):
    out, data = profiled
    recomputed = reproduce(out / "report")
    assert {"latency.fabric.seconds.p50_s", "latency.end_to_end.seconds.p99_s", "energy.e_total_j"} <= set(recomputed)
    for dotted, value in recomputed.items():
        node = data
        for key in dotted.split("."):
            node = node[key]
        assert node == value, dotted  # bit-for-bit: same files, same arithmetic


def test_check_command_reproduces_and_catches_an_edited_report(profiled, tmp_path, capsys):
    import shutil

    out, _ = profiled
    assert main(["profile", str(out), "--check"]) == 0
    assert "of 11 numbers reproduced" in capsys.readouterr().out
    copy = tmp_path / "edited"
    shutil.copytree(out, copy)
    data = json.loads((copy / "report" / "profile.json").read_text())
    data["energy"]["e_total_j"] *= 2
    (copy / "report" / "profile.json").write_text(json.dumps(data))
    assert main(["profile", str(copy), "--check"]) == 1
    assert "MISMATCH energy.e_total_j" in capsys.readouterr().out


def test_reproduce_refuses_a_changed_input(profiled, tmp_path):
    import shutil

    out, _ = profiled
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    samples = copy / "report" / "profile_latency_samples.csv"
    samples.write_text(samples.read_text().replace(",", ", ", 1))
    with pytest.raises(Exception, match="changed since profile.json was written"):
        reproduce(copy / "report")


def test_schema_is_stable(profiled):
    _, data = profiled
    assert data["schema"] == "qmlp.profile" and data["schema_version"] == SCHEMA_VERSION == 1
    check_schema(data)
    # Pinned: removing or renaming any of these is a schema change and needs SCHEMA_VERSION + 1.
    assert len(REQUIRED_KEYS) == 34 and REQUIRED_KEYS[:2] == ("schema", "schema_version")
    assert "latency.end_to_end.host_seconds" in REQUIRED_KEYS and "energy.assumptions" in REQUIRED_KEYS
    broken = json.loads(json.dumps(data))
    del broken["latency"]["call"]["assumptions"]
    with pytest.raises(Exception, match="missing key 'latency.call.assumptions'"):
        check_schema(broken)


@pytest.mark.parametrize("argv, message", [
    (["--runs", "10"], "needs at least 1000 runs"),
    (["--batch", "0"], "--batch 0: must be >= 1"),
    (["--target", "udp://x:1"], "expected 'sim' or 'tcp://HOST:PORT'"),
    (["--target", "tcp://127.0.0.1:9"], "needs --token-file"),
])
def test_bad_arguments_exit_2_and_write_nothing(profiled, tmp_path, capsys, argv, message):
    import shutil

    out, _ = profiled
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "report" / "profile.json").unlink()
    assert main(["profile", str(copy), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (copy / "report" / "profile.json").exists()
    assert not list(copy.glob(".profile-*"))


def test_missing_out_is_a_one_line_error(tmp_path, capsys):
    assert main(["profile", str(tmp_path / "nope")]) == 2
    assert "no dataflow.json; pass the output folder of 'qmlp compile'" in capsys.readouterr().err


def test_call_model_follows_the_drivers_transfer_plan(profiled):
    """The modelled call is the generated driver's transfers: its plan for a batch-1 call
    (padding included) and one transfer for the batch, each with the fixed DMA costs once."""
    from qmlp.boards.stream import stream_layout
    from qmlp.ir import load
    from qmlp.profile.latency import DmaModel, model_call
    from qmlp.profile.run import _driver, transfer_plan

    out, data = profiled
    acc = _driver(out)
    plan, source = transfer_plan(out, 64)
    assert plan == acc.transfer_plan(64) and len(plan) == 1 and source.startswith("OUT/driver")
    df = load(out / "dataflow.json")
    layout, tp = stream_layout(df), data["throughput"]
    call = model_call(latency_cycles=data["latency"]["fabric"]["cycles"]["p50"], ii_cycles=tp["ii_cycles"], plan=plan,
                      in_beats=layout.input.beats, out_beats=layout.output.beats,
                      in_beat_bytes=layout.input.beat_bytes, out_beat_bytes=layout.output.beat_bytes,
                      clock_mhz=200.0, dma=DmaModel())
    assert tp["call_ips"] == pytest.approx(64 / call.seconds, rel=1e-12)
    assert any("transfer_plan" in a for a in data["latency"]["call"]["assumptions"])


def test_seed_comparison_only_for_the_seed_topology():
    from qmlp.profile.report import format_table, seed_comparison

    seed = seed_comparison([40, 256, 128, 64, 32, 4], 50e-6, 1e-6, "estimate", latency_how="call modelled + host x")
    assert seed["applicable"] and seed["latency_ratio"] == pytest.approx(0.11e-3 / 50e-6)
    assert "ARM cores" in seed["seed"]["method"]
    assert not seed_comparison([40, 256, 4], 50e-6, 1e-6, "estimate", latency_how="x")["applicable"]


def test_table_shows_layers_estimate_label_and_seed_line(profiled):
    from qmlp.profile.report import format_table, seed_comparison

    _, data = profiled
    table = format_table(data)
    lines = table.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["fabric", "call", "end"]
    assert "modelled" in lines[3] and "measured: LAST_LATENCY" in lines[2]
    assert "energy (ESTIMATE" in table
    assert "seed design" not in table  # not the seed topology
    data = {**data, "seed_comparison": seed_comparison([40, 256, 128, 64, 32, 4], 50e-6, None, "estimate",
                                                       latency_how="call modelled + host work timed on this host")}
    lines = format_table(data).splitlines()
    assert lines[-2].startswith("seed design: 110 us / 230 uJ per inference (measured on a ZCU104")
    assert lines[-1].startswith("qmlp:        50 us end-to-end p50 (call modelled + host work timed on this host)")
    assert f"{data['latency']['fabric']['cycles']['p50']:g} (estimator {data['latency']['fabric']['estimate_cycles']})" in table
