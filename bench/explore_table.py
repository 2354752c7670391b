"""The BENCHMARKS.md section of a ``qmlp explore`` sweep, from its results store alone.

    python -m bench.explore_table build/explore/explore_can            # print the section
    python -m bench.explore_table build/explore/explore_can --write    # and write it into BENCHMARKS.md

One row per design (weights x acts x topology at each target), the Pareto-front designs marked,
and for each weight precision its best accuracy and the cheapest design at each accuracy bar:
where 1.58-bit (ternary) and 2-bit (int2) sit on the front."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qmlp.explore.pareto import fronts_by_board
from qmlp.explore.spec import fps_label
from qmlp.explore.store import STORE_NAME, Store

from .benchmarks_md import update_section

TITLE = "Design-space exploration"
ORDER = {"bipolar": 0, "ternary": 1, "int2": 2, "int3": 3, "int4": 4}
LABEL = {"bipolar": "1 (bipolar)", "ternary": "1.58 (ternary)", "int2": "2", "int3": "3", "int4": "4"}
BARS = (0.99, 0.995, 0.998)


def section(out: Path, command: str) -> str:
    with Store(out / STORE_NAME, create=False) as store:
        designs = store.joined_designs()
        trials = store.rows("trials")
        runs = store.rows("runs", "ORDER BY id")
    spec = json.loads(runs[-1]["spec"])
    base = spec["base"]
    fronts = fronts_by_board(designs)
    front_keys = {d["key"] for front in fronts.values() for d in front}
    seconds = sum(r["seconds"] or 0 for r in runs)
    counts = {s: sum(1 for t in trials if t["status"] == s) for s in ("done", "failed", "pruned")}
    invocations = ", ".join(f"{r['status']} after {r['seconds'] or 0:.0f} s" for r in runs)
    loads = ", ".join(f"{r['load_start'] or 0:.1f}-{r['load_end'] or 0:.1f}" for r in runs)
    lines = [
        f"`{command}` on this 2-core machine, shared with other sessions' jobs (5-minute load average {loads} "
        "at the start and end of each invocation): "
        f"{len(trials)} trials ({counts['done']} done, {counts['failed']} failed, {counts['pruned']} pruned) in "
        f"{seconds / 60:.0f} min of wall time over {len(runs)} invocation(s) "
        f"({invocations}). "
        f"Data: {base['dataset']}"
        + (f", {base['can_duration']:g} s of synthetic traffic per attack type" if base["dataset"] == "can" else "")
        + f"; {base['epochs']} QAT epochs (float baseline as many, early-stopping patience {base['patience']}), "
          "shortened from qmlp train's defaults so the sweep fits the afternoon.",
        "",
        "Accuracy: the bit-accurate simulator (the RTL's arithmetic) on the whole test split. LUT ᵉ, latency ᵉ and "
        "energy ᵉ: qmlp's estimates (cycle model; power model at XPE's default toggle rate, dynamic energy per "
        "inference); LUT ʸ: Yosys netlist count (LUT + LUTRAM) for the checked front designs, whose RTL also matched "
        "the simulator bit for bit. ★ = on the Pareto front (accuracy, LUT, latency, energy) of its board.",
        "",
        "| weight bits | act bits | hidden | target | accuracy | LUT ᵉ | LUT ʸ | FF ᵉ | BRAM36 ᵉ | latency ᵉ (µs) | E dyn ᵉ (nJ) | front |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for d in sorted(designs, key=lambda d: (d["board"], ORDER.get(d["weights"], 9), d["acts"], d["hidden"],
                                            d["target_fps"])):
        yosys = f"{d['synth_lut']:,}" if d["synth_lut"] is not None else ""
        rtl = " (RTL ok)" if d["rtl_ok"] == 1 else ""
        lines.append(f"| {LABEL.get(d['weights'], d['weights'])} | {d['acts']} | {d['hidden']} | "
                     f"{d['board']} {fps_label(d['target_fps'])} | {d['accuracy']:.3%} | {d['lut']:,} | {yosys}{rtl} | "
                     f"{d['ff']:,} | {d['bram36']:g} | {d['latency_ns'] / 1e3:,.2f} | {d['energy_j'] * 1e9:,.1f} | "
                     f"{'★' if d['key'] in front_keys else ''} |")
    lines += ["", "Per weight precision (all activation widths and topologies):", "",
              "| weight bits | best accuracy | designs on the front | " +
              " | ".join(f"cheapest LUT ᵉ at ≥ {bar:.2%}" for bar in BARS) + " |",
              "|---|---:|---:|" + "---:|" * len(BARS)]
    for weights in sorted({d["weights"] for d in designs}, key=lambda w: ORDER.get(w, 9)):
        group = [d for d in designs if d["weights"] == weights]
        best = max(group, key=lambda d: d["accuracy"])
        cells = []
        for bar in BARS:
            ok = [d for d in group if d["accuracy"] >= bar]
            cheapest = min(ok, key=lambda d: d["lut"], default=None)
            cells.append(f"{cheapest['lut']:,} (a{cheapest['acts']}, {cheapest['hidden']})" if cheapest else "none")
        lines.append(f"| {LABEL.get(weights, weights)} | {best['accuracy']:.3%} (a{best['acts']}, {best['hidden']}) | "
                     f"{sum(1 for d in group if d['key'] in front_keys)} of {len(group)} | " + " | ".join(cells) + " |")
    failed = [t for t in trials if t["status"] != "done"]
    if failed:
        lines += ["", "Not done: " + "; ".join(f"{t['weights']} a{t['acts']} {t['hidden']}: {t['reason']}" for t in failed)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder of the sweep")
    parser.add_argument("--command", default="qmlp explore examples/explore_can.yaml", help="the command that ran it")
    parser.add_argument("--write", action="store_true", help=f"write the '{TITLE}' section of BENCHMARKS.md")
    args = parser.parse_args()
    body = section(args.out, args.command)
    print(body)
    if args.write:
        update_section(TITLE, body)


if __name__ == "__main__":
    main()
