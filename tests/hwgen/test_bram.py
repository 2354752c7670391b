"""Block-RAM geometry: the plan's count (qmlp.hwgen.bram.map_rom) is the count Yosys builds.

The record tests/hwgen/bram_yosys.json holds Yosys' RAMB36/RAMB18 cells for each ROM shape,
each a block-style ``qmlp_rom`` with random contents synthesized alone; regenerate it with
``nice -n 10 python bench/bram_shapes.py`` (Yosys 0.70, ~3 minutes on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qmlp.frontend import import_model
from qmlp.hwgen.bram import bram_modes, map_rom
from qmlp.hwgen.estimate import bram_count, estimate
from qmlp.hwgen.fold import apply_folding
from qmlp.hwgen.plan import Memory, Storage, build_plan
from qmlp.hwgen.synth import synthesize_rom
from qmlp.hwgen.thresholds import constant_columns

RECORD = json.loads((Path(__file__).parent / "bram_yosys.json").read_text())
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _cells(width: int, depth: int, family: str) -> tuple[int, int]:
    """(RAMB36, RAMB18) cells of the mapping."""
    m = map_rom(width, depth, family)
    if m.mode.bram36 == 0.5:
        return 0, m.primitives
    return int(m.primitives * m.mode.bram36), 0


@pytest.mark.parametrize("shape", RECORD["shapes"], ids=lambda s: f"{s['family']}-{s['width']}x{s['depth']}")
def test_count_equals_yosys(shape):
    assert _cells(shape["width"], shape["depth"], shape["family"]) == (shape["bram36"], shape["bram18"])


@pytest.mark.parametrize("shape", RECORD["shapes"], ids=lambda s: f"{s['family']}-{s['width']}x{s['depth']}")
def test_read_mux_equals_yosys(shape):
    """The LUTs and flip-flops beside the block RAMs are the depth-slice read mux (not yet in the
    LUT estimate, whose fit absorbs them)."""
    m = map_rom(shape["width"], shape["depth"], shape["family"])
    assert (m.mux_luts, m.select_regs) == (shape["lut"], shape["ff"])


def test_record_covers_the_mismatch():
    """The shapes where a per-column count (cheapest single aspect ratio) was above Yosys: the
    binary-search levels of the ternary-a8 seed design (54.5 planned, 50.0 built)."""
    shapes = {(s["family"], s["width"], s["depth"]): s["bram36"] + s["bram18"] / 2 for s in RECORD["shapes"]}
    assert shapes[("xcup", 12, 16384)] == 5.5 and shapes[("xcup", 12, 32768)] == 11.0
    assert shapes[("xcup", 13, 4096)] == 1.5 and shapes[("xcup", 13, 8192)] == 3.0


def test_depth_slices_are_packed():
    m = map_rom(12, 16384, "xcup")  # 8 slices of 9 x 2048, 96 bits in 11 BRAM18 behind an 8:1 mux
    assert (m.width, m.depth, m.slices, m.primitives, m.bram36) == (9, 2048, 8, 11, 5.5)


@pytest.mark.parametrize("family", ["xcup", "xc7"])
def test_capacity_and_modes(family):
    """Every mapping holds the ROM, and only 7-series has the cascade mode."""
    for width in (1, 3, 9, 12, 13, 37, 80):
        for depth in (2, 100, 1000, 5000, 20000, 70000):
            m = map_rom(width, depth, family)
            assert m.slices * m.depth >= depth and m.primitives * m.width >= m.slices * width
    assert any(mode.bram36 == 2.0 for mode in bram_modes("xc7"))
    assert not any(mode.bram36 == 2.0 for mode in bram_modes("xcup"))


def test_rejects_empty_rom():
    with pytest.raises(ValueError, match="must be >= 1"):
        map_rom(0, 512, "xcup")


@pytest.mark.slow
def test_resynthesized_shape_equals_count():
    """One shape synthesized now (the depth-packed one): the record and the model still hold."""
    r = synthesize_rom(12, 16384, family="xcup", seed=1, timeout=600)
    assert (r.bram36, r.bram18) == _cells(12, 16384, "xcup") == (0, 11)


def test_constant_bit_columns_are_not_stored():
    """A block RAM holds a ROM's varying bit columns only: Yosys ties constant ones off."""
    assert constant_columns([0b1010, 0b1000, 0b1110], 4) == 2  # bit 3 always 1, bit 0 always 0
    full, tied = Memory(Storage.BRAM, 74, 128), Memory(Storage.BRAM, 74, 128, constant_bits=2)
    assert bram_count(full, "xcup") == 1.5
    assert bram_count(tied, "xcup") == map_rom(72, 128, "xcup").bram36 == 1.0
    assert bram_count(Memory(Storage.BRAM, 3, 512, constant_bits=3), "xcup") == 0.0


def test_direction_bits_of_unnegated_lanes_count_as_constant():
    """The trained ternary seed at 100 k/s (bench/hw_quality.py's folding): fc0's threshold
    words carry one direction bit per lane and no channel is negated, so 2 of the 74 bits are
    constant; the plan's BRAM total is the 5.0 BRAM36 Yosys built (bench/results/hw_quality.json,
    seed-ternary-100k; 5.5 when the flags were counted)."""
    config = {"fc0": {"PE": 2, "SIMD": 3, "qmlp_pad_in": 2, "ram_style": "block"},
              "fc1": {"PE": 3, "SIMD": 6, "qmlp_pad_out": 1, "qmlp_pad_in": 2, "ram_style": "block"},
              "fc2": {"PE": 2, "SIMD": 3, "qmlp_pad_in": 1, "ram_style": "block"},
              "fc3": {"PE": 1, "SIMD": 2, "ram_style": "block"}, "fc4": {"PE": 1, "SIMD": 1}}
    df = apply_folding(import_model(EXAMPLES / "can_ids_ternary.onnx"), config, clock_mhz=200.0)
    hw = build_plan(df)
    fc0 = hw.layers[0].threshold.memories[0]
    assert (fc0.kind, fc0.width, fc0.depth) == (Storage.BRAM, 74, 128)
    assert fc0.constant_bits == 2 and not df.layers[0].activation.negate.any()
    assert estimate(df, hw=hw).bram36 == 5.0


@pytest.mark.slow
def test_yosys_ties_off_constant_columns():
    rng = np.random.default_rng(1)
    mask = ((1 << 74) - 1) & ~((1 << 36) | (1 << 73))
    words = [sum(int(b) << i for i, b in enumerate(rng.integers(0, 2, 74))) & mask for _ in range(128)]
    assert constant_columns(words, 74) == 2
    result = synthesize_rom(74, 128, family="xcup", words=words)
    assert result.bram36 + result.bram18 / 2 == bram_count(Memory(Storage.BRAM, 74, 128, constant_bits=2), "xcup")
