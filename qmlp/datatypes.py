"""Integer data types as values: BIPOLAR, TERNARY, INTk, UINTk.

TERNARY is kept apart from INT2 on purpose: it tells the hardware generator that zero weights
vanish and +-1 needs no multiplier (QONNX/FINN call it INT2 and lose that)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["DataType", "BIPOLAR", "TERNARY", "INT", "UINT", "smallest_type_for_range"]

_NAME = re.compile(r"^(BIPOLAR|TERNARY|INT(\d+)|UINT(\d+))$")


@dataclass(frozen=True)
class DataType:
    """An integer type. ``kind`` is one of BIPOLAR, TERNARY, INT, UINT; ``bits`` is the storage
    width in two's complement (INT) or plain binary (UINT); BIPOLAR is stored as 1 bit
    (0 -> -1, 1 -> +1), TERNARY as 2-bit two's complement."""

    kind: str
    bits: int

    def __post_init__(self) -> None:
        if self.kind not in ("BIPOLAR", "TERNARY", "INT", "UINT"):
            raise ValueError(f"unknown data type kind {self.kind!r}")
        expected = {"BIPOLAR": 1, "TERNARY": 2}.get(self.kind)
        if expected is not None and self.bits != expected:
            raise ValueError(f"{self.kind} has {expected} bits, got {self.bits}")
        if not 1 <= self.bits <= 64:
            raise ValueError(f"data type width must be 1..64 bits, got {self.bits}")

    @classmethod
    def parse(cls, name: str) -> "DataType":
        """Parse the canonical string (``INT4``, ``UINT8``, ``TERNARY``, ``BIPOLAR``)."""
        match = _NAME.match(name)
        if not match:
            raise ValueError(f"not a data type name: {name!r} (expected BIPOLAR, TERNARY, INTk or UINTk)")
        if match.group(2):
            return cls("INT", int(match.group(2)))
        if match.group(3):
            return cls("UINT", int(match.group(3)))
        return BIPOLAR if name == "BIPOLAR" else TERNARY

    @property
    def name(self) -> str:
        return self.kind if self.kind in ("BIPOLAR", "TERNARY") else f"{self.kind}{self.bits}"

    @property
    def signed(self) -> bool:
        return self.kind != "UINT"

    @property
    def min(self) -> int:
        if self.kind in ("BIPOLAR", "TERNARY"):
            return -1
        return -(1 << (self.bits - 1)) if self.kind == "INT" else 0

    @property
    def max(self) -> int:
        if self.kind in ("BIPOLAR", "TERNARY"):
            return 1
        return (1 << (self.bits - 1)) - 1 if self.kind == "INT" else (1 << self.bits) - 1

    def allows(self, values: np.ndarray) -> bool:
        """True if every value is an integer this type can hold."""
        v = np.asarray(values)
        if v.size == 0:
            return True
        if not np.all(np.equal(np.mod(v, 1), 0)):
            return False
        if self.kind == "BIPOLAR":
            return bool(np.all((v == -1) | (v == 1)))
        return bool(v.min() >= self.min and v.max() <= self.max)

    def __str__(self) -> str:
        return self.name


BIPOLAR = DataType("BIPOLAR", 1)
TERNARY = DataType("TERNARY", 2)


def INT(bits: int) -> DataType:  # noqa: N802 - reads like the type name
    return DataType("INT", bits)


def UINT(bits: int) -> DataType:  # noqa: N802
    return DataType("UINT", bits)


def smallest_type_for_range(lo: int, hi: int) -> DataType:
    """Narrowest INTk/UINTk holding every integer in [lo, hi] (UINT when lo >= 0)."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return UINT(max(1, hi.bit_length()))
    bits = 1
    while -(1 << (bits - 1)) > lo or (1 << (bits - 1)) - 1 < hi:
        bits += 1
    return INT(bits)
