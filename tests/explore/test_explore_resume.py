"""Ctrl-C in the middle of a sweep, then the same command again: the store holds every trial
that finished before the interrupt (with its designs and files), nothing half-written, and the
second run skips them and finishes the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from qmlp.explore.store import STORE_NAME, Store

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"dataset": "digits",
        "space": {"weights": ["ternary", "int2", "int3"], "hidden": [[32]]},
        # long enough per trial (no early stop) that the interrupt lands while one is running
        "train": {"epochs": 100, "patience": 100},
        "front": {"synth": False, "rtl": False}}


def _explore(spec: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # SIGINT back at its default in the child: a runner started in the background of a shell
    # without job control ignores it, the child would inherit that and never see the interrupt
    return subprocess.Popen([sys.executable, "-m", "qmlp", "explore", str(spec), "-o", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_interrupt_then_resume(tmp_path):
    spec, out = tmp_path / "resume.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump(SPEC))
    first = _explore(spec, out, "--cpus", "1")
    lines = []
    deadline = time.monotonic() + 600
    for line in first.stdout:  # blocks until the driver reports; the first finished trial is the event
        lines.append(line)
        if line.startswith("  done") or time.monotonic() > deadline:
            break
    assert lines and lines[-1].startswith("  done"), "".join(lines)
    first.send_signal(signal.SIGINT)
    rest, _ = first.communicate(timeout=300)
    assert first.returncode == 130, "".join(lines) + rest
    assert "explore: interrupted; every finished trial is in" in rest and "qmlp: interrupted" in rest

    with Store(out / STORE_NAME) as store:
        trials = store.rows("trials")
        designs = store.rows("designs")
        run = store.last_run()
    assert run["status"] == "interrupted"
    done = {t["key"] for t in trials if t["status"] == "done"}
    assert 1 <= len(done) < 3 and len(trials) == len(done)
    assert {d["trial"] for d in designs} == done  # each stored trial came with its designs ...
    assert all((out / "trials" / key / "model.onnx").is_file() for key in done)  # ... and its files
    assert sorted(p.name for p in (out / "trials").iterdir()) == sorted(done)  # no temporary leftovers
    finished = {t["key"]: t["finished"] for t in trials}

    second = _explore(spec, out, "--cpus", "2")
    output, _ = second.communicate(timeout=900)
    assert second.returncode == 0, output
    assert f"resuming: {len(done)} trial(s) already in the store are skipped" in output
    assert "3/3 trials done, 0 running, 0 failed" in output
    with Store(out / STORE_NAME) as store:
        trials = store.by_key("trials")
        runs = store.rows("runs", "ORDER BY id")
    assert len(trials) == 3 and all(t["status"] == "done" for t in trials.values())
    assert all(trials[key]["finished"] == stamp for key, stamp in finished.items())  # not run again
    assert [(r["status"], r["trials_run"]) for r in runs] == [("interrupted", len(done)), ("complete", 3 - len(done))]
    assert (out / "summary.md").is_file() and (out / "best" / "zcu104" / "dataflow.json").is_file()
