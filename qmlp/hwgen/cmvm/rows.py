"""Rows from rows: compute output ``j`` as output ``i`` plus the difference ``(W_j - W_i) @ x``.

Trained layers have strongly correlated rows (on the seed network a row differs from its
nearest neighbour in about half as many signed digits as it has), so a spanning tree over the
rows, rooted at the zero row, lets most outputs start from a sibling's sum. The tree is Prim's
minimum spanning tree under a height bound (each generation adds one adder level to the graph):
edge cost = signed digits of the difference + 1 (the add of the parent's output), cost from the
root = the row's own digits. The parent must come earlier in the returned order.
"""

from __future__ import annotations

import numpy as np

from .digits import digit_counts

__all__ = ["row_tree"]


def row_tree(weights: np.ndarray, max_height: int) -> tuple[list[int], list[int]]:
    """(parent per row, -1 for the root; an order in which every parent precedes its children).
    ``max_height`` 0 gives every row the root (no differences)."""
    w = np.asarray(weights, dtype=np.int64)
    n = w.shape[0]
    parent = [-1] * n
    order: list[int] = []
    if n == 0:
        return parent, order
    own = digit_counts(w).sum(axis=1)
    best = own.copy()  # cheapest known way to compute each row not yet in the tree
    via = np.full(n, -1)
    height = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    for _ in range(n):
        j = int(np.argmin(np.where(done, np.iinfo(np.int64).max, best)))
        done[j] = True
        parent[j] = int(via[j])
        height[j] = 0 if via[j] < 0 else height[via[j]] + 1
        order.append(j)
        if height[j] < max_height:
            cost = digit_counts(w - w[j]).sum(axis=1) + 1
            better = (~done) & (cost < best)
            best[better] = cost[better]
            via[better] = j
    return parent, order
