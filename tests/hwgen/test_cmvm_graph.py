"""cmvm graph building against brute force: every output is the dot product, every node's range
is exact (attained, and held by its width), on random matrices of every weight type, odd sizes,
zero rows and columns, and every input kind."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qmlp.hwgen.cmvm import build_graph, csd_digits, evaluate
from qmlp.hwgen.cmvm.cost import adder_lut, graph_cost
from qmlp.hwgen.cmvm.graph import AdderGraph, Node, Operand
from qmlp.hwgen.cmvm.cse import unshared_depth
from qmlp.hwgen.cmvm.schedule import deepest, schedule
from qmlp.hwgen.cmvm.digits import digit_counts
from qmlp.hwgen.cmvm.graph import coefficients, range_width, signed_width
from qmlp.hwgen.cmvm.rows import row_tree

# (weights low, high) per weight type; (input low, high) per input type
WEIGHTS = {"ternary": (-1, 1), "bipolar": None, "int2": (-2, 1), "int3": (-4, 3), "int4": (-8, 7)}
INPUTS = {"uint2": (0, 3), "int4": (-8, 7), "bipolar": (-1, 1), "int8": (-128, 127), "uint1": (0, 1)}


def random_matrix(rng, kind: str, shape: tuple[int, int]) -> np.ndarray:
    if WEIGHTS[kind] is None:
        return rng.choice([-1, 1], size=shape)
    lo, hi = WEIGHTS[kind]
    w = rng.integers(lo, hi + 1, size=shape)
    w[rng.random(shape) < 0.2] = 0
    return w


def check_graph(w: np.ndarray, lo: int, hi: int, rng, **options) -> None:
    n = w.shape[1]
    g = build_graph(w, [lo] * n, [hi] * n, **options)
    # random inputs plus the corners of the input box
    x = rng.integers(lo, hi + 1, size=(200, n))
    if lo == -1 and hi == 1:  # BIPOLAR values: never 0 in practice, but the box includes it
        x = np.where(x == 0, 1, x)
    x = np.vstack([x, np.full((1, n), lo), np.full((1, n), hi)])
    values, out = evaluate(g, x)
    assert np.array_equal(out, x @ w.T)
    lows = np.array([node.lo for node in g.nodes])
    highs = np.array([node.hi for node in g.nodes])
    assert np.all(values >= lows) and np.all(values <= highs)
    # the exact extremes are attained: the input picking lo/hi by each coefficient's sign
    coef = coefficients(g)
    x_max = np.where(coef > 0, hi, lo)
    x_min = np.where(coef > 0, lo, hi)
    reach_max = evaluate(g, x_max)[0][np.arange(len(g.nodes)), np.arange(len(g.nodes))]
    reach_min = evaluate(g, x_min)[0][np.arange(len(g.nodes)), np.arange(len(g.nodes))]
    assert np.array_equal(reach_max, highs) and np.array_equal(reach_min, lows)
    for node in g.nodes:  # each width holds its range and is the minimum that does
        w_ = node.width
        if node.signed:
            assert -(1 << (w_ - 1)) <= node.lo and node.hi < (1 << (w_ - 1))
        else:
            assert node.hi < (1 << w_) and (w_ == 1 or node.hi >= (1 << (w_ - 1)))
    for c, op in enumerate(g.outputs):
        assert (op is None) == (not np.any(w[c]))


@pytest.mark.parametrize("wkind", sorted(WEIGHTS))
@pytest.mark.parametrize("ikind", sorted(INPUTS))
def test_outputs_and_exact_ranges(wkind, ikind):
    rng = np.random.default_rng(hash((wkind, ikind)) % 2**32)
    shape = tuple(int(v) for v in rng.integers(1, 23, size=2))
    w = random_matrix(rng, wkind, shape)
    lo, hi = INPUTS[ikind]
    check_graph(w, lo, hi, rng)


@pytest.mark.parametrize("height", [0, 1, 3])
def test_zero_rows_columns_and_row_differences(height):
    rng = np.random.default_rng(height)
    w = random_matrix(rng, "int3", (17, 13))
    w[[0, 5, 16]] = 0
    w[:, [2, 12]] = 0
    w[7] = w[8]  # identical rows: the difference is empty
    w[9] = -w[10]
    check_graph(w, -8, 7, rng, row_height=height)
    check_graph(w, 0, 3, rng, row_height=height, cse=False)


def test_sharing_reduces_adders_and_tiny_graphs_are_optimal():
    rng = np.random.default_rng(3)
    w = random_matrix(rng, "ternary", (32, 48))
    shared = build_graph(w, [0] * 48, [3] * 48)
    plain = build_graph(w, [0] * 48, [3] * 48, cse=False)
    assert len(plain.adders) == np.count_nonzero(w) - np.count_nonzero(np.any(w, axis=1))
    assert len(shared.adders) < 0.75 * len(plain.adders)
    # x0 + x1 used by three rows: one shared adder, then one add per row that needs more
    g = build_graph(np.array([[1, 1, 0], [1, 1, 1], [1, 1, -1], [0, 0, 1]]), [0] * 3, [3] * 3)
    assert len(g.adders) == 3
    assert g.depth == 2


def test_brute_force_ranges_on_a_tiny_box():
    """Enumerate every input of a 3-input box: node min/max equal the recorded lo/hi."""
    w = np.array([[3, -2, 1], [-3, 1, 0], [2, 2, -1], [0, 0, 0]])
    g = build_graph(w, [-2, 0, -1], [1, 3, 2])
    box = np.array(list(itertools.product(range(-2, 2), range(0, 4), range(-1, 3))))
    values, out = evaluate(g, box)
    assert np.array_equal(out, box @ w.T)
    assert [(n.lo, n.hi) for n in g.nodes] == list(zip(values.min(axis=0).tolist(), values.max(axis=0).tolist()))


def test_csd_digits_and_widths():
    for v in range(-300, 301):
        digits = csd_digits(v)
        assert sum(s << e for e, s in digits) == v
        shifts = [e for e, _ in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))  # canonical: no adjacent digits
    assert csd_digits(7) == [(0, -1), (3, 1)]
    assert digit_counts(np.array([[0, 1, -2, 3, 7, -8]])).tolist() == [[0, 1, 1, 2, 2, 1]]
    assert [signed_width(*r) for r in [(0, 0), (-1, 0), (-4, 3), (-5, 3), (0, 4)]] == [1, 1, 3, 4, 4]
    assert [range_width(*r) for r in [(0, 0), (0, 1), (0, 6), (0, 8), (-1, 6)]] == [1, 1, 3, 4, 4]


def test_row_tree_respects_height_and_order():
    rng = np.random.default_rng(5)
    base = random_matrix(rng, "ternary", (1, 40))
    w = np.repeat(base, 12, axis=0)
    flips = rng.random(w.shape) < 0.1
    w[flips] = -w[flips]
    for height in (0, 1, 2, 4):
        parent, order = row_tree(w, height)
        assert sorted(order) == list(range(12))
        seen = set()
        for j in order:
            assert parent[j] == -1 or parent[j] in seen
            seen.add(j)
        depth = {}
        for j in order:
            depth[j] = 0 if parent[j] < 0 else depth[parent[j]] + 1
        assert max(depth.values()) <= height
    assert row_tree(w, 0)[0] == [-1] * 12
    assert sum(p >= 0 for p in row_tree(w, 2)[0]) >= 9  # near-copies start from a sibling


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="integer matrix"):
        build_graph(np.ones((2, 2)), [0, 0], [1, 1])
    with pytest.raises(ValueError, match="lo <= hi"):
        build_graph(np.ones((2, 2), dtype=np.int64), [0, 2], [1, 1])


def test_adder_lut_matches_single_adders_measured_with_yosys():
    """cost.adder_lut against single adders synthesized with Yosys 0.70 synth_xilinx -family xcup
    (registered output): a LUT only where both operands are non-constant."""
    u6, s6 = (0, 63, 0), (-32, 31, 0)
    assert adder_lut(u6, u6, False) == 6
    assert adder_lut(s6, s6, True) == 7
    assert adder_lut(u6, (0, 63, 2), False) == 4
    assert adder_lut((0, 255, 0), (0, 3, 0), False) == 2
    assert adder_lut((0, 255, 0), (0, 3, 0), True) == 3
    assert adder_lut((-128, 127, 0), (0, 3, 0), False) == 2
    assert adder_lut((0, 255, 0), (-4, 3, 0), False) == 8
    assert adder_lut(u6, u6, True) == 7
    s8 = (-128, 127, 0)
    assert adder_lut(s8, s8, False) == 8
    assert adder_lut(s8, s8, True) == 9
    assert adder_lut(s8, (-128, 127, 1), False) == 8
    assert adder_lut((-2048, 2047, 0), s8, False) == 12


@pytest.mark.parametrize("wkind", ["ternary", "int2", "int4"])
def test_unsigned_inputs_keep_every_inner_adder_plain_binary(wkind):
    """With never-negative inputs and no row differences, the only two's-complement adders are
    the rows' final subtractions: shared patterns are sums, and each row adds its positive and
    its negative terms apart (sharing leaves each half room for that when a depth one level
    above the minimum is given)."""
    rng = np.random.default_rng(11)
    w = random_matrix(rng, wkind, (24, 40))
    g = build_graph(w, [0] * 40, [3] * 40, depth=unshared_depth(w) + 1)
    check_graph(w, 0, 3, rng, depth=unshared_depth(w) + 1)
    finals = {o.node for o in g.outputs if o is not None}
    signed = [i for i, n in enumerate(g.nodes) if n.signed]
    assert signed and set(signed) <= finals
    assert all(not n.signed for n in g.adders if n.tag == "cse")


@pytest.mark.parametrize("wkind,ikind", [("ternary", "uint2"), ("int2", "uint2"), ("int3", "int8"),
                                         ("int4", "bipolar")])
@pytest.mark.parametrize("extra", [0, 1, 3])
def test_a_depth_bounds_the_shared_graph(wkind, ikind, extra):
    """``depth`` bounds the graph (the unshared minimum when that is deeper), and the bounded
    graph is still exact; a deeper bound never costs more than the unshared rows."""
    rng = np.random.default_rng(hash((wkind, ikind, extra)) % 2**32)
    w = random_matrix(rng, wkind, (30, 45))
    lo, hi = INPUTS[ikind]
    least = unshared_depth(w)
    for height in (0, 2):
        check_graph(w, lo, hi, rng, depth=least + extra, row_height=height)
    g = build_graph(w, [lo] * 45, [hi] * 45, depth=least + extra)
    assert g.depth <= least + extra
    plain = build_graph(w, [lo] * 45, [hi] * 45, cse=False)
    assert graph_cost(g, None).lut < graph_cost(plain, None).lut


def test_deepest_keeps_the_stage_count():
    """``deepest`` is the last depth before ``schedule`` needs another stage."""
    for activation in (True, False):
        for depth in range(0, 20):
            d = deepest(depth, 200.0, activation=activation)
            stages = [schedule(_chain(n), 200.0, activation=activation).stages for n in (depth, d, d + 1)]
            assert d >= depth and stages[0] == stages[1] < stages[2]


def _chain(depth: int) -> AdderGraph:
    """A graph of ``depth`` adders in a chain (only its depth matters to ``schedule``)."""
    nodes = [Node(None, None, 0, 1, 0)] + [Node(Operand(i), Operand(0), 0, 1, i + 1) for i in range(depth)]
    return AdderGraph(1, tuple(nodes), (Operand(depth),))


def test_depth_is_the_minimum_for_the_rows():
    """Without sharing, every row's tree is as shallow as its term count allows, so the graph's
    depth is the deepest row's ceil(log2(terms))."""
    rng = np.random.default_rng(12)
    for kind, lo, hi in (("int3", 0, 3), ("ternary", -8, 7), ("int4", 0, 1)):
        w = random_matrix(rng, kind, (19, 37))
        g = build_graph(w, [lo] * 37, [hi] * 37, cse=False)
        terms = digit_counts(w).sum(axis=1)
        assert g.depth == max(int(t - 1).bit_length() for t in terms) == unshared_depth(w)
        for height in (1, 3):  # with row differences, counted without building the graph
            assert unshared_depth(w, height) == build_graph(w, [lo] * 37, [hi] * 37, cse=False,
                                                            row_height=height).depth


