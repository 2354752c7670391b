"""How many block RAMs a ROM of ``depth`` words x ``width`` bits takes: the geometry Yosys'
``memory_libmap`` picks in ``synth_xilinx`` (its library ``brams_xc4v.txt``), so the plan's count
is the netlist's count.

Yosys tries every block-RAM mode (a BRAM18 "HALF", a BRAM36 "FULL", on 7-series also a cascaded
pair of BRAM36 "CASCADE"; true dual-port widths up to 36, simple dual-port up to 72) at every
aspect ratio and keeps the cheapest by its own cost: ``mode cost x primitives + 0.5 x read-mux
bits``. A ROM deeper than one primitive at that aspect ratio is cut into depth slices whose
words are packed side by side, bit by bit, into as few primitives as hold them, and a LUT
multiplexer behind the block RAMs picks the slice. So 12 x 16384 is 11 BRAM18 of 9 x 2048
(8 slices x 12 bits = 96 bits = 11 x 9 bits wide) plus a 12-bit 8:1 mux, not 12 BRAM18.

Vivado may differ: it maps column by column (mixing aspect ratios, e.g. 13 x 4096 as a 9 x 4096
BRAM36 and a 4 x 4096 BRAM18, the same 1.5 BRAM36 as Yosys) and does not pack depth slices
across columns, so on deep ROMs (12 x 16384, 12 x 32768) it would use one more primitive. We
follow Yosys because it is the netlist this project measures (``qmlp.hwgen.synth``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BramMode", "BramMap", "bram_modes", "map_rom"]

_MUX_COST = 0.5  # Yosys FACTOR_MUX: cost per read-mux input bit beyond the first slice


@dataclass(frozen=True)
class BramMode:
    """One block-RAM primitive mode of the Yosys library: ``abits`` bit-address bits (depth at
    width index i is ``2**(abits - i)``), the data ``widths`` it offers, Yosys' ``cost`` and how
    many BRAM36 it occupies (a BRAM18 is 0.5)."""

    name: str
    abits: int
    widths: tuple[int, ...]
    cost: int
    bram36: float


@dataclass(frozen=True)
class BramMap:
    """A ROM of ``width_bits``-bit words as mapped: ``primitives`` of ``mode`` at ``width`` x
    ``depth`` each, ``slices`` depth slices (a ``slices``:1 LUT read mux when above 1)."""

    mode: BramMode
    width: int
    depth: int
    primitives: int
    slices: int
    width_bits: int  # the ROM's word width

    @property
    def bram36(self) -> float:
        return self.primitives * self.mode.bram36

    @property
    def mux_luts(self) -> int:
        """LUTs of the read mux: per bit a tree of LUT6 4:1 muxes (each takes 3 inputs off)."""
        return self.width_bits * math.ceil((self.slices - 1) / 3)

    @property
    def select_regs(self) -> int:
        """Flip-flops holding the read's slice select until the data comes out."""
        return (self.slices - 1).bit_length()


_HALF_TDP = BramMode("BRAM18 true dual-port", 14, (1, 2, 4, 9, 18), 129, 0.5)
_FULL_TDP = BramMode("BRAM36 true dual-port", 15, (1, 2, 4, 9, 18, 36), 257, 1.0)
_CASCADE = BramMode("BRAM36 cascade pair", 16, (1, 2, 4, 9), 513, 2.0)
_HALF_SDP = BramMode("BRAM18 simple dual-port", 14, (1, 2, 4, 9, 18, 36), 129, 0.5)
_FULL_SDP = BramMode("BRAM36 simple dual-port", 15, (1, 2, 4, 9, 18, 36, 72), 257, 1.0)


def bram_modes(family: str) -> tuple[BramMode, ...]:
    """The modes in Yosys' library order (which breaks cost ties): UltraScale+ has no cascade
    mode in ``synth_xilinx`` (no ``HAS_CASCADE``), 7-series has."""
    tdp = (_HALF_TDP, _FULL_TDP, _CASCADE) if family == "xc7" else (_HALF_TDP, _FULL_TDP)
    return tdp + (_HALF_SDP, _FULL_SDP)


def map_rom(width: int, depth: int, family: str) -> BramMap:
    """The block-RAM mapping Yosys chooses for a ROM of ``depth`` x ``width`` (both >= 1) with
    one registered read port: per mode the cheapest aspect ratio (a later ratio wins only when
    cheaper than the earlier one's cost truncated to an integer, as Yosys keeps it), then the
    cheapest mode (the earlier on a tie)."""
    if width < 1 or depth < 1:
        raise ValueError(f"ROM {depth} x {width}: depth and width must be >= 1")
    best: tuple[float, BramMap] | None = None
    for mode in bram_modes(family):
        mode_best: tuple[float, BramMap] | None = None
        for index, w in enumerate(mode.widths):
            slices = math.ceil(depth / (1 << (mode.abits - index)))
            primitives = math.ceil(slices * width / w)
            cost = mode.cost * primitives + _MUX_COST * (slices - 1) * width
            if mode_best is None or cost < int(mode_best[0]):
                mode_best = (cost, BramMap(mode, w, 1 << (mode.abits - index), primitives, slices, width))
        assert mode_best is not None
        if best is None or mode_best[0] < best[0]:
            best = mode_best
    assert best is not None
    return best[1]
