"""Hardware quality benchmark: qmlp designs vs FINN's published numbers (DESIGN.md).

For each case: build a Dataflow IR with random weights of the right types (2-bit or ternary; the
numbers depend on weight values only through zero weights and the ROM contents, so trained
weights give similar counts), fold it for the target throughput and clock, emit the RTL, run
Yosys ``synth_xilinx`` for the board's family, and measure latency and initiation interval in a
Verilator simulation without back-pressure. Results go to ``bench/results/hw_quality.json`` and
the "Hardware quality" section of BENCHMARKS.md (other sections are left untouched).

    .venv/bin/python bench/hw_quality.py                 # all cases (Yosys on the big designs: minutes)
    .venv/bin/python bench/hw_quality.py --only seed-int2 --no-rtl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qmlp.boards import get_board  # noqa: E402
from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT, DataType  # noqa: E402
from qmlp.errors import QmlpError  # noqa: E402
from qmlp.hwgen.emit import emit_rtl  # noqa: E402
from qmlp.hwgen.estimate import estimate  # noqa: E402
from qmlp.hwgen.fold import fold  # noqa: E402
from qmlp.ir import replace  # noqa: E402
from qmlp.testing import random_dataflow  # noqa: E402

SECTION = "## Hardware quality"
RESULTS = ROOT / "bench" / "results" / "hw_quality.json"


@dataclass(frozen=True)
class FinnRef:
    lut: int
    ff: int
    bram36: float
    dsp: int | None
    latency: str
    note: str


SEED_FINN = FinnRef(3999, 4524, 4, 0, "0.11 ms (host-timed around DMA)", "FPL'23 CQMLP, FINN on ZCU104 @ 200 MHz")
UNSW_FINN = FinnRef(7234, 10233, 22, None, "213 cycles @ 100 MHz = 2.13 us",
                    "FINN cybersecurity MLP, out-of-context on xc7z020, 943k inferences/s on board")


@dataclass(frozen=True)
class Case:
    name: str
    widths: tuple[int, ...]
    weights: DataType
    inputs: DataType
    target_fps: float | str
    clock_mhz: float
    board: str
    finn: FinnRef


CASES = (
    Case("seed-int2", (40, 256, 128, 64, 32, 4), INT(2), INT(8), 100_000, 200, "zcu104", SEED_FINN),
    Case("seed-ternary", (40, 256, 128, 64, 32, 4), TERNARY, INT(8), 100_000, 200, "zcu104", SEED_FINN),
    Case("unsw-int2", (600, 64, 64, 64, 1), INT(2), BIPOLAR, 1_000_000, 100, "pynq-z2", UNSW_FINN),
    # the lowest-latency folding target for which the fabric latency stays under 1 us
    Case("seed-int2-5M", (40, 256, 128, 64, 32, 4), INT(2), INT(8), 5_000_000, 200, "zcu104", SEED_FINN),
    Case("seed-ternary-5M", (40, 256, 128, 64, 32, 4), TERNARY, INT(8), 5_000_000, 200, "zcu104", SEED_FINN),
    Case("seed-int2-max", (40, 256, 128, 64, 32, 4), INT(2), INT(8), "max", 200, "zcu104", SEED_FINN),
    Case("seed-ternary-max", (40, 256, 128, 64, 32, 4), TERNARY, INT(8), "max", 200, "zcu104", SEED_FINN),
    Case("unsw-int2-max", (600, 64, 64, 64, 1), INT(2), BIPOLAR, "max", 100, "pynq-z2", UNSW_FINN),
)


def build(case: Case):
    df = random_dataflow(2024, widths=case.widths, weight_dtypes=case.weights, input_dtype=case.inputs,
                         act_dtype=UINT(2), name=case.name)
    return fold(df, target_fps=case.target_fps, clock_mhz=case.clock_mhz)


def measure_rtl(df, rtl_dir: Path) -> dict:
    """Latency of an inference into an empty pipeline and the steady-state II, no back-pressure."""
    from qmlp.sim.rtl import simulate_rtl
    from qmlp.sim.bitaccurate import simulate

    x = np.random.default_rng(1).normal(0, 2, size=(8, df.input.features)).astype(np.float32)
    golden = simulate(df, x)
    result = simulate_rtl(df, rtl_dir, golden.inputs, backpressure=False)
    return {"latency_cycles": int(result.latency[0]), "ii_cycles": float(result.ii),
            "bit_exact": bool(np.array_equal(result.outputs, golden.activations[-1]))}


def run_case(case: Case, *, synth: bool, rtl: bool, timeout: float) -> dict:
    from qmlp.hwgen.synth import synthesize

    board = get_board(case.board)
    df = build(case)
    est = estimate(df)
    row = {
        "case": case.name, "board": case.board, "family": board.family, "clock_mhz": case.clock_mhz,
        "target_fps": case.target_fps, "weights": case.weights.name, "inputs": case.inputs.name,
        "topology": "-".join(map(str, case.widths)),
        "folding": {l.name: [l.folding.pe, l.folding.simd, l.folding.pad_out, l.folding.pad_in] for l in df.layers},
        "estimate": {"ii_cycles": est.ii_cycles, "latency_cycles": est.latency_cycles, "lut": est.lut, "ff": est.ff,
                     "bram36": est.bram36, "dsp": est.dsp, "throughput_fps": est.throughput_fps},
    }
    with tempfile.TemporaryDirectory(prefix=f"qmlp-bench-{case.name}-") as tmp:
        rtl_dir = Path(tmp) / "rtl"
        emit_rtl(df, rtl_dir)
        if rtl:
            start = time.perf_counter()
            row["rtl"] = measure_rtl(df, rtl_dir)
            row["rtl"]["seconds"] = round(time.perf_counter() - start, 1)
        if synth:
            try:
                result = synthesize(rtl_dir, family=board.family, timeout=timeout)
                row["synth"] = {"lut": result.lut, "ff": result.ff, "carry": result.carry, "lutram": result.lutram,
                                "bram36": result.bram36 + result.bram18 / 2, "dsp": result.dsp,
                                "logic_depth": result.logic_depth, "fmax_estimate_mhz": result.fmax_estimate_mhz,
                                "seconds": result.seconds}
            except QmlpError as error:
                row["synth"] = {"error": str(error)}
    return row


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.{digits}f}" if digits else f"{value:,.1f}"
    return f"{int(value):,}"


def render(rows: list[dict]) -> str:
    lines = [SECTION, "",
             "Produced by `bench/hw_quality.py` (random weights of the right types via IR construction, "
             "seed 2024: 2-bit = INT2 weights incl. -2, ternary = {-1,0,+1} with 30% zeros; UINT2 "
             "activations). LUT/FF/BRAM/DSP are Yosys 0.70 `synth_xilinx` netlist counts (LUT includes "
             "neither LUTRAM nor SRLs, listed apart; BRAM in BRAM36 units), before Vivado's own "
             "optimisation and without place and route. Latency and II are measured in the Verilator "
             "RTL simulation (no back-pressure), cycles from the first input beat to the last output "
             "beat (marked † where the Verilator run was skipped for time: then the RTL cycle model "
             "`qmlp.hwgen.cycles`, which tests and `qmlp verify` check against Verilator cycle for cycle). "
             "fmax is an estimate from the register-to-register logic depth (qmlp/hwgen/synth.py). "
             "FINN numbers are the published ones of DESIGN.md (Vivado results); FINN's own estimates, measured "
             "here with finn-plus at the same targets, are in *Peers side by side*.", "",
             "| case | board @ MHz | target | folding (PE x SIMD) | LUT | LUTRAM | FF | BRAM36 | DSP | latency cycles | latency ns | II cycles | fmax est. | LUT vs FINN |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        s, r = row.get("synth", {}), row.get("rtl", {})
        folding = ", ".join(f"{pe}x{simd}" for pe, simd, *_ in row["folding"].values())
        target = "max" if row["target_fps"] == "max" else f"{row['target_fps']:,.0f}/s"
        e = row["estimate"]
        lat = r.get("latency_cycles", e["latency_cycles"])
        ii = r.get("ii_cycles", e["ii_cycles"])
        mark = "" if "latency_cycles" in r else " †"
        lat_ns = lat * 1e3 / row["clock_mhz"]
        finn_lut = {"seed": SEED_FINN.lut, "unsw": UNSW_FINN.lut}[row["case"].split("-")[0]]
        ratio = f"{s['lut'] / finn_lut:.2f}x" if "lut" in s else "–"
        if "error" in s:
            synth_cells = [f"synth failed: {s['error'][:60]}", "", "", "", ""]
        else:
            synth_cells = [_fmt(s.get("lut")), _fmt(s.get("lutram")), _fmt(s.get("ff")), _fmt(s.get("bram36")),
                           _fmt(s.get("dsp"))]
        lines.append(f"| {row['case']} | {row['board']} @ {row['clock_mhz']:g} | {target} | {folding} | "
                     + " | ".join(synth_cells)
                     + f" | {_fmt(lat)}{mark} | {_fmt(lat_ns)} | {_fmt(ii)}{mark} | "
                       f"{_fmt(s.get('fmax_estimate_mhz'))} | {ratio} |")
    lines += ["", "FINN reference (published):", "",
              "| design | LUT | FF | BRAM36 | DSP | latency | note |", "|---|---|---|---|---|---|---|"]
    for name, ref in (("seed 40-256-128-64-32-4", SEED_FINN), ("UNSW-NB15 600-64-64-64-1", UNSW_FINN)):
        lines.append(f"| {name} | {ref.lut:,} | {ref.ff:,} | {ref.bram36:g} | {_fmt(ref.dsp)} | {ref.latency} | {ref.note} |")
    lines += ["", "Goals (issue 4): at equal throughput <= 0.5x FINN's LUTs with 0 DSP; fabric latency <= 1 us "
              "for the seed model.", "", "| case | LUT / FINN | DSP | LUT goal | latency | latency goal |",
              "|---|---|---|---|---|---|"]
    for row in rows:
        s, r, e = row.get("synth", {}), row.get("rtl", {}), row["estimate"]
        seed = row["case"].startswith("seed")
        finn_lut = SEED_FINN.lut if seed else UNSW_FINN.lut
        lat_ns = r.get("latency_cycles", e["latency_cycles"]) * 1e3 / row["clock_mhz"]
        if "lut" in s:
            ratio = s["lut"] / finn_lut
            lut_goal = "met" if ratio <= 0.5 and s["dsp"] == 0 else "not met"
            lut_cells = f"{ratio:.2f}x | {s['dsp']} | {lut_goal}"
        else:
            lut_cells = "not synthesized | – | –"
        lat_goal = ("met" if lat_ns <= 1000 else "not met") if seed else "n/a"
        fmax = s.get("fmax_estimate_mhz")
        if lat_goal == "met" and fmax is not None and fmax < row["clock_mhz"]:
            # the cycles meet 1 us only at a clock this design is not estimated to reach
            lat_goal = f"met in cycles at {row['clock_mhz']:g} MHz only (fmax est. {fmax:.0f} MHz)"
        lines.append(f"| {row['case']} | {lut_cells} | {lat_ns:,.0f} ns | {lat_goal} |")
    lines += ["", "Estimates of the analytical model for the same designs (qmlp/hwgen/estimate.py):", "",
              "| case | est. LUT | est. FF | est. BRAM36 | est. II | est. latency |", "|---|---|---|---|---|---|"]
    for row in rows:
        e = row["estimate"]
        lines.append(f"| {row['case']} | {e['lut']:,} | {e['ff']:,} | {e['bram36']:g} | {e['ii_cycles']:,} | "
                     f"{e['latency_cycles']:,} |")
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """What the numbers say (this run):

