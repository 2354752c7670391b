"""Yosys' block-RAM count for a set of ROM shapes: the record tests/hwgen/test_bram.py checks the
plan's count (``qmlp.hwgen.bram.map_rom``) against.

Each shape is one ``qmlp_rom`` (rom_style "block", random contents) synthesized alone by
``qmlp.hwgen.synth.synthesize_rom`` (``synth_xilinx -family <family>``), a few seconds each.
The shapes are the ROMs of the ternary-weight 8-bit-activation seed design (weights and
binary-search levels, where the plan's per-column count said 54.5 BRAM36 and Yosys built 50.0)
and some around them: deep ROMs that Yosys packs across depth slices, widths past 36, odd
depths, and 7-series' cascade mode.

    nice -n 10 python bench/bram_shapes.py      # writes tests/hwgen/bram_yosys.json (~3 min)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qmlp.hwgen.synth import synthesize_rom  # noqa: E402

RECORD = ROOT / "tests" / "hwgen" / "bram_yosys.json"
# (family, width, depth)
SHAPES = ([("xcup", w, d) for w, d in ((12, 1792), (36, 1856), (16, 1024), (4, 1024), (12, 512), (13, 2048),
                                       (12, 4096), (13, 4096), (12, 8192), (13, 8192), (12, 16384),
                                       (13, 16384), (12, 32768), (10, 65), (72, 512), (144, 1024),
                                       (5, 3000), (20, 6000), (40, 700))]
          + [("xc7", w, d) for w, d in ((13, 4096), (12, 16384), (4, 16384), (9, 9000), (40, 700))])


def main() -> int:
    rows, version = [], ""
    for family, width, depth in SHAPES:
        r = synthesize_rom(width, depth, family=family, timeout=300)
        version = r.yosys
        rows.append({"family": family, "width": width, "depth": depth, "bram36": r.bram36, "bram18": r.bram18,
                     "lut": r.lut, "ff": r.ff})
        print(f"{family} {width} x {depth}: {r.bram36} BRAM36 + {r.bram18} BRAM18, {r.lut} LUT, {r.ff} FF",
              flush=True)
    RECORD.write_text(json.dumps({"command": "nice -n 10 python bench/bram_shapes.py", "yosys": version,
                                  "shapes": rows}, indent=1) + "\n")
    print(f"wrote {RECORD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
