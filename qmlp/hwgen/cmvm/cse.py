"""Build a shared adder graph for ``y = W @ x`` with constant integer ``W``.

1. Every weight becomes its canonical signed digits (CSD): ``W[c,k] = sum_d s_d 2^e_d``, so row
   ``c`` is a set of terms ``s * (x[k] << e)`` (a ternary weight is one term of shift 0).
2. Greedy pairwise common-subexpression elimination across all rows: the most frequent pair
   pattern ``x[i] + s * (x[j] << d)`` (normalised so the base term has the smaller shift) becomes
   a new signal, and every row holding the pair uses it instead. Ties go to the narrower new
   signal (interval width estimate), then the shallower one. Repeat until no pattern occurs
   twice. Pair counts are kept incrementally: removing or adding a term touches only its row.
3. Each row's remaining terms are summed by a depth-balanced tree: always add the two shallowest
   terms (optimal depth given the terms' levels, like Huffman coding on the maximum).

Exact ranges (and so widths) are computed once on the finished graph (``graph.py``).
The method follows the H-CMVM / da4ml literature's idea (frequent two-term patterns, signed
digits); the code is qmlp's own.
"""

from __future__ import annotations

import heapq
from typing import Sequence

import numpy as np

from .digits import csd_digits
from .graph import AdderGraph, Node, Operand, coefficients, exact_ranges, range_width
from .rows import row_tree

__all__ = ["build_graph"]

SUM_ORDER = "level"
PRIORITY = lambda n, w, l, d: (-n, w, l)
Term = tuple[int, int]  # (signal, shift); the sign is the value in the row's dict
Pattern = tuple[int, int, int, int]  # (base signal, other signal, shift difference >= 0, relative sign)


def _pattern(u: Term, gu: int, v: Term, gv: int) -> tuple[Pattern, Term, int]:
    """Pattern of the pair (u, v), the base term and its sign."""
    if (u[1], u[0]) > (v[1], v[0]):
        u, gu, v, gv = v, gv, u, gu
    return (u[0], v[0], v[1] - u[1], gu * gv), u, gu