- **Seed at 100 k/s**: ~2.3 k LUTs, ~0.9 k FFs, 3.5 BRAM36, 0 DSP for both weight types: 0.57-0.58x
  FINN's LUTs and 0.2x its FFs, close to but not at the 0.5x goal. Folded, both use the same
  ROM-based MVAU lanes (a 2-bit weight select per lane), so ternary gains nothing here; its
  constant-weight datapath only applies to fully parallel layers.
- **UNSW-NB15 at 1 M/s**: the cheapest folding under the analytical cost (PE 1, SIMD 600 on the
  first layer, weights in LUT ROMs) sums 600 products in one pipeline stage: about twice FINN's
  LUTs and an estimated fmax near 55 MHz, below the 100 MHz target. A folding with more PEs and
  fewer SIMD lanes (weights in BRAM) would be shorter and smaller; the folding cost does not yet
  model logic depth, and it prices a BRAM36 by the XCZU7EV's LUT/BRAM ratio on every board.
- **Latency**: at 100 k/s a folded layer takes up to 2000 cycles, so the fabric latency is tens
  of microseconds; 1 us for the seed needs about 5 M inferences/s (the `-5M` rows, 40 cycles per
  layer). The synthesized 5 M designs have 965 ns (ternary) and 995 ns (INT2) of fabric latency
  but ~37-38 k LUTs and an estimated fmax near 125 MHz, short of 200 MHz: their wide SIMD sums sit
  in one pipeline stage, so the 1 us goal holds in cycles, not yet at the board clock. The fully parallel designs
  (1 inference per clock, 130-210 ns) are estimated larger than the whole XCZU7EV (230 k LUT) and
  were not synthesized: Yosys under WebAssembly (yowasp) is limited to 4 GB of memory, and the
  ~37 k-LUT 5 M designs already took 5-13 minutes each on this shared machine.
