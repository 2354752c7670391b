"""Packing of integer vectors into AXI-Stream beats — the contract between host and fabric.

A vector of N elements, each ``bits`` wide, travels as ``ceil(N / E)`` beats of ``E`` elements
(E = elements per beat, from ``StreamFormat``). Within a beat, element j occupies bits
``[j*bits, (j+1)*bits)`` (element 0 in the least significant bits), in two's complement for signed
types and as the raw code for BIPOLAR (0 = -1, 1 = +1). The beat is zero-padded up to a whole
number of bytes; bytes go little-endian, so TDATA byte 0 holds bits [7:0]. Missing elements of
the last beat are zero."""

from __future__ import annotations

import numpy as np

from .datatypes import BIPOLAR, DataType

__all__ = ["beat_bytes", "pack", "unpack", "encode", "decode"]


def beat_bytes(bits: int, elems_per_beat: int) -> int:
    return (bits * elems_per_beat + 7) // 8


def encode(values: np.ndarray, dtype: DataType) -> np.ndarray:
    """Integer values -> unsigned codes of ``dtype.bits`` bits."""
    v = np.asarray(values, dtype=np.int64)
    if dtype == BIPOLAR:
        return (v > 0).astype(np.uint64)
    return (v & ((1 << dtype.bits) - 1)).astype(np.uint64)


def decode(codes: np.ndarray, dtype: DataType) -> np.ndarray:
    """Unsigned codes -> integer values (sign-extended for signed types)."""
    c = np.asarray(codes, dtype=np.int64)
    if dtype == BIPOLAR:
        return 2 * c - 1
    if dtype.signed:
        sign = 1 << (dtype.bits - 1)
        return (c ^ sign) - sign
    return c


def pack(values: np.ndarray, dtype: DataType, elems_per_beat: int) -> np.ndarray:
    """(batch, N) integers -> (batch, beats, beat_bytes) uint8."""
    values = np.asarray(values)
    batch, n = values.shape
    beats = -(-n // elems_per_beat)
    codes = np.zeros((batch, beats * elems_per_beat), dtype=np.uint64)
    codes[:, :n] = encode(values, dtype)
    codes = codes.reshape(batch, beats, elems_per_beat)
    bits = dtype.bits
    nbytes = beat_bytes(bits, elems_per_beat)
    # Expand every element into its bits, lay them out LSB-first, regroup into bytes.
    shifts = np.arange(bits, dtype=np.uint64)
    bitplane = ((codes[..., None] >> shifts) & np.uint64(1)).astype(np.uint8)
    flat = bitplane.reshape(batch, beats, elems_per_beat * bits)
    padded = np.zeros((batch, beats, nbytes * 8), dtype=np.uint8)
    padded[..., : flat.shape[-1]] = flat
    return np.packbits(padded, axis=-1, bitorder="little")


def unpack(data: np.ndarray, dtype: DataType, elems_per_beat: int, n: int) -> np.ndarray:
    """(batch, beats, beat_bytes) uint8 -> (batch, n) integers."""
    data = np.asarray(data, dtype=np.uint8)
    batch, beats, _ = data.shape
    bits = dtype.bits
    plane = np.unpackbits(data, axis=-1, bitorder="little")[..., : elems_per_beat * bits]
    plane = plane.reshape(batch, beats * elems_per_beat, bits).astype(np.uint64)
    codes = (plane << np.arange(bits, dtype=np.uint64)).sum(axis=-1)
    return decode(codes[:, :n], dtype)
