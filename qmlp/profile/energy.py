"""Energy per inference from recorded power-rail traces (a board's PMBus sensors).

A trace is what ``pynq.DataRecorder`` records, written with ``frame.to_csv()``: a timestamp index,
a ``Mark`` column (0 after ``record()``, +1 per ``mark()``) and one ``<RAIL>_power`` column per
rail in watts (``<RAIL>_voltage``/``<RAIL>_current`` pairs are multiplied when a rail has no power
sensor). The profiler records an idle phase (Mark 0), marks, runs a burst of N inferences in T
seconds (Mark 1) and stops. Lines starting with ``#`` before the header carry ``key: value``
metadata (the burst's N and T, the board, whether the file is synthetic).

Formulas (DESIGN.md): ``E_dyn = (P_active - P_idle) * T / N`` and ``E_total = P_active * T / N``,
per rail and for the rail set named as the headline (the board input rail when present: the
other rails are regulated from it, so adding them up would count power twice).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import QmlpError

__all__ = [
    "TraceError", "RailTrace", "PhaseStats", "EnergyResult", "IDLE_MARK", "ACTIVE_MARK",
    "MIN_PHASE_SECONDS", "read_rail_csv", "write_rail_csv", "phase_stats", "energy_per_inference",
    "headline_rails",
]

IDLE_MARK = 0
ACTIVE_MARK = 1
# PMBus readings update every few hundred ms at ~1/8 W resolution: ten seconds per phase gives
# enough samples for the mean to resolve a few tens of milliwatts.
MIN_PHASE_SECONDS = 10.0


class TraceError(QmlpError):
    """A rail trace file is unreadable or does not hold the phases the formulas need."""


@dataclass(frozen=True, eq=False)
class RailTrace:
    """Samples of named rails: ``power[i, r]`` watts of ``rails[r]`` at ``times[i]`` seconds."""

    rails: tuple[str, ...]
    times: np.ndarray  # float64 seconds since the first sample
    marks: np.ndarray  # int64 DataRecorder Mark per sample
    power: np.ndarray  # float64 (samples, rails)
    metadata: Mapping[str, str]
    path: str = ""


@dataclass(frozen=True)
class PhaseStats:
    """Mean power per rail over one phase, after dropping ``settle_s`` seconds at its start."""

    mark: int
    seconds: float  # span of the kept samples
    samples: int
    mean_w: Mapping[str, float]
    stderr_w: Mapping[str, float]  # standard error of the mean (sample std / sqrt(n))


@dataclass(frozen=True)
class EnergyResult:
    """Energy per inference over a burst of ``inferences`` in ``active_seconds``."""

    rails: tuple[str, ...]  # the rails summed for the headline numbers
    inferences: int
    active_seconds: float
    p_idle_w: float
    p_active_w: float
    e_dyn_j: float
    e_total_j: float
    e_dyn_stderr_j: float
    per_rail: Mapping[str, Mapping[str, float]]  # rail -> {p_idle_w, p_active_w, e_dyn_j, e_total_j}


def _parse_time(text: str) -> float:
    # DataRecorder's index is pandas datetime64[ns]; to_csv prints "YYYY-MM-DD hh:mm:ss.fffffffff".
    # Plain float seconds are accepted too (our own recorder may write them).
    try:
        return float(text)
    except ValueError:
        stamp = np.datetime64(text.strip().replace(" ", "T"), "ns")
        return stamp.astype(np.int64) / 1e9


def read_rail_csv(path: str | Path) -> RailTrace:
    """Read a DataRecorder CSV (``#`` metadata lines allowed before the header) into a RailTrace."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise TraceError(f"{path}: cannot read rail trace ({error.strerror}); record one with 'qmlp profile --power'") from None
    metadata: dict[str, str] = {}
    body = []
    for line in lines:
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                metadata[key.strip()] = value.strip()
        elif line.strip():
            body.append(line)
    rows = list(csv.reader(body))
    if not rows or "Mark" not in rows[0]:
        raise TraceError(f"{path}: no header with a 'Mark' column; expected pynq.DataRecorder frame.to_csv() output")
    header = rows[0]
    mark_col = header.index("Mark")
    rails = _rail_columns(header, path)
    times, marks, power = [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise TraceError(f"{path}: data row {number} has {len(row)} fields, header has {len(header)}")
        try:
            times.append(_parse_time(row[0]))
            marks.append(int(float(row[mark_col])))
            power.append([_rail_power(row, cols) for cols in rails.values()])
        except ValueError:
            raise TraceError(f"{path}: data row {number} is not numeric: {','.join(row)[:80]}") from None
    if not times:
        raise TraceError(f"{path}: the trace has no samples")
    t = np.asarray(times, dtype=np.float64)
    if np.any(np.diff(t) < 0):
        raise TraceError(f"{path}: timestamps go backwards; the file is not one recording")
    return RailTrace(rails=tuple(rails), times=t - t[0], marks=np.asarray(marks, dtype=np.int64),
                     power=np.asarray(power, dtype=np.float64).reshape(len(t), len(rails)),
                     metadata=metadata, path=str(path))


def _rail_columns(header: Sequence[str], path: Path) -> dict[str, tuple[int, ...]]:
    """Rail name -> column indices: (power,) or (voltage, current)."""
    rails: dict[str, tuple[int, ...]] = {}
    for index, name in enumerate(header):
        if name.endswith("_power"):
            rails[name[: -len("_power")]] = (index,)
    for index, name in enumerate(header):
        if name.endswith("_voltage"):
            rail = name[: -len("_voltage")]
            current = f"{rail}_current"
            if rail not in rails and current in header:
                rails[rail] = (index, header.index(current))
    if not rails:
        raise TraceError(f"{path}: no '<RAIL>_power' (or _voltage + _current) columns in the header")
    return rails


def _rail_power(row: Sequence[str], cols: tuple[int, ...]) -> float:
    if len(cols) == 1:
        return float(row[cols[0]])
    return float(row[cols[0]]) * float(row[cols[1]])


def write_rail_csv(trace: RailTrace, path: str | Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``trace`` in DataRecorder's CSV layout (times as float seconds), metadata on top."""
    meta = dict(trace.metadata)
    meta.update(metadata or {})
    with Path(path).open("w", newline="") as handle:
        for key, value in meta.items():
            handle.write(f"# {key}: {value}\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["", "Mark", *[f"{rail}_power" for rail in trace.rails]])
        for t, mark, watts in zip(trace.times, trace.marks, trace.power):
            writer.writerow([f"{t:.6f}", int(mark), *[f"{w:.6g}" for w in watts]])


def phase_stats(trace: RailTrace, mark: int, *, settle_s: float = 1.0) -> PhaseStats:
    """Mean and standard error per rail of the samples with ``Mark == mark``.

    Expects: the phase's samples are contiguous (one DataRecorder phase).
    Guarantees: the first ``settle_s`` seconds of the phase are dropped (regulators and the
    workload settle; the sample straddling the mark belongs to neither phase)."""
    where = np.flatnonzero(trace.marks == mark)
    if where.size == 0:
        raise TraceError(f"{trace.path or 'trace'}: no samples with Mark == {mark}; record idle (Mark 0), "
                         "then mark() and run the burst (Mark 1)")
    start = trace.times[where[0]]
    keep = where[trace.times[where] >= start + settle_s]
    if keep.size < 2:
        raise TraceError(f"{trace.path or 'trace'}: phase Mark == {mark} has fewer than 2 samples after "
                         f"{settle_s} s settling; record each phase for >= {MIN_PHASE_SECONDS:g} s")
    watts = trace.power[keep]
    mean = watts.mean(axis=0)
    stderr = watts.std(axis=0, ddof=1) / math.sqrt(keep.size)
    return PhaseStats(mark=mark, seconds=float(trace.times[keep[-1]] - trace.times[keep[0]]),
                      samples=int(keep.size),
                      mean_w={r: float(m) for r, m in zip(trace.rails, mean)},
                      stderr_w={r: float(s) for r, s in zip(trace.rails, stderr)})


def headline_rails(rails: Sequence[str]) -> tuple[str, ...]:
    """The rails whose sum is the headline power: the board input (12V) if recorded, else all."""
    for board_input in ("12V", "VCC12", "12V0"):
        if board_input in rails:
            return (board_input,)
    return tuple(rails)


def energy_per_inference(idle: PhaseStats, active: PhaseStats, *, inferences: int, active_seconds: float,
                         rails: Sequence[str] | None = None) -> EnergyResult:
    """``E_dyn = (P_active - P_idle) * T / N`` and ``E_total = P_active * T / N``.

    Expects: ``inferences`` (N) ran in ``active_seconds`` (T, the burst's wall time, not the
    trace span) while ``active`` was recorded. Guarantees: per-rail numbers for every rail of the
    phases, headline numbers for the sum over ``rails`` (default: ``headline_rails``)."""
    if inferences < 1 or not active_seconds > 0:
        raise TraceError(f"energy needs N >= 1 inferences in T > 0 s, got N={inferences}, T={active_seconds}")
    names = tuple(rails) if rails is not None else headline_rails(tuple(idle.mean_w))
    missing = [r for r in names if r not in idle.mean_w or r not in active.mean_w]
    if missing:
        raise TraceError(f"rails {missing} not in the trace (it has {sorted(idle.mean_w)})")
    per_call = active_seconds / inferences
    per_rail = {
        rail: {"p_idle_w": idle.mean_w[rail], "p_active_w": active.mean_w[rail],
               "e_dyn_j": (active.mean_w[rail] - idle.mean_w[rail]) * per_call,
               "e_total_j": active.mean_w[rail] * per_call}
        for rail in idle.mean_w
    }
    p_idle = sum(idle.mean_w[r] for r in names)
    p_active = sum(active.mean_w[r] for r in names)
    stderr = math.sqrt(sum(idle.stderr_w[r] ** 2 + active.stderr_w[r] ** 2 for r in names))
    return EnergyResult(rails=names, inferences=int(inferences), active_seconds=float(active_seconds),
                        p_idle_w=p_idle, p_active_w=p_active, e_dyn_j=(p_active - p_idle) * per_call,
                        e_total_j=p_active * per_call, e_dyn_stderr_j=stderr * per_call, per_rail=per_rail)
