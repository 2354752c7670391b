"""``qmlp explore`` end to end on a local Ray with 2 CPUs and tiny digits models (seconds each):
the store, the designs and their failures, the accuracy against execute_onnx, the front, the
best folder, the report regenerated from the store alone, successive halving, a failing trial,
and resuming (in process here; after Ctrl-C in test_explore_resume.py)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
import yaml

from qmlp.cli import main
from qmlp.explore.engine import ray_cluster
from qmlp.explore.pareto import fronts_by_board, select_best
from qmlp.explore.store import STORE_NAME, Store
from qmlp.explore.sweep import SweepOptions, run_sweep


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module: run_sweep uses a Ray that is already running."""
    with ray_cluster(None, 2) as cluster:
        yield cluster


def _spec(tmp_path, name, doc):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _sweep(spec, out, **kwargs):
    lines = []
    run_sweep(SweepOptions(spec=spec, out=out, **kwargs), log=lines.append, tty=False)
    return "\n".join(lines)


TINY = {"dataset": "digits", "space": {"weights": ["ternary", "int2"], "acts": [2], "hidden": [[16], [256, 128]]},
        "train": {"epochs": 2}, "verify": {"samples": 200},
        "hardware": {"boards": ["zcu104", "pynq-z2"], "target_fps": [100000, "max"]},
        "front": {"synth": False, "rtl": False, "max_designs": 2}}


def test_tiny_sweep_end_to_end(tmp_path, ray_local):
    from qmlp.quantize.datasets import load_dataset
    from qmlp.quantize.export import reference_outputs

    spec, out = _spec(tmp_path, "tiny", TINY), tmp_path / "out"
    log = _sweep(spec, out)
    assert "4 configurations of 4 (grid), 4 target(s)" in log and "4/4 trials done, 0 running, 0 failed" in log

    with Store(out / STORE_NAME) as store:
        trials, designs = store.rows("trials"), store.rows("designs")
        joined = store.joined_designs()
        assert sorted((t["weights"], t["hidden"], t["status"]) for t in trials) == [
            ("int2", "16", "done"), ("int2", "256-128", "done"), ("ternary", "16", "done"), ("ternary", "256-128", "done")]
        assert all(t["verify_ok"] == 1 and t["verify_mismatches"] == 0 for t in trials)
        assert len(designs) == 16
        # the wide network fully parallel fits neither part (~10^5-10^6 LUT); the sweep records why and goes on
        by_trial = {t["key"]: t for t in trials}
        failed = sorted((d["board"], d["target_fps"], by_trial[d["trial"]]["hidden"], d["reason"].split(":")[0])
                        for d in designs if d["status"] == "failed")
        # pynq-z2's 53 k LUT never hold it; whether zcu104 does is the calibrated estimate's call
        assert failed[:2] == [("pynq-z2", "max", "256-128", "does not fit pynq-z2")] * 2
        assert all(row == ("zcu104", "max", "256-128", "does not fit zcu104") for row in failed[2:])
        assert all(d["lut"] > 0 and d["latency_ns"] > 0 and d["energy_j"] > 0 for d in joined)

        # accuracy = what the hardware computes: equal to QONNX execute_onnx on the whole test split
        data = load_dataset("digits", None, seed=0)
        trial = next(t for t in trials if t["weights"] == "int2" and t["hidden"] == "16")
        scores = reference_outputs(out / "trials" / trial["key"] / "model.onnx", data.x_test)
        assert trial["accuracy"] == pytest.approx(float(np.mean(scores.argmax(axis=1) == data.y_test)), abs=1e-12)
        assert (out / "trials" / trial["key"] / "train.json").is_file()

        # the front designs were compiled; best/<board>/ is the chosen one, its estimate the stored one
        fronts = fronts_by_board(joined)
        assert set(fronts) == {"zcu104", "pynq-z2"}
        for board, front in fronts.items():
            checked = sorted(front, key=lambda d: (-d["accuracy"], d["lut"], d["key"]))[:2]
            assert all(d["check_status"] == "done" and (out / d["folder"] / "rtl" / "qmlp_top.v").is_file() for d in checked)
            assert all(d["check_status"] is None for d in front if d not in checked)
            best = select_best(checked, min_accuracy=None, minimize="lut")
            choice = json.loads((out / "best" / board / "explore_choice.json").read_text())
            assert choice["design"] == best["key"]
            perf = json.loads((out / "best" / board / "report" / "estimate_network_performance.json").read_text())
            assert (perf["latency_cycles"], perf["ii_cycles"]) == (best["latency_cycles"], best["ii_cycles"])

    summary = (out / "summary.md").read_text()
    assert "## Pareto front: zcu104" in summary and "## Pareto front: pynq-z2" in summary
    assert "design failed | does not fit pynq-z2" in summary
    for png in ("accuracy_lut.png", "accuracy_latency.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the report is a function of the store alone
    (out / "summary.md").unlink()
    assert main(["explore", "--report", str(out)]) == 0
    assert (out / "summary.md").read_text() == summary

    # running the same spec again runs nothing
    log = _sweep(spec, out)
    assert "resuming: 4 trial(s) already in the store are skipped" in log
    with Store(out / STORE_NAME) as store:
        runs = store.rows("runs", "ORDER BY id")
        assert [(r["status"], r["trials_run"]) for r in runs] == [("complete", 4), ("complete", 0)]


def test_successive_halving_prunes_with_reasons(tmp_path, ray_local):
    doc = {"dataset": "digits", "space": {"weights": ["bipolar", "ternary", "int2", "int4"], "hidden": [[16]]},
           "train": {"epochs": 4}, "search": {"method": "halving", "eta": 2, "rungs": 2},
           "front": {"synth": False, "rtl": False}}
    out = tmp_path / "out"
    log = _sweep(_spec(tmp_path, "halving", doc), out)
    assert "rung 1/2: 2 of 4 go on" in log
    with Store(out / STORE_NAME) as store:
        rungs, trials = store.rows("rungs"), store.by_key("trials")
    assert len(rungs) == 4 and all(r["epochs"] == 2 and r["status"] == "done" for r in rungs)
    ranked = sorted(rungs, key=lambda r: (-r["val_accuracy"], r["trial"]))
    assert [trials[r["trial"]]["status"] for r in ranked] == ["done", "done", "pruned", "pruned"]
    for rung in ranked[2:]:
        reason = trials[rung["trial"]]["reason"]
        assert reason.startswith("successive halving: rung 1/2 (2 epochs) validation accuracy ")
        assert f"{rung['val_accuracy']:.4%}" in reason and f"below the cut {ranked[1]['val_accuracy']:.4%}" in reason
    assert all(trials[r["trial"]]["epochs"] == 4 for r in ranked[:2])


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, ray_local):
    rng = np.random.default_rng(0)
    # one training sample: the training split left after the validation hold-out is empty
    np.savez(tmp_path / "one.npz", x_train=rng.normal(size=(1, 4)), y_train=np.array([1]),
             x_test=rng.normal(size=(5, 4)), y_test=np.array([0, 1, 0, 1, 0]))
    doc = {"dataset": "one.npz", "space": {"weights": ["ternary", "int2"], "hidden": [[8]]}, "train": {"epochs": 1}}
    out = tmp_path / "out"
    log = _sweep(_spec(tmp_path, "failing", doc), out)
    assert "0/2 trials done, 0 running, 2 failed" in log
    with Store(out / STORE_NAME) as store:
        trials = store.rows("trials")
    assert [t["status"] for t in trials] == ["failed", "failed"]
    assert all(t["reason"].startswith("train: ") and "\n" not in t["reason"] for t in trials)
    summary = (out / "summary.md").read_text()
    assert "| failed | train: " in summary
    frame = sqlite3.connect(out / STORE_NAME).execute("select count(*) from designs").fetchone()
    assert frame == (0,)


