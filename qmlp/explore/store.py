"""The results store: one SQLite file, ``OUT/explore.sqlite``, that pandas opens directly
(``pd.read_sql("select * from designs", sqlite3.connect(path))``).

Tables (one row per key; the keys are hashes of the configuration, see ``spec``):

* ``trials``: one trained model: its configuration, status (``done``, ``failed``, ``pruned``),
  the one-line reason of a failure, accuracies and times;
* ``rungs``: successive-halving results (validation accuracy after a rung's epochs);
* ``designs``: one trained model built for one target (board, inferences/s, clock): estimated
  resources, latency and energy, and for the checked Pareto designs Yosys counts and the RTL check;
* ``runs``: one row per ``qmlp explore`` invocation (spec, command, times, how it ended).

Only the driver writes, one transaction per finished result, so a killed sweep leaves every row
either complete or absent. Columns come from the ``*_COLUMNS`` tables below; a row's extra keys are
an error (a typo would otherwise vanish silently).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ConfigError

__all__ = ["Store", "STORE_NAME", "TRIAL_COLUMNS", "RUNG_COLUMNS", "DESIGN_COLUMNS", "RUN_COLUMNS"]

STORE_NAME = "explore.sqlite"
STORE_VERSION = 1

TRIAL_COLUMNS = {
    "key": "TEXT PRIMARY KEY", "status": "TEXT NOT NULL", "reason": "TEXT", "dataset": "TEXT", "weights": "TEXT",
    "acts": "INTEGER", "input_bits": "INTEGER", "hidden": "TEXT", "epochs": "INTEGER", "config": "TEXT",
    "accuracy": "REAL", "train_accuracy": "REAL", "float_accuracy": "REAL", "val_accuracy": "REAL",
    "verify_ok": "INTEGER", "verify_samples": "INTEGER", "verify_mismatches": "INTEGER",
    "train_seconds": "REAL", "seconds": "REAL", "host": "TEXT", "node": "TEXT", "pid": "INTEGER", "finished": "TEXT",
}
RUNG_COLUMNS = {
    "key": "TEXT PRIMARY KEY", "trial": "TEXT", "rung": "INTEGER", "epochs": "INTEGER", "status": "TEXT NOT NULL",
    "reason": "TEXT", "val_accuracy": "REAL", "seconds": "REAL", "host": "TEXT", "node": "TEXT", "pid": "INTEGER",
    "finished": "TEXT",
}
DESIGN_COLUMNS = {
    "key": "TEXT PRIMARY KEY", "trial": "TEXT NOT NULL", "board": "TEXT", "target_fps": "TEXT", "clock_mhz": "REAL",
    "status": "TEXT NOT NULL", "reason": "TEXT", "lut": "INTEGER", "ff": "INTEGER", "bram36": "REAL",
    "dsp": "INTEGER", "ii_cycles": "REAL", "fps": "REAL", "latency_cycles": "INTEGER", "latency_ns": "REAL",
    "power_w": "REAL", "energy_j": "REAL", "energy_total_j": "REAL", "folding": "TEXT",
    "check_status": "TEXT", "check_reason": "TEXT", "synth_lut": "INTEGER", "synth_ff": "INTEGER",
    "synth_bram36": "REAL", "synth_dsp": "INTEGER", "fmax_mhz": "REAL", "synth_seconds": "REAL",
    "rtl_ok": "INTEGER", "rtl_mismatches": "INTEGER", "rtl_samples": "INTEGER", "rtl_latency_cycles": "INTEGER",
    "rtl_ii": "REAL", "check_seconds": "REAL", "folder": "TEXT", "finished": "TEXT",
}
RUN_COLUMNS = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT", "started": "TEXT", "finished": "TEXT", "status": "TEXT",
    "spec": "TEXT", "spec_path": "TEXT", "command": "TEXT", "cluster": "TEXT", "seconds": "REAL",
    "trials_run": "INTEGER", "qmlp_version": "TEXT", "load_start": "REAL", "load_end": "REAL",
}
_TABLES = {"trials": TRIAL_COLUMNS, "rungs": RUNG_COLUMNS, "designs": DESIGN_COLUMNS, "runs": RUN_COLUMNS}


def _load() -> float | None:
    try:
        return round(os.getloadavg()[1], 2)
    except OSError:  # not available on this platform
        return None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """The SQLite results store of one output folder. Use as a context manager."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ConfigError(f"{self.path}: no results store; run 'qmlp explore SPEC -o {self.path.parent}' first")
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions below
            self.db.row_factory = sqlite3.Row
            self._create()
        except sqlite3.DatabaseError as error:
            raise ConfigError(f"{self.path}: not a qmlp explore store ({error}); choose another output folder") from None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def _create(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables - {"sqlite_sequence"} and version != STORE_VERSION:
            raise ConfigError(f"{self.path}: store version {version}, this qmlp writes {STORE_VERSION}; "
                              "use a new output folder")
        with closing(self.db.cursor()) as cur:
            cur.execute("BEGIN")
            for name, columns in _TABLES.items():
                cur.execute(f"CREATE TABLE IF NOT EXISTS {name} ("
                            + ", ".join(f"{col} {kind}" for col, kind in columns.items()) + ")")
            cur.execute(f"PRAGMA user_version = {STORE_VERSION}")
            cur.execute("COMMIT")

    # --- writing: each call is one transaction ------------------------------------------------

    def _upsert(self, cur: sqlite3.Cursor, table: str, row: Mapping[str, Any]) -> None:
        columns = _TABLES[table]
        unknown = set(row) - set(columns)
        if unknown:
            raise ValueError(f"store: no column {sorted(unknown)} in table {table}")
        names = [n for n in row if n != "key"]
        values = [json.dumps(row[n]) if isinstance(row[n], (list, dict, tuple)) else row[n] for n in names]
        # update the columns given (a partial row adds to an existing one), else insert the row
        cur.execute(f"UPDATE {table} SET {', '.join(f'{n} = ?' for n in names)} WHERE key = ?", [*values, row["key"]])
        if cur.rowcount == 0:
            cur.execute(f"INSERT INTO {table} (key, {', '.join(names)}) VALUES ({', '.join('?' * (len(names) + 1))})",
                        [row["key"], *values])

    def write(self, table: str, rows: Iterable[Mapping[str, Any]], *, also: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> None:
        """Insert or update ``rows`` of ``table`` (and the ``also`` rows) in one transaction."""
        stamp = now()
        with closing(self.db.cursor()) as cur:
            cur.execute("BEGIN IMMEDIATE")
            try:
                for name, row in [(table, r) for r in rows] + list(also):
                    self._upsert(cur, name, {**row, "finished": row.get("finished", stamp)})
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def start_run(self, row: Mapping[str, Any]) -> int:
        """A new ``runs`` row (status running); the machine's 5-minute load average is recorded
        at both ends, because wall times on a shared machine mean little without it."""
        cur = self.db.execute(f"INSERT INTO runs ({', '.join(row)}, started, status, load_start) VALUES "
                              f"({', '.join('?' * len(row))}, ?, 'running', ?)", [*row.values(), now(), _load()])
        return int(cur.lastrowid)

    def end_run(self, run_id: int, status: str, seconds: float, trials_run: int) -> None:
        self.db.execute("UPDATE runs SET finished = ?, status = ?, seconds = ?, trials_run = ?, load_end = ? "
                        "WHERE id = ?", (now(), status, round(seconds, 1), trials_run, _load(), run_id))

    # --- reading --------------------------------------------------------------------------------

    def rows(self, table: str, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
        if table not in _TABLES:
            raise ValueError(table)
        return [dict(r) for r in self.db.execute(f"SELECT * FROM {table} {where}", params)]

    def by_key(self, table: str) -> dict[str, dict[str, Any]]:
        return {row["key"]: row for row in self.rows(table)}

    def joined_designs(self) -> list[dict[str, Any]]:
        """Built designs of finished trials, each with its trial's accuracy and precision columns:
        what the Pareto front and the report are computed from."""
        query = ("SELECT d.*, t.accuracy, t.weights, t.acts, t.input_bits, t.hidden, t.dataset "
                 "FROM designs d JOIN trials t ON d.trial = t.key "
                 "WHERE d.status = 'done' AND t.status = 'done' AND t.accuracy IS NOT NULL ORDER BY d.key")
        return [dict(r) for r in self.db.execute(query)]

    def last_run(self) -> dict[str, Any] | None:
        rows = self.rows("runs", "ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None
