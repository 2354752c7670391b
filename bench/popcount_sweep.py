"""Price qmlp_popcount (the bipolar-input unit's SIMD sum) from a small Yosys sweep.

Each point synthesizes one qmlp_popcount (rtl/qmlp_popcount.v) alone, its ports the top's,
with Yosys ``synth_xilinx -family <f>`` (qmlp.hwgen.synth) and records LUT sites and FF. The
cost model's feature is ``popcount_bits`` = SIMD x bit planes, the (input, weight bit) pairs the
unit counts (qmlp.hwgen.estimate); its LUT and FF per pair are fitted through the origin by least
squares per family; its FF are the structural register count ``popcount_regs``
(qmlp.hwgen.popcount.popcount_registers), whose FF per register bit is fitted the same way.

    python bench/popcount_sweep.py              # both families, ~10 minutes on 2 cores
    python bench/popcount_sweep.py --fit-only   # refit from the recorded points

Writes ``bench/results/popcount_sweep.json`` (the points) and
``qmlp/hwgen/calibration/popcount.json`` (the coefficients the estimator loads).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qmlp.datatypes import BIPOLAR, INT, TERNARY, DataType  # noqa: E402
from qmlp.hwgen.emit import LIBRARY_DIR  # noqa: E402
from qmlp.hwgen.plan import element_kind  # noqa: E402
from qmlp.hwgen.popcount import popcount_planes, popcount_registers  # noqa: E402
from qmlp.hwgen.synth import synthesize  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "popcount_sweep.json"
COEFFICIENTS = ROOT / "qmlp" / "hwgen" / "calibration" / "popcount.json"
# (SIMD, weight type, levels per stage): sizes from a small folded layer to UNSW's 600 inputs, at
# the depths the plan uses (at most qmlp.hwgen.popcount.MAX_LEVELS_PER_STAGE)
POINTS: tuple[tuple[int, DataType, int], ...] = (
    (16, INT(2), 2), (64, TERNARY, 2), (200, INT(2), 2), (600, INT(2), 2), (600, INT(2), 1),
    (64, BIPOLAR, 2), (301, BIPOLAR, 2), (45, INT(4), 1),
)
FAMILIES = ("xc7", "xcup")


def _top(simd: int, storage: DataType, levels: int, acc_bits: int) -> str:
    return (f"module sweep_top (input wire clk, input wire en, input wire [{simd - 1}:0] x,\n"
            f"    input wire [{simd * storage.bits - 1}:0] w, output wire [{acc_bits - 1}:0] sum);\n"
            f"    qmlp_popcount #(.SIMD({simd}), .W_BITS({storage.bits}), .W_KIND({element_kind(storage)}), "
            f".ACC_BITS({acc_bits}), .LEVELS_PER_STAGE({levels})) u (.clk(clk), .en(en), .x(x), .w(w), .sum(sum));\n"
            "endmodule\n")


def run() -> list[dict]:
    points = []
    for family in FAMILIES:
        for simd, storage, levels in POINTS:
            acc_bits = simd.bit_length() + storage.bits + 1
            with tempfile.TemporaryDirectory(prefix="qmlp-popcount-") as tmp:
                shutil.copy2(LIBRARY_DIR / "qmlp_popcount.v", tmp)
                Path(tmp, "sweep_top.v").write_text(_top(simd, storage, levels, acc_bits))
                r = synthesize(tmp, family=family, top="sweep_top", timeout=900)
            points.append({"family": family, "simd": simd, "weights": str(storage), "levels_per_stage": levels,
                           "popcount_bits": simd * popcount_planes(storage),
                           "popcount_regs": popcount_registers(simd, storage, levels, acc_bits),
                           "lut_sites": r.lut_sites, "ff": r.ff, "yosys": r.yosys})
            print(json.dumps(points[-1]), flush=True)
    return points


def fit(points: list[dict]) -> dict:
    out = {"source": "bench/popcount_sweep.py: least squares through the origin of Yosys synth_xilinx LUT sites and "
                     "FF of qmlp_popcount alone per (input, weight bit) pair counted and per register bit"}

    def slope(rows: list[dict], feature: str, target: str) -> float:
        x = np.array([p[feature] for p in rows], dtype=float)
        return round(float(x @ np.array([p[target] for p in rows], dtype=float) / (x @ x)), 4)

    for family in FAMILIES:
        rows = [p for p in points if p["family"] == family]
        out[family] = {"lut": {"popcount_bits": slope(rows, "popcount_bits", "lut_sites")},
                       "ff": {"popcount_regs": slope(rows, "popcount_regs", "ff")}}
    return out


def main() -> None:
    if "--fit-only" in sys.argv[1:]:
        points = json.loads(RESULTS.read_text())["points"]
    else:
        points = run()
        RESULTS.write_text(json.dumps({"points": points}, indent=1) + "\n")
    COEFFICIENTS.write_text(json.dumps(fit(points), indent=1) + "\n")
    print(COEFFICIENTS.read_text())


if __name__ == "__main__":
    main()