def test_rendered_module_keeps_every_adder_and_lints_clean(tmp_path):
    """Every adder wire is (* keep *) (one carry chain per adder, as cost.adder_lut counts) and
    the module stays lint-clean (its values are the graph's, checked above, and in RTL
    simulation where layers are emitted)."""
    import subprocess

    from qmlp.hwgen.cmvm import render_graph_module
    from qmlp.hwgen.cmvm.schedule import Schedule
    from qmlp.sim.rtl import _environment, verilator_command

    rng = np.random.default_rng(13)
    w = random_matrix(rng, "int2", (9, 14))
    g = build_graph(w, [0] * 14, [3] * 14)
    text = render_graph_module("g", g, Schedule(k=2, stages=3), in_bits=2, in_kind=0, acc_bits=8)
    assert text.count("(* keep *) wire") == len(g.adders)
    (tmp_path / "g.v").write_text(text)
    done = subprocess.run(verilator_command("--lint-only", "-Wall", "--top-module", "g", "g.v"), cwd=tmp_path,
                          env=_environment(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_seeds_reorder_ties_reproducibly():
    """A seed changes the order of equally valuable patterns (so the graph), the same seed
    gives the same graph, and every order is exact."""
    rng = np.random.default_rng(21)
    w = random_matrix(rng, "ternary", (40, 60))
    graphs = [build_graph(w, [0] * 60, [3] * 60, depth=9, seed=s) for s in range(4)]
    assert build_graph(w, [0] * 60, [3] * 60, depth=9, seed=2) == graphs[2]
    assert len({g.nodes for g in graphs}) > 1
    check_graph(w, 0, 3, rng, depth=9, seed=3)
