"""Build a shared adder graph for ``y = W @ x`` with constant integer ``W``.

1. Every weight becomes its canonical signed digits (CSD): ``W[c,k] = sum_d s_d 2^e_d``, so row
   ``c`` is a set of terms ``s * (x[k] << e)`` (a ternary weight is one term of shift 0).
2. Greedy pairwise common-subexpression elimination across all rows: a pair pattern
   ``x[i] + s * (x[j] << d)`` (normalised so the base term has the smaller shift) becomes a new
   signal, and every row holding the pair uses it instead. The pattern taken next is the one
   that saves the most LUTs by a bit count (``_Builder.gain``: a row pays about the bits of
   its terms, so each occurrence saves the bits the pair loses by merging, less the shared
   adder's LUTs), then the most frequent, the narrower, the shallower; on the seed layers at
   the same depth bound this saves 0.1-3.7 % of the LUTs (most on the 128x256 layers) over the
   most frequent pattern first. A ``seed`` reorders equally valuable patterns (for a
   best-of-k). Repeat until no pattern occurs twice. Pair counts are kept incrementally:
   removing or adding a term touches only its row. Differences of two never-negative signals are not shared (``_Builder.allowed``).
   With a ``depth``, sharing keeps every row within its depth budget (a Kraft sum per row, per
   sign where the row will be summed in halves), so the graph is no deeper than asked.
3. Each row's remaining terms are summed within a depth budget (the graph's minimum depth, or
   ``depth`` if deeper): never-negative and never-positive terms apart when the budget allows
   (plain-binary adders), then one subtraction; inside a sum, the narrowest term first with the
   partner that makes the cheapest adder (``cost.adder_lut``, calibrated on Yosys), as long as
   the tree still fits the budget (a Kraft-sum test on the terms' levels).

Exact ranges (and so widths) are computed once on the finished graph (``graph.py``).
The method follows the H-CMVM / da4ml literature's idea (frequent two-term patterns, signed
digits); the code is qmlp's own.
"""

from __future__ import annotations

import heapq
from typing import Sequence

import numpy as np

from .cost import adder_lut
from .digits import csd_digits
from .graph import AdderGraph, Node, Operand, coefficients, exact_ranges, range_width
from .rows import row_tree

__all__ = ["build_graph", "unshared_depth"]

Term = tuple[int, int]  # (signal, shift); the sign is the value in the row's dict
SignedTerm = tuple[int, int, int]  # (signal, shift, sign) while a row is summed
Pattern = tuple[int, int, int, int]  # (base signal, other signal, shift difference >= 0, relative sign)


def _patterns_with(u: Term, gu: int, others) -> list[Pattern]:
    """The pattern of ``u`` (sign ``gu``) with each (v, gv) of ``others``: the base term is the
    one of smaller (shift, signal), the shift difference >= 0, the sign relative."""
    a, e = u
    out = []
    for (b, f), gv in others:
        out.append((a, b, f - e, gu * gv) if e < f or (e == f and a <= b) else (b, a, e - f, gu * gv))
    return out


def _shuffle(seed: int, p: Pattern) -> int:
    """0 for seed 0, else a pseudo-random 16-bit number fixed by (seed, p) in every run."""
    if not seed:
        return 0
    h = seed
    for v in p:
        h = ((h * 1_000_003) ^ (v & 0xFFFFFFFF)) & 0xFFFFFFFFFFFF
    return (h >> 16) & 0xFFFF


def _magnitude(lo: int, hi: int) -> int:
    """Bits of the largest magnitude in [lo, hi] (a row sums its terms' magnitudes)."""
    return max(1, max(-lo, hi).bit_length())


