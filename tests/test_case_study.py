"""The CAN case-study runner (examples/can_ids/run.py): its pure parts on the recorded results.json
and on hand-made records, and its failure paths. The full run takes tens of minutes (Yosys on the
fully parallel designs); `make case-study ARGS=--quick` is the short end-to-end version."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "examples" / "can_ids" / "run.py"
RECORDED = ROOT / "examples" / "can_ids" / "results.json"


@pytest.fixture(scope="module")
def cs():
    spec = importlib.util.spec_from_file_location("can_ids_case_study", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _record(cs, *, name="w2a2_fps100000", label="2-bit, 100,000/s", synth=True, lut=1234, acc=0.9995):
    record = {
        "name": name, "label": label, "model": "examples/can_ids_w2a2.onnx",
        "estimate": {"ii_cycles": 1856.0, "latency_cycles": 5184,
                     "resources": {"LUT": 999, "FF": 700, "BRAM36": 4.0, "DSP": 0}},
        "folding": {"Defaults": {}, "fc0": {"PE": 4, "SIMD": 2}},
        "verify": {"samples": 2000, "passed": True},
        "hil": {"tests": 12, "failures": 0, "errors": 0, "skipped": 0},
        "rtl_accuracy": {"accuracy": acc, "vectors": 63714, "correct": round(acc * 63714)},
        "profile": {"fabric_cycles": 5184.0, "fabric_estimate_cycles": 5184, "fabric_s": 25.92e-6,
                    "end_to_end_p50_s": 48.3e-6, "ii_cycles": 1856, "energy_total_j": 5.76e-6},
        "commands": {"compile": "qmlp compile x"}, "seconds": {"compile": 1.0},
    }
    if synth:
        record["synth"] = {"LUT": lut, "LUTRAM": 6, "FF": 800, "BRAM36": 3, "BRAM18": 2, "DSP": 0,
                           "fmax_estimate_mhz": 412.0}
    return record


def _results(cs, designs):
    return {"schema": cs.SCHEMA, "seed": cs.SEED, "designs": designs, "training": {},
            "run": {"command": "python examples/can_ids/run.py", "wall_seconds": 600.0, "machine": "test",
                    "created_utc": "2026-01-01 00:00 UTC", "qmlp_version": "0", "reuse_models": True,
                    "quick": False, "designs_planned": len(designs), "designs_done": len(designs)}}


def test_plan_is_throughput_major_and_rejects_unknown_names(cs):
    names = [d.name for d in cs.plan()]
    assert names == ["w2a2_fps100000", "ternary_fps100000", "w2a2_max", "ternary_max"]
    assert [d.name for d in cs.plan(["ternary"], ["max"])] == ["ternary_max"]
    with pytest.raises(ValueError, match="unknown variant 'int4'"):
        cs.plan(["int4"])
    with pytest.raises(ValueError, match="--fps '1e5'"):
        cs.plan(None, ["1e5"])


def test_resources_prefer_yosys_and_count_lutram_and_half_brams(cs):
    assert cs.resources(_record(cs)) == {"lut": 1240, "ff": 800, "bram36": 4.0, "dsp": 0, "kind": "yosys"}
    est = cs.resources(_record(cs, synth=False))
    assert est == {"lut": 999, "ff": 700, "bram36": 4.0, "dsp": 0, "kind": "analytical estimate"}


def test_table_marks_every_cell_with_its_provenance(cs):
    table = cs.build_table(_results(cs, [_record(cs), _record(cs, name="t", label="1.58-bit, max", synth=False,
                                                              acc=0.5)]))
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| design")]
    assert len(rows) == 3
    seed, ours, estimated = rows
    assert seed.startswith("| seed (FINN, FPL'23) ᵖ | 99.91% | 3,999 | 4,524 | 4 | 0 | 200 MHz")
    assert "110 µs" in seed and "230 µJ" in seed
    assert "| 99.950% ᵃ ˢ | 1,240 ʸ | 800 ʸ | 4 ʸ | 0 ʸ | 412 MHz ᵉ | 1,856 ˢ | 25.9 µs (5,184 cyc) ˢ |" in ours
    assert "48.3 µs ᵐ" in ours and "5.76 µJ ᵉ" in ours
    assert "| 50.000% ᵃ ˢ | 999 ᵉ | 700 ᵉ |" in estimated and "| - |" in estimated  # no fmax without Yosys
    for marker in ("ᵖ published", "ᵃ measured in simulation", "ʸ measured by Yosys", "ᵉ resources: estimated",
                   "ˢ measured in simulation", "ᵐ modelled/measured"):
        assert marker in table


def test_markdown_says_when_results_are_partial(cs):
    results = _results(cs, [_record(cs)])
    assert "Partial" not in cs.render_markdown(results)
    results["run"]["designs_planned"] = 4
    assert "**Partial: 1 of 4 designs" in cs.render_markdown(results)
    results["designs"].append(_record(cs, name="w2a2_max", label="2-bit, fully parallel", synth=False))
    results["run"].update(synth=True, synth_fps=["100000"])
    assert "Yosys was not run on 2-bit, fully parallel (`--synth-fps 100000`)" in cs.render_markdown(results)


def test_recorded_results_match_their_table(cs):
    """The committed results.json is a full (not --quick) run whose designs passed every check, and
    RESULTS.md and the README table are its rendering."""
    results = json.loads(RECORDED.read_text())
    assert results["schema"] == cs.SCHEMA
    assert not results["run"]["quick"] and results["run"]["synth"] and "100000" in results["run"]["synth_fps"]
    names = [d["name"] for d in results["designs"]]
    # a run stopped early records the designs it finished, in plan order (RESULTS.md says "Partial")
    assert len(names) >= 2 and names == [d.name for d in cs.plan()][:len(names)]
    assert results["run"]["designs_done"] == len(names)
    assert (RECORDED.parent / "RESULTS.md").read_text() == cs.render_markdown(results)
    assert "\n" + cs.build_table(results) + "\n" in (RECORDED.parent / "README.md").read_text()
    assert (RECORDED.parent / "case_study.png").stat().st_size > 10_000
    for d in results["designs"]:
        assert d["verify"]["passed"] and d["hil"]["tests"] > 0
        assert d["hil"]["failures"] == 0 and d["hil"]["errors"] == 0
        assert cs.resources(d)["kind"] == ("yosys" if d["target_fps"] in results["run"]["synth_fps"]
                                           else "analytical estimate")
        # the profiler's measured RTL cycles agree with the estimator's
        assert d["profile"]["fabric_cycles"] == d["estimate"]["latency_cycles"]
        assert d["profile"]["ii_cycles"] == d["estimate"]["ii_cycles"]
        acc = d["rtl_accuracy"]
        assert acc["correct"] == sum(np.diag(acc["confusion"])) and acc["vectors"] == np.sum(acc["confusion"])
        assert acc["accuracy"] == acc["correct"] / acc["vectors"] > 0.99
        assert acc["accuracy"] == d["training_accuracy"]  # the RTL changes no answer of the QAT model


def test_score_counts_a_confusion_matrix(cs, tmp_path):
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 3, 3], dtype=np.int64))
    scores = np.zeros((5, 4), dtype=np.float32)
    scores[np.arange(5), [0, 1, 3, 3, 0]] = 1.0
    np.save(tmp_path / "s.npy", scores)
    result = cs.score(tmp_path / "s.npy", tmp_path / "y.npy")
    assert result["correct"] == 3 and result["vectors"] == 5 and result["accuracy"] == pytest.approx(0.6)
    assert result["confusion"] == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 1]]
    np.save(tmp_path / "y4.npy", np.zeros(4, dtype=np.int64))
    with pytest.raises(cs.StepFailed, match="5 outputs for 4 labels"):
        cs.score(tmp_path / "s.npy", tmp_path / "y4.npy")


def test_junit_counts_sums_suites(cs, tmp_path):
    path = tmp_path / "j.xml"
    path.write_text('<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1"/>'
                    '<testsuite tests="2" failures="0" errors="1"/></testsuites>')
    assert cs.junit_counts(path) == {"tests": 5, "failures": 1, "errors": 1, "skipped": 1}


def test_write_results_is_all_or_nothing(cs, tmp_path, monkeypatch):
    results = _results(cs, [_record(cs)])
    dest = cs.write_results(results, tmp_path / "ok")
    assert sorted(p.name for p in dest.iterdir()) == ["RESULTS.md", "case_study.png", "results.json"]
    assert json.loads((dest / "results.json").read_text()) == results

    def broken(*_args, **_kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(cs, "plot_results", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        cs.write_results(results, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".case_study_")] == []


def test_a_failing_qmlp_step_names_the_command_and_its_log(cs, tmp_path):
    log = tmp_path / "logs" / "compile.log"
    with pytest.raises(cs.StepFailed) as info:
        cs.qmlp(["compile", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "out")], log)
    message = str(info.value)
    assert "`qmlp compile" in message and "exited 2" in message and str(log) in message
    assert "qmlp: error:" in message and "missing.onnx" in message
    assert "# exit 2" in log.read_text()
    assert not (tmp_path / "out").exists()


def test_update_readme_replaces_only_the_marked_table(cs, tmp_path):
    readme = tmp_path / "README.md"
    start, end = cs.README_MARKERS
    readme.write_text(f"intro\n{start}\nold table\n{end}\noutro\n")
    results = _results(cs, [_record(cs)])
    cs.update_readme(results, (readme,))
    assert readme.read_text() == f"intro\n{start}\n{cs.build_table(results)}\n{end}\noutro\n"
    cs.update_readme(results, (readme,))  # idempotent
    assert readme.read_text().count("| seed (FINN") == 1


def test_parse_verify_needs_the_pass_line(cs):
    out = "[1/4] simulator: 2000 vectors\nsome table\n[3/4] RTL == simulator: yes\nverify: PASS (1.0 s)\n"
    assert cs.parse_verify(out) == {"passed": True, "summary": [
        "[1/4] simulator: 2000 vectors", "[3/4] RTL == simulator: yes", "verify: PASS (1.0 s)"]}
    with pytest.raises(cs.StepFailed, match="no 'verify: PASS' line"):
        cs.parse_verify("[1/4] simulator: 2000 vectors\n")