- The analytical LUT estimate is about half of Yosys' count on these designs: it leaves out the
  width converters, FIFOs, AXI-Lite control and the threshold fold multiplexers. Latency and II
  estimates are exact (RTL cycle model; every measured row agrees with Verilator).
"""


BEGIN, END = "<!-- begin: Hardware quality -->", "<!-- end: Hardware quality -->"


def write_section(text: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace (or append) only the "Hardware quality" section of BENCHMARKS.md, which sits
    between begin/end markers like the other sections."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{text.rstrip()}\n{END}"
    pattern = re.compile(rf"{re.escape(BEGIN)}.*?{re.escape(END)}", re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(updated)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="case names (default: all)")
    parser.add_argument("--no-synth", action="store_true")
    parser.add_argument("--no-rtl", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600, help="Yosys time limit per design, seconds")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--render-only", action="store_true", help="rewrite the section from the saved results")
    args = parser.parse_args()
    old = {row["case"]: row for row in json.loads(RESULTS.read_text())} if RESULTS.exists() else {}
    for case in CASES:
        if args.render_only or (args.only and case.name not in args.only):
            continue
        start = time.perf_counter()
        row = run_case(case, synth=not args.no_synth, rtl=not args.no_rtl, timeout=args.timeout)
        previous = old.get(case.name, {})
        for key in ("synth", "rtl"):  # keep earlier measurements a partial run did not redo
            if key not in row and key in previous:
                row[key] = previous[key]
        if not args.no_write:  # save as we go (the big designs take many minutes), merging with
            # whatever a concurrent run of other cases saved meanwhile
            old.update({r["case"]: r for r in json.loads(RESULTS.read_text())} if RESULTS.exists() else {})
            old[case.name] = row
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps([old[c.name] for c in CASES if c.name in old], indent=1) + "\n")
        old[case.name] = row
        print(f"{case.name}: {time.perf_counter() - start:.0f} s {json.dumps({k: row.get(k) for k in ('synth', 'rtl')})}",
              flush=True)
    if RESULTS.exists() and not args.no_write:
        old.update({r["case"]: r for r in json.loads(RESULTS.read_text())})
    rows = [old[c.name] for c in CASES if c.name in old]
    text = render(rows)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(rows, indent=1) + "\n")
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