class _Builder:
    def __init__(self, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray, parent: list[int], seed: int) -> None:
        self.seed = seed
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
        self.rows_of: dict[int, set[int]] = {}  # signal -> rows holding it
        self.shifts: list[dict[int, set[int]]] = [{} for _ in self.rows]  # per row: signal -> its shifts
        for r, terms in enumerate(self.rows):
            for sig, e in terms:
                self.rows_of.setdefault(sig, set()).add(r)
                self.shifts[r].setdefault(sig, set()).add(e)
        self.gains: dict[tuple, tuple[int, int, int, int]] = {}

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

    def gain(self, p: Pattern) -> tuple[int, int, int, int]:
        """(bits one occurrence saves, LUTs of the shared adder, its width, its level) of
        pattern ``p``, cached: the operands' ranges never change.

        A row sums its terms in plain-binary halves, where an adder costs about its narrower
        operand's bits (``cost.adder_lut``), so a row pays about the bits of its terms: sharing
        ``a + (b << d)`` replaces terms of ``|a|`` and ``|b|`` bits (``b``'s shifted-in zeros
        are free) by one of ``|a + (b << d)|`` bits."""
        a, b, d, s = p
        key = (self.bounds[a], self.bounds[b], d, s, max(self.level[a], self.level[b]))  # many patterns share one
        got = self.gains.get(key)
        if got is None:
            (alo, ahi), (blo, bhi) = key[0], key[1]
            slo, shi = (blo << d, bhi << d) if s > 0 else (-(bhi << d), -(blo << d))
            lo, hi = alo + slo, ahi + shi
            saved = _magnitude(alo, ahi) + _magnitude(blo, bhi) + d - _magnitude(lo, hi)
            got = (saved, adder_lut((alo, ahi, 0), (blo, bhi, d), s < 0), range_width(lo, hi), 1 + key[4])
            self.gains[key] = got
        return got

    def priority(self, n: int, p: Pattern) -> tuple[int, ...]:
        """Heap key of pattern ``p`` occurring ``n`` times (smallest first): the most bits saved
        over all rows less the shared adder's LUTs, then the most occurrences, then (``seed`` >
        0) a pseudo-random order fixed by the seed, the narrowest, the shallowest."""
        saved, lut, width, level = self.gain(p)
        return lut - n * saved, -n, _shuffle(self.seed, p), width, level

    def eliminate(self, caps: list[dict[int, int]] | None) -> None:
        """Share patterns, most valuable first (``priority``), until none occurs twice. With
        ``caps`` (per row: Kraft room per side, ``side``), a row's Kraft sums stay within them:
        an occurrence that would make the row deeper than its budget is left alone (``fits``),
        so sharing never deepens the graph."""
        self.caps = caps
        self.row_kraft: list[dict[int, int]] = [{} for _ in self.rows]
        for r, terms in enumerate(self.rows):
            for (sig, _), g in terms.items():
                side = self.side(r, g)
                self.row_kraft[r][side] = self.row_kraft[r].get(side, 0) + (1 << self.level[sig])
        count: dict[Pattern, int] = {}
        for terms in self.rows:
            items = list(terms.items())
            for i, (u, gu) in enumerate(items):
                for p in _patterns_with(u, gu, items[i + 1:]):
                    count[p] = count.get(p, 0) + 1
        heap = [(*self.priority(n, p), n, p) for p, n in count.items() if n >= 2 and self.allowed(p)]
        heapq.heapify(heap)
        while heap:
            *_, popped, p = heapq.heappop(heap)
            n = self.usable(p, count.get(p, 0))
            if n != popped:
                if n >= 2:
                    heapq.heappush(heap, (*self.priority(n, p), n, p))
                continue
            touched = self.substitute(p, count)
            for q in touched:
                if count.get(q, 0) >= 2 and self.allowed(q):
                    heapq.heappush(heap, (*self.priority(count[q], q), count[q], q))

    def occurrences(self, r: int, p: Pattern) -> list[int]:
        """Shifts of the base term of every occurrence of ``p`` in row ``r`` (ascending)."""
        a, b, d, s = p
        terms = self.rows[r]
        return [e for e in sorted(self.shifts[r].get(a, ())) if (b, e + d) in terms and (a, e) != (b, e + d)
                and terms[(b, e + d)] == s * terms[(a, e)]]

    def growth(self, p: Pattern) -> int:
        """How much one occurrence of ``p`` adds to its row's Kraft sum (>= 0)."""
        a, b = p[0], p[1]
        la, lb = self.level[a], self.level[b]
        return (1 << (1 + max(la, lb))) - (1 << la) - (1 << lb)

    def side(self, r: int, sign: int) -> int:
        """Which Kraft sum of row ``r`` a term of ``sign`` counts in: its sign where the row's
        positive and negative terms are capped apart (to be summed apart), else 0."""
        return sign if self.caps is not None and 0 not in self.caps[r] else 0

    def room(self, r: int, sign: int) -> int:
        side = self.side(r, sign)
        return self.caps[r][side] - self.row_kraft[r].get(side, 0)

    def usable(self, p: Pattern, n: int) -> int:
        """Occurrences of ``p`` that ``substitute`` would replace: ``n`` (the count) without caps,
        else those that keep their rows within their caps (overlaps counted; an upper bound)."""
        grow, total = self.growth(p), 0
        if self.caps is None or n < 2 or not grow:  # no bound, or the row's Kraft sum stays
            return n
        for r in self.rows_of.get(p[0], set()) & self.rows_of.get(p[1], set()):
            found = self.occurrences(r, p)
            for g in (1, -1):
                k = sum(1 for e in found if self.rows[r][(p[0], e)] == g)
                total += min(k, self.room(r, g) // grow) if k else 0
        return total

    def allowed(self, p: Pattern) -> bool:
        """Whether pattern ``p`` may become a shared signal: not the difference of two
        never-negative signals, which would be two's complement and make every adder it meets
        pay for its sign extension (``cost.adder_lut``); measured on the seed's fc2/fc3, sharing
        only sums there saves 6-8 % LUTs although it shares fewer pairs."""
        a, b, _, s = p
        return s > 0 or self.bounds[a][0] < 0 or self.bounds[b][0] < 0

    def substitute(self, p: Pattern, count: dict[Pattern, int]) -> set[Pattern]:
        """Replace every non-overlapping occurrence of ``p`` that fits its row's cap by one new
        signal; return the patterns whose count grew."""
        a, b, d, s = p
        grow = self.growth(p)
        t = self.new_signal(Operand(a), Operand(b, d, s < 0), "cse")
        touched: set[Pattern] = set()
        for r in sorted(self.rows_of.get(a, set()) & self.rows_of.get(b, set())):
            terms = self.rows[r]
            for shift in self.occurrences(r, p):
                u, v = (a, shift), (b, shift + d)
                if u not in terms or v not in terms:
                    continue  # overlapping occurrences: the earlier one took a term
                sign = terms[u]
                if self.caps is not None and self.room(r, sign) < grow:
                    continue
                self.remove(r, u, count)
                self.remove(r, v, count)
                for q in _patterns_with((t, shift), sign, terms.items()):
                    count[q] = count.get(q, 0) + 1
                    touched.add(q)
                terms[(t, shift)] = sign
                if self.caps is not None:
                    side = self.side(r, sign)
                    self.row_kraft[r][side] = self.row_kraft[r].get(side, 0) + grow
                self.rows_of.setdefault(t, set()).add(r)
                self.shifts[r].setdefault(t, set()).add(shift)
        return touched

    def remove(self, r: int, u: Term, count: dict[Pattern, int]) -> None:
        terms = self.rows[r]
        gu = terms.pop(u)
        for q in _patterns_with(u, gu, terms.items()):
            count[q] -= 1
        mine = self.shifts[r][u[0]]
        mine.discard(u[1])
        if not mine:
            del self.shifts[r][u[0]]
            self.rows_of[u[0]].discard(r)

    def term_bounds(self, sig: int, shift: int, sign: int) -> tuple[int, int]:
        lo, hi = self.bounds[sig]
        lo, hi = lo << shift, hi << shift
        return (lo, hi) if sign > 0 else (-hi, -lo)

    def kraft(self, terms: Sequence[SignedTerm]) -> int:
        """``sum 2^level`` of the terms: they fit a sum tree of depth ``D`` iff it is ``<= 2^D``."""
        return sum(1 << self.level[t[0]] for t in terms)

    @staticmethod
    def least_depth(kraft: int) -> int:
        """The smallest depth whose tree holds terms of Kraft sum ``kraft``."""
        return max(0, (kraft - 1).bit_length())

    def row_depths(self, order: list[int], floor: int = 0) -> list[int]:
        """Depth budget per row: the graph's minimum depth (every row as shallow as it can be)
        or ``floor`` if deeper, lowered where a child row (built on this row's output) would not fit.

        A row whose terms sit at levels ``l_i`` fits a sum tree of depth ``D`` iff
        ``sum 2^l_i <= 2^D`` (Kraft), so depths follow from level sums alone."""
        kraft = [self.kraft(list(terms)) for terms in self.rows]
        least = [0] * len(self.rows)
        for j in order:  # parents first: a parent's output joins its children's terms
            least[j] = self.least_depth(kraft[j] + ((1 << least[self.parent[j]]) if self.parent[j] >= 0 else 0))
        budget = [max(floor, *least)] * len(self.rows) if least else []
        for j in reversed(order):  # children first: leave room for the parent's output
            p = self.parent[j]
            if p >= 0:
                room = (1 << budget[j]) - kraft[j]  # what the parent's output may take
                budget[p] = min(budget[p], max(least[p], room.bit_length() - 1))
        return [max(b, l) for b, l in zip(budget, least)]

    def caps_for(self, order: list[int], depth: int) -> list[dict[int, int]]:
        """Per row, the Kraft room sharing may fill (``eliminate``) so that the graph stays
        within ``depth`` (or the unshared rows' minimum depth, if deeper): the row's budget
        (``row_depths``) less its parent's output. A row without parent whose terms are all
        plain binary gets half of it per sign, so that ``reduce_rows`` can still sum its
        positive and negative terms apart."""
        budget = self.row_depths(order, depth)
        caps: list[dict[int, int]] = []
        for j, terms in enumerate(self.rows):
            p = self.parent[j]
            room = (1 << budget[j]) - ((1 << budget[p]) if p >= 0 else 0)
            half = {g: self.kraft([(sig, e, g) for (sig, e), h in terms.items() if h == g]) for g in (1, -1)}
            unsigned = all(self.bounds[sig][0] >= 0 for sig, _ in terms)
            if p < 0 and unsigned and all(0 < k <= room // 2 for k in half.values()):
                caps.append({1: room // 2, -1: room // 2})
            else:
                caps.append({0: room})
        return caps

    def merge_cost(self, u: SignedTerm, v: SignedTerm) -> int:
        """LUTs of the adder that sums terms ``u`` and ``v`` (``cost.adder_lut``)."""
        if u[2] < 0 < v[2]:
            u, v = v, u
        m = min(u[1], v[1])
        (alo, ahi), (blo, bhi) = self.bounds[u[0]], self.bounds[v[0]]
        return adder_lut((alo, ahi, u[1] - m), (blo, bhi, v[1] - m), u[2] != v[2])

    def add(self, u: SignedTerm, v: SignedTerm) -> SignedTerm:
        """One adder for the sum of terms ``u`` and ``v`` (sig, shift, sign); the new term."""
        (s1, e1, g1), (s2, e2, g2) = u, v
        if g1 < 0 < g2:  # the positive term is the minuend
            s1, e1, g1, s2, e2, g2 = s2, e2, g2, s1, e1, g1
        m = min(e1, e2)
        return self.new_signal(Operand(s1, e1 - m), Operand(s2, e2 - m, g1 != g2), "sum"), m, g1

    def sum_tree(self, terms: list[SignedTerm], depth: int) -> SignedTerm:
        """Sum ``terms`` (sig, shift, sign) in at most ``depth`` adder levels, which the caller
        guarantees fit (Kraft: ``sum 2^level <= 2^depth``). Greedy: the narrowest term first,
        with the partner that makes the cheapest adder (``merge_cost``), the deepest of equal
        cost (a narrow term joins a deep sum: a chain, where a plain-binary add costs only the
        narrow operand's bits; 5 % fewer LUTs on the seed's fc2/fc3 than the narrowest), among
        partners that keep the Kraft sum within the budget; merging the two shallowest always
        does."""
        cap, kraft, terms = 1 << depth, self.kraft(terms), list(terms)
        while len(terms) > 1:
            terms.sort(key=lambda t: (max(map(abs, self.term_bounds(*t))), self.level[t[0]]))
            pick = None
            for i in range(len(terms) - 1):
                li = self.level[terms[i][0]]
                best = None
                for q in range(i + 1, len(terms)):
                    lq = self.level[terms[q][0]]
                    grown = kraft - (1 << li) - (1 << lq) + (1 << (1 + max(li, lq)))
                    if grown <= cap:
                        key = (self.merge_cost(terms[i], terms[q]), -lq, q)
                        if best is None or key < best[0]:
                            best = (key, q, grown)
                if best:
                    pick = (i, best[1], best[2])
                    break
            i, q, kraft = pick
            u, v = terms[i], terms[q]
            del terms[q], terms[i]
            terms.append(self.add(u, v))
        return terms[0]

    def reduce_rows(self, order: list[int], floor: int) -> list[Operand | None]:
        """Sum each row's remaining terms (and its parent row's output), rows in ``order``
        (parents first), within the row's depth budget (``row_depths``). Plain-binary adders
        are cheap where two's-complement ones are not (``cost.adder_lut``), so when the budget
        allows, the terms that are never negative and those never positive are summed apart
        (both plain binary) and subtracted once at the end."""
        depths = self.row_depths(order, floor)
        outputs: list[Operand | None] = [None] * len(self.rows)
        for j in order:
            terms = [(sig, shift, sign) for (sig, shift), sign in self.rows[j].items()]
            up = outputs[self.parent[j]] if self.parent[j] >= 0 else None
            if up is not None:
                assert (up.node, up.shift) not in self.rows[j], "a parent's output is a fresh signal"
                terms.append((up.node, up.shift, -1 if up.neg else 1))
            if not terms:
                continue
            pos = [t for t in terms if self.term_bounds(*t)[0] >= 0]
            neg = [t for t in terms if t not in pos and self.term_bounds(*t)[1] <= 0]
            rest = [t for t in terms if t not in pos and t not in neg]
            lp, ln = self.least_depth(self.kraft(pos)), self.least_depth(self.kraft(neg))
            if pos and neg and (1 << lp) + (1 << ln) + self.kraft(rest) <= 1 << depths[j]:
                if not rest:  # the shallower side may use the spare levels
                    lp = ln = max(lp, ln)
                p = self.sum_tree(pos, lp)
                n = self.sum_tree([(sig, e, -g) for sig, e, g in neg], ln)
                terms = rest + [p, (n[0], n[1], -n[2])]
            sig, shift, sign = self.sum_tree(terms, depths[j])
            outputs[j] = Operand(sig, shift, sign < 0)
        return outputs


def unshared_depth(weights: np.ndarray, row_height: int = 0) -> int:
    """Adder depth of ``build_graph(weights, ..., cse=False, row_height=row_height)`` without
    building it: each row a balanced tree over its signed digits and its parent's output."""
    w = np.asarray(weights, dtype=np.int64)
    parent, order = row_tree(w, row_height)
    zeros = np.zeros(w.shape[1], dtype=np.int64)
    return max(_Builder(w, zeros, zeros, parent, 0).row_depths(order), default=0)


def build_graph(weights: np.ndarray, lo: Sequence[int], hi: Sequence[int], *, cse: bool = True,
                row_height: int = 0, depth: int | None = None, seed: int = 0) -> AdderGraph:
    """Adder graph computing ``weights @ x`` for integer ``x[k]`` in ``[lo[k], hi[k]]``.

    Expects an integer matrix (outputs, inputs) and per-input bounds. Guarantees: every output
    equals its row's dot product for every input in the box; every node's ``lo``/``hi`` is the
    exact range of its value; ``cse=False`` gives the unshared baseline (one tree per row);
    ``row_height`` > 0 computes rows from earlier rows' outputs (``rows.row_tree``); ``depth``
    bounds the graph's depth by ``depth`` or the unshared rows' minimum depth, whichever is
    larger (None: sharing may deepen it); ``seed`` > 0 breaks ties between equally valuable
    patterns in another (reproducible) order, for a best-of-k."""
    w = np.asarray(weights)
    if w.ndim != 2 or not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"weights must be a 2-D integer matrix, got {w.dtype} {w.shape}")
    lo_a, hi_a = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    if lo_a.shape != (w.shape[1],) or hi_a.shape != lo_a.shape or np.any(lo_a > hi_a):
        raise ValueError(f"need lo <= hi for each of the {w.shape[1]} inputs")
    parent, order = row_tree(w, row_height)
    builder = _Builder(w.astype(np.int64), lo_a, hi_a, parent, seed)
    if cse:
        caps = None
        if depth is not None:
            caps = builder.caps_for(order, depth)
        builder.eliminate(caps)
    outputs = builder.reduce_rows(order, depth or 0)
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