def test_out_folder_rules(tmp_path, ray_local, capsys):
    spec = _spec(tmp_path, "tiny", TINY)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["explore", str(spec), "-o", str(tmp_path / "busy")]) == 2
    assert "not empty and holds no explore.sqlite" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    with Store(tmp_path / "other" / STORE_NAME) as store:
        store.start_run({"spec": json.dumps({"base": {"dataset": "mnist", "data_id": ""}})})
    assert main(["explore", str(spec), "-o", str(tmp_path / "other")]) == 2
    assert "holds a sweep on dataset 'mnist'" in capsys.readouterr().err
    greedy = _spec(tmp_path, "greedy", {**TINY, "resources": {"trial_cpus": 3}})  # the module's Ray has 2
    assert main(["explore", str(greedy), "-o", str(tmp_path / "greedy")]) == 2
    assert "field resources.trial_cpus: 3 CPUs per task, but the Ray cluster offers 2.0" in capsys.readouterr().err


@pytest.mark.slow
def test_front_checks_run_yosys_and_the_rtl(tmp_path, ray_local):
    """The front check for real: Yosys netlist counts and the Verilator RTL check (about a minute)."""
    doc = {"dataset": "digits", "space": {"weights": ["int2"], "hidden": [[16]]}, "train": {"epochs": 2},
           "front": {"samples": 50}}
    out = tmp_path / "out"
    _sweep(_spec(tmp_path, "checked", doc), out)
    with Store(out / STORE_NAME) as store:
        (design,) = store.joined_designs()
    assert design["check_status"] == "done", design["check_reason"]
    synth = json.loads((out / design["folder"] / "report" / "synth_resources.json").read_text())
    assert design["synth_lut"] == synth["LUT_sites"] >= synth["LUT"] + synth["LUTRAM"] > 0
    assert design["synth_ff"] == synth["FF"]
    assert design["rtl_ok"] == 1 and design["rtl_mismatches"] == 0 and design["rtl_samples"] == 50
    # the RTL's measured timing is what the estimate predicted
    assert (design["rtl_latency_cycles"], design["rtl_ii"]) == (design["latency_cycles"], design["ii_cycles"])
    assert json.loads((out / "best" / "zcu104" / "explore_choice.json").read_text())["design"] == design["key"]
