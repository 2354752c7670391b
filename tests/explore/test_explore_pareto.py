"""Pareto fronts against a brute-force reference (every pair compared), with ties and duplicates,
and the choice of the best design."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qmlp.explore.pareto import OBJECTIVES, fronts_by_board, pareto_front, select_best


def _brute_force(designs):
    """Written from the definition alone: i is on the front unless some j is >= on every
    objective (accuracy up, the rest down) and > on one."""
    front = []
    for i, a in enumerate(designs):
        beaten = False
        for j, b in enumerate(designs):
            if i == j:
                continue
            no_worse = (b["accuracy"] >= a["accuracy"] and b["lut"] <= a["lut"] and b["latency_ns"] <= a["latency_ns"]
                        and b["energy_j"] <= a["energy_j"])
            better = (b["accuracy"] > a["accuracy"] or b["lut"] < a["lut"] or b["latency_ns"] < a["latency_ns"]
                      or b["energy_j"] < a["energy_j"])
            beaten = beaten or (no_worse and better)
        if not beaten:
            front.append(i)
    return front


def _designs(rng, n, levels):
    # few distinct values per objective: many ties and exact duplicates
    return [{"key": f"d{i}", "board": "zcu104", "accuracy": float(rng.integers(levels)) / levels,
             "lut": int(rng.integers(levels)) * 100, "latency_ns": float(rng.integers(levels)),
             "energy_j": float(rng.integers(levels)) * 1e-9} for i in range(n)]


@pytest.mark.parametrize("seed", range(40))
def test_front_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    designs = _designs(rng, int(rng.integers(1, 60)), int(rng.integers(2, 8)))
    assert pareto_front(designs) == _brute_force(designs)


def test_small_cases_by_hand():
    a = {"key": "a", "accuracy": 0.99, "lut": 1000, "latency_ns": 10.0, "energy_j": 1.0}
    b = {**a, "key": "b", "lut": 900}  # a strictly better in LUT only: b dominates a
    c = {**b, "key": "c"}  # equal to b: neither dominates the other
    d = {**a, "key": "d", "accuracy": 0.999, "lut": 5000}  # more accurate, more LUT: a trade-off
    assert pareto_front([a, b, c, d]) == [1, 2, 3]
    assert pareto_front([]) == []
    assert pareto_front([a]) == [0]
    assert [name for name, _ in OBJECTIVES] == ["accuracy", "lut", "latency_ns", "energy_j"]


def test_fronts_by_board_keeps_boards_apart():
    rng = np.random.default_rng(7)
    designs = _designs(rng, 30, 5)
    for i, d in enumerate(designs):
        d["board"] = "pynq-z2" if i % 3 == 0 else "zcu104"
    fronts = fronts_by_board(designs)
    assert list(fronts) == ["pynq-z2", "zcu104"]
    for board, front in fronts.items():
        group = [d for d in designs if d["board"] == board]
        assert [d["key"] for d in front] == [group[i]["key"] for i in _brute_force(group)]


def test_select_best():
    designs = [{"key": k, "accuracy": acc, "lut": lut, "latency_ns": lat, "energy_j": e}
               for k, acc, lut, lat, e in (("x", 0.999, 5000, 30.0, 3.0), ("y", 0.995, 2000, 20.0, 2.0),
                                           ("z", 0.990, 1000, 40.0, 1.0), ("w", 0.999, 4000, 50.0, 4.0))]
    assert select_best(designs, min_accuracy=None, minimize="lut")["key"] == "w"  # most accurate, then LUT
    assert select_best(designs, min_accuracy=None, minimize="latency")["key"] == "x"
    assert select_best(designs, min_accuracy=0.99, minimize="lut")["key"] == "z"
    assert select_best(designs, min_accuracy=0.994, minimize="lut")["key"] == "y"
    assert select_best(designs, min_accuracy=0.994, minimize="energy")["key"] == "y"
    assert select_best(designs, min_accuracy=0.9999, minimize="lut") is None
    assert select_best([], min_accuracy=None, minimize="lut") is None
    # every choice is itself a design nobody dominates when taken from the front
    front = [designs[i] for i in pareto_front(designs)]
    for rule in itertools.product((None, 0.99, 0.995), ("lut", "latency", "energy")):
        assert select_best(front, min_accuracy=rule[0], minimize=rule[1]) in front


def test_usable_needs_a_clean_check_and_the_clock():
    from qmlp.explore.pareto import usable

    ok = {"check_status": "done", "folder": "designs/x", "fmax_mhz": 250.0, "clock_mhz": 200.0}
    assert usable(ok) and usable({**ok, "fmax_mhz": None})
    assert not usable({**ok, "fmax_mhz": 150.0})
    assert not usable({**ok, "check_status": "failed"}) and not usable({**ok, "check_status": None})
    assert not usable({**ok, "folder": None})