class _Builder:
    def __init__(self, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray, parent: list[int]) -> None:
        self.n_inputs = weights.shape[1]
        # Per signal: operands (None for inputs), level, interval bounds (a width estimate for ties).
        self.ops: list[tuple[Operand, Operand] | None] = [None] * self.n_inputs
        self.level = [0] * self.n_inputs
        self.bounds = [(int(a), int(b)) for a, b in zip(lo, hi)]
        self.tags = ["input"] * self.n_inputs
        self.parent = parent
        self.rows: list[dict[Term, int]] = []
        for j, row in enumerate(weights):
            if parent[j] >= 0:
                row = row - weights[parent[j]]
            terms: dict[Term, int] = {}
            for k, w in enumerate(row.tolist()):
                for shift, sign in csd_digits(int(w)):
                    terms[(k, shift)] = sign
            self.rows.append(terms)
        self.rows_of: dict[int, set[int]] = {}
        for r, terms in enumerate(self.rows):
            for sig, _ in terms:
                self.rows_of.setdefault(sig, set()).add(r)

    def new_signal(self, a: Operand, b: Operand, tag: str) -> int:
        def bound(op: Operand) -> tuple[int, int]:
            lo, hi = self.bounds[op.node]
            lo, hi = lo << op.shift, hi << op.shift
            return (-hi, -lo) if op.neg else (lo, hi)
        (alo, ahi), (blo, bhi) = bound(a), bound(b)
        self.ops.append((a, b))
        self.level.append(1 + max(self.level[a.node], self.level[b.node]))
        self.bounds.append((alo + blo, ahi + bhi))
        self.tags.append(tag)
        return len(self.ops) - 1

    def priority(self, n: int, p: Pattern) -> tuple[int, ...]:
        """Heap key of pattern ``p`` occurring ``n`` times (smallest first)."""
        a, b, d, s = p
        (alo, ahi), (blo, bhi) = self.bounds[a], self.bounds[b]
        blo, bhi = (blo << d, bhi << d) if s > 0 else (-(bhi << d), -(blo << d))
        width, level = range_width(alo + blo, ahi + bhi), 1 + max(self.level[a], self.level[b])
        return PRIORITY(n, width, level, d)

    def eliminate(self) -> None:
        count: dict[Pattern, int] = {}
        for terms in self.rows:
            items = list(terms.items())
            for i, (u, gu) in enumerate(items):
                for v, gv in items[i + 1:]:
                    p = _pattern(u, gu, v, gv)[0]
                    count[p] = count.get(p, 0) + 1
        heap = [(*self.priority(n, p), n, p) for p, n in count.items() if n >= 2]
        heapq.heapify(heap)
        while heap:
            *_, popped, p = heapq.heappop(heap)
            n = count.get(p, 0)
            if n != popped:
                if n >= 2:
                    heapq.heappush(heap, (*self.priority(n, p), n, p))
                continue
            touched = self.substitute(p, count)
            for q in touched:
                if count.get(q, 0) >= 2:
                    heapq.heappush(heap, (*self.priority(count[q], q), count[q], q))

    def substitute(self, p: Pattern, count: dict[Pattern, int]) -> set[Pattern]:
        """Replace every non-overlapping occurrence of ``p`` by one new signal; return the
        patterns whose count grew."""
        a, b, d, s = p
        t = self.new_signal(Operand(a), Operand(b, d, s < 0), "cse")
        touched: set[Pattern] = set()
        for r in sorted(self.rows_of.get(a, set()) & self.rows_of.get(b, set())):
            terms = self.rows[r]
            for shift in sorted(e for sig, e in terms if sig == a):
                u, v = (a, shift), (b, shift + d)
                if u == v or u not in terms or v not in terms or terms[v] != s * terms[u]:
                    continue
                sign = terms[u]
                self.remove(r, u, count)
                self.remove(r, v, count)
                for w, gw in terms.items():
                    q = _pattern((t, shift), sign, w, gw)[0]
                    count[q] = count.get(q, 0) + 1
                    touched.add(q)
                terms[(t, shift)] = sign
                self.rows_of.setdefault(t, set()).add(r)
        return touched

    def remove(self, r: int, u: Term, count: dict[Pattern, int]) -> None:
        terms = self.rows[r]
        gu = terms.pop(u)
        for v, gv in terms.items():
            q = _pattern(u, gu, v, gv)[0]
            count[q] -= 1
        if not any(sig == u[0] for sig, _ in terms):
            self.rows_of[u[0]].discard(r)

    def sum_key(self, sig: int, shift: int) -> tuple[int, int]:
        """Order in which a row's terms are added: shallowest first, then smallest magnitude."""
        lo, hi = self.bounds[sig]
        return (self.level[sig], (max(hi, -lo) << shift)) if SUM_ORDER == "level" else ((max(hi, -lo) << shift), self.level[sig])

    def reduce_rows(self, order: list[int]) -> list[Operand | None]:
        """Sum each row's remaining terms (and its parent row's output) with a depth-balanced
        tree, rows in ``order`` (parents first)."""
        outputs: list[Operand | None] = [None] * len(self.rows)
        for j in order:
            terms = dict(self.rows[j])
            up = outputs[self.parent[j]] if self.parent[j] >= 0 else None
            if up is not None:
                key = (up.node, up.shift)
                assert key not in terms, "a parent's output is a fresh signal"
                terms[key] = -1 if up.neg else 1
            heap = [(self.sum_key(sig, shift), sig, shift, sign) for (sig, shift), sign in terms.items()]
            heapq.heapify(heap)
            while len(heap) > 1:
                _, s1, e1, g1 = heapq.heappop(heap)
                _, s2, e2, g2 = heapq.heappop(heap)
                if g1 < 0 < g2:  # the positive term is the minuend
                    s1, e1, g1, s2, e2, g2 = s2, e2, g2, s1, e1, g1
                m = min(e1, e2)
                t = self.new_signal(Operand(s1, e1 - m), Operand(s2, e2 - m, g1 != g2), "sum")
                heapq.heappush(heap, (self.sum_key(t, m), t, m, g1))
            if heap:
                _, sig, shift, sign = heap[0]
                outputs[j] = Operand(sig, shift, sign < 0)
        return outputs


def build_graph(weights: np.ndarray, lo: Sequence[int], hi: Sequence[int], *, cse: bool = True,
                row_height: int = 0) -> AdderGraph:
    """Adder graph computing ``weights @ x`` for integer ``x[k]`` in ``[lo[k], hi[k]]``.

    Expects an integer matrix (outputs, inputs) and per-input bounds. Guarantees: every output
    equals its row's dot product for every input in the box; every node's ``lo``/``hi`` is the
    exact range of its value; ``cse=False`` gives the unshared baseline (one tree per row);
    ``row_height`` > 0 computes rows from earlier rows' outputs (``rows.row_tree``)."""
    w = np.asarray(weights)
    if w.ndim != 2 or not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"weights must be a 2-D integer matrix, got {w.dtype} {w.shape}")
    lo_a, hi_a = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    if lo_a.shape != (w.shape[1],) or hi_a.shape != lo_a.shape or np.any(lo_a > hi_a):
        raise ValueError(f"need lo <= hi for each of the {w.shape[1]} inputs")
    parent, order = row_tree(w, row_height)
    builder = _Builder(w.astype(np.int64), lo_a, hi_a, parent)
    if cse:
        builder.eliminate()
    outputs = builder.reduce_rows(order)
    skeleton = AdderGraph(builder.n_inputs, tuple(
        Node(*(ops or (None, None)), lo=0, hi=0, level=lvl, tag=tag)
        for ops, lvl, tag in zip(builder.ops, builder.level, builder.tags)), tuple(outputs))
    coef = coefficients(skeleton)
    nodes = []
    for start in range(0, len(coef), 4096):  # bounded memory on large layers
        lows, highs = exact_ranges(coef[start:start + 4096], lo_a, hi_a)
        nodes += [Node(n.a, n.b, int(l), int(h), n.level, n.tag)
                  for n, l, h in zip(skeleton.nodes[start:start + 4096], lows.tolist(), highs.tolist())]
    return AdderGraph(skeleton.n_inputs, tuple(nodes), skeleton.outputs)
