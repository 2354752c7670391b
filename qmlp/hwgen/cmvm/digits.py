"""Canonical signed digits (CSD) of integer weights: the shifted terms a constant multiply needs."""

from __future__ import annotations

import numpy as np

__all__ = ["csd_digits", "digit_counts"]


def csd_digits(value: int) -> list[tuple[int, int]]:
    """Canonical signed-digit form of ``value``: [(shift, +-1), ...], no two adjacent shifts."""
    digits, shift = [], 0
    while value:
        if value & 1:
            digit = 2 - (value & 3)  # +1 if value = 1 mod 4, -1 if 3 mod 4
            digits.append((shift, digit))
            value -= digit
        value >>= 1
        shift += 1
    return digits


def digit_counts(matrix: np.ndarray) -> np.ndarray:
    """Signed-digit count of every entry (int64 array of the same shape)."""
    values, inverse = np.unique(matrix, return_inverse=True)
    table = np.array([len(csd_digits(int(v))) for v in values], dtype=np.int64)
    return table[inverse].reshape(matrix.shape)
