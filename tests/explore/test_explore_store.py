"""The SQLite results store: one transaction per write, partial rows update, typos refused,
pandas reads it, and foreign or newer files are refused with a one-line error."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from qmlp.errors import ConfigError
from qmlp.explore.store import STORE_NAME, Store


def _trial(key, status="done", accuracy=0.9):
    return {"key": key, "status": status, "weights": "int2", "acts": 2, "input_bits": 8, "hidden": "16",
            "accuracy": accuracy, "dataset": "digits"}


def _design(key, trial, lut=100):
    return {"key": key, "trial": trial, "board": "zcu104", "target_fps": "100000.0", "status": "done",
            "lut": lut, "ff": 10, "bram36": 0.5, "dsp": 0, "ii_cycles": 10.0, "latency_ns": 50.0, "energy_j": 1e-9,
            "energy_total_j": 1e-6}


def test_write_join_update_and_pandas(tmp_path):
    with Store(tmp_path / STORE_NAME) as store:
        store.write("trials", [_trial("t1")], also=[("designs", _design("d1", "t1")), ("designs", _design("d2", "t1", 50))])
        store.write("trials", [_trial("t2", status="failed", accuracy=None)])
        store.write("designs", [{"key": "d1", "check_status": "done", "synth_lut": 120}])  # partial row: an update
        joined = store.joined_designs()
        assert [(d["key"], d["lut"], d["synth_lut"], d["accuracy"]) for d in joined] == [
            ("d1", 100, 120, 0.9), ("d2", 50, None, 0.9)]
        assert store.by_key("trials")["t2"]["status"] == "failed"
        assert all(row["finished"] for row in store.rows("designs"))
    frame = pd.read_sql("select * from designs", sqlite3.connect(tmp_path / STORE_NAME))
    assert sorted(frame["key"]) == ["d1", "d2"] and frame.loc[frame["key"] == "d1", "synth_lut"].item() == 120


def test_a_failed_write_leaves_nothing(tmp_path):
    with Store(tmp_path / STORE_NAME) as store:
        with pytest.raises(ValueError, match="no column"):
            store.write("trials", [_trial("t1")], also=[("designs", {**_design("d1", "t1"), "lutt": 3})])
        assert store.rows("trials") == [] and store.rows("designs") == []


def test_runs(tmp_path):
    with Store(tmp_path / STORE_NAME) as store:
        run = store.start_run({"spec": "{}", "command": "qmlp explore s.yaml"})
        assert store.last_run()["status"] == "running"
        store.end_run(run, "interrupted", 12.34, 3)
        last = store.last_run()
        assert (last["status"], last["seconds"], last["trials_run"]) == ("interrupted", 12.3, 3)


def test_foreign_and_missing_files(tmp_path):
    (tmp_path / "junk.sqlite").write_text("not a database at all, just text" * 10)
    with pytest.raises(ConfigError, match="not a qmlp explore store"):
        Store(tmp_path / "junk.sqlite")
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(ConfigError, match="store version 0, this qmlp writes 1"):
        Store(tmp_path / "other.sqlite")
    with pytest.raises(ConfigError, match="no results store"):
        Store(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()
