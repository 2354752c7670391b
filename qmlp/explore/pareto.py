"""Pareto fronts: which designs no other design beats on every objective at once.

Objectives of a design (one trained model at one target): accuracy (higher is better), LUTs,
latency and energy per inference (lower is better). ``a`` dominates ``b`` when it is at least as
good on all of them and strictly better on one; the front is the designs nobody dominates.
Designs that are equal on every objective are all on the front (none strictly beats another).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["OBJECTIVES", "objective_vector", "dominates", "pareto_front", "fronts_by_board", "usable", "select_best"]

# (store column, sense): +1 maximise, -1 minimise
OBJECTIVES: tuple[tuple[str, int], ...] = (("accuracy", +1), ("lut", -1), ("latency_ns", -1), ("energy_j", -1))


def objective_vector(design: Mapping[str, Any], objectives: Sequence[tuple[str, int]] = OBJECTIVES) -> tuple[float, ...]:
    """The design's objectives, all turned into 'larger is better'."""
    return tuple(sense * float(design[name]) for name, sense in objectives)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (larger is better)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def pareto_front(designs: Sequence[Mapping[str, Any]],
                 objectives: Sequence[tuple[str, int]] = OBJECTIVES) -> list[int]:
    """Indices of the non-dominated ``designs``, in input order.

    Sort by the objective vector, best first: a design can only be dominated by one that sorts
    before it, so each candidate is compared with the front found so far, not with every design."""
    vectors = [objective_vector(d, objectives) for d in designs]
    order = sorted(range(len(vectors)), key=lambda i: vectors[i], reverse=True)
    front: list[int] = []
    for i in order:
        if not any(dominates(vectors[j], vectors[i]) for j in front):
            front.append(i)
    return sorted(front)


def fronts_by_board(designs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Board -> the Pareto front of that board's designs (boards in first-seen order)."""
    boards: dict[str, list[Mapping[str, Any]]] = {}
    for design in designs:
        boards.setdefault(design["board"], []).append(design)
    return {board: [group[i] for i in pareto_front(group)] for board, group in boards.items()}


def usable(design: Mapping[str, Any]) -> bool:
    """A design the user can take: compiled and checked without failure, and where Yosys ran, its
    fmax estimate reaches the target clock."""
    if design.get("check_status") != "done" or not design.get("folder"):
        return False
    fmax, clock = design.get("fmax_mhz"), design.get("clock_mhz")
    return fmax is None or clock is None or fmax >= clock


def select_best(front: Sequence[Mapping[str, Any]], *, min_accuracy: float | None, minimize: str) -> Mapping[str, Any] | None:
    """The design to use: with ``min_accuracy``, the one with the lowest ``minimize`` objective
    (lut, latency or energy) among those at least that accurate; without it, the most accurate
    (ties to the lowest objective). None when no design qualifies."""
    column = {"lut": "lut", "latency": "latency_ns", "energy": "energy_j"}[minimize]
    if min_accuracy is not None:
        qualified = [d for d in front if d["accuracy"] >= min_accuracy]
        return min(qualified, key=lambda d: (d[column], -d["accuracy"], d["key"]), default=None)
    return min(front, key=lambda d: (-d["accuracy"], d[column], d["key"]), default=None)
