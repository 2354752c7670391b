"""``OUT/summary.md``, the plots and ``OUT/best/<board>/``, from the results store alone
(``qmlp explore --report OUT`` writes them again without running anything): the Pareto table per
board, every design, the pruned and failed trials with their reasons, accuracy-LUT and
accuracy-latency scatter plots with the front highlighted and one colour per weight precision,
and a copy of the chosen design's compile folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from .files import scratch, swap_in
from .pareto import fronts_by_board, pareto_front, select_best, usable
from .spec import fps_label
from .store import STORE_NAME, Store

__all__ = ["write_report", "summary_markdown", "plot_fronts", "SUMMARY", "PLOTS"]

SUMMARY = "summary.md"
PLOTS = {"lut": "accuracy_lut.png", "latency_ns": "accuracy_latency.png"}
_WEIGHT_COLOURS = {"bipolar": "tab:purple", "ternary": "tab:green", "int2": "tab:blue", "int3": "tab:orange",
                   "int4": "tab:red"}
_ACT_MARKERS = {1: "v", 2: "o", 3: "s", 4: "D", 8: "*"}


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _check(d: Mapping[str, Any]) -> str:
    if d.get("check_status") is None:
        return "-"
    if d["check_status"] != "done":
        return f"FAILED: {d['check_reason']}"
    parts = []
    if d.get("synth_lut") is not None:
        timing = "≥" if d["fmax_mhz"] >= d["clock_mhz"] else "< (too slow)"
        parts.append(f"Yosys fits, fmax ~{d['fmax_mhz']:.0f} MHz ᵉ {timing} {d['clock_mhz']:g} MHz clock")
    if d.get("rtl_ok") is not None:
        parts.append(f"RTL == sim ({d['rtl_samples']} vectors, latency {d['rtl_latency_cycles']} cyc)")
    return "; ".join(parts) or "compiled"


def _table(designs: Sequence[Mapping[str, Any]], front_keys: set[str]) -> list[str]:
    lines = ["| | weights | acts | in bits | hidden | target | accuracy | LUT ᵉ | LUT ʸ | FF ᵉ | BRAM36 ᵉ | DSP ᵉ "
             "| II (cyc) | latency ᵉ | E dyn/inf ᵉ | E total/inf ᵉ | check |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for d in designs:
        yosys = f"{d['synth_lut']:,}" if d.get("synth_lut") is not None else "-"
        lines.append(
            f"| {'★' if d['key'] in front_keys else ''} | {d['weights']} | {d['acts']} | {d['input_bits']} | {d['hidden']} "
            f"| {fps_label(d['target_fps'])} | {d['accuracy']:.3%} | {d['lut']:,} | {yosys} | {d['ff']:,} | {d['bram36']:g} "
            f"| {d['dsp']} | {d['ii_cycles']:,.0f} | {_si(d['latency_ns'] * 1e-9, 's')} | {_si(d['energy_j'], 'J')} "
            f"| {_si(d['energy_total_j'], 'J')} | {_check(d)} |")
    return lines


def _best_rule(spec: Mapping[str, Any] | None) -> tuple[float | None, str]:
    best = (spec or {}).get("best") or {}
    return best.get("min_accuracy"), best.get("minimize", "lut")


def summary_markdown(store: Store) -> str:
    """The whole summary page, from the store's tables."""
    run = store.last_run() or {}
    spec = json.loads(run["spec"]) if run.get("spec") else None
    trials = store.rows("trials", "ORDER BY key")
    designs = store.joined_designs()
    counts = {s: sum(1 for t in trials if t["status"] == s) for s in ("done", "failed", "pruned")}
    dataset = spec["base"]["dataset"] if spec else (trials[0]["dataset"] if trials else "?")
    lines = [f"# qmlp explore: {run.get('spec_path', '?')}", "",
             f"Dataset `{dataset}`; {len(trials)} trials in the store: {counts['done']} done, {counts['failed']} failed, "
             f"{counts['pruned']} pruned by successive halving; {len(designs)} designs built.",
             f"Last run: started {run.get('started', '?')}, {run.get('status', '?')} after {run.get('seconds') or 0:,.0f} s "
             f"(qmlp {run.get('qmlp_version', '?')}). Command: `{run.get('command') or '-'}`.", "",
             f"Everything below is computed from `{STORE_NAME}` alone (`qmlp explore --report DIR` rewrites it); "
             "open the store with pandas: `pandas.read_sql('select * from designs', sqlite3.connect(path))`.", ""]
    min_accuracy, minimize = _best_rule(spec)
    fronts = fronts_by_board(designs)
    chosen = _best(store)
    for board, front in fronts.items():
        ordered = sorted(front, key=lambda d: (-d["accuracy"], d["lut"], d["key"]))
        lines += [f"## Pareto front: {board}", "",
                  "Objectives: accuracy ↑ (bit-accurate simulator = the RTL's arithmetic, whole test split), "
                  "LUT ↓, latency ↓, dynamic energy per inference ↓. "
                  f"{len(front)} of {sum(1 for d in designs if d['board'] == board)} designs are on the front.", ""]
        lines += _table(ordered, {d["key"] for d in front})
        best = chosen.get(board)
        rule = (f"the lowest {minimize} with accuracy >= {min_accuracy:.2%}" if min_accuracy is not None
                else f"the most accurate, ties to the lowest {minimize}")
        lines += ["", f"Best design ({rule}, among the checked front designs whose fmax estimate reaches the clock): "
                  + (f"{best['weights']} a{best['acts']} {best['hidden']} at {fps_label(best['target_fps'])}, "
                     f"accuracy {best['accuracy']:.3%}, folder `best/{board}/` (a copy of `{best['folder']}/`)."
                     if best else "none (no checked front design qualifies)."), ""]
    for board in fronts:
        front_keys = {d["key"] for d in fronts[board]}
        ordered = sorted((d for d in designs if d["board"] == board), key=lambda d: (-d["accuracy"], d["lut"], d["key"]))
        lines += [f"## All designs: {board}", "", "★ = on the Pareto front.", ""] + _table(ordered, front_keys) + [""]
    failed_designs = store.rows("designs", "WHERE status != 'done' ORDER BY key")
    others = [t for t in trials if t["status"] != "done"]
    if others or failed_designs:
        lines += ["## Pruned and failed", "", "| what | status | reason |", "|---|---|---|"]
        lines += [f"| {t['weights']} a{t['acts']} i{t['input_bits']} {t['hidden']} | {t['status']} | {t['reason']} |"
                  for t in others]
        label = {t["key"]: f"{t['weights']} a{t['acts']} i{t['input_bits']} {t['hidden']}" for t in trials}
        lines += [f"| {label.get(d['trial'], d['trial'])} on {d['board']} at {fps_label(d['target_fps'])} | design "
                  f"{d['status']} | {d['reason']} |" for d in failed_designs]
        lines.append("")
    lines += ["## Plots", "", f"![accuracy vs LUT]({PLOTS['lut']})", "", f"![accuracy vs latency]({PLOTS['latency_ns']})",
              "", "## What is measured and what is estimated", "",
              "- accuracy: measured, the bit-accurate simulator on the data set's whole test split (the simulator "
              "equals `execute_onnx` on every trial's verify run, and equals the RTL on the checked designs);",
              "- ᵉ LUT/FF/BRAM/DSP, II and latency: qmlp's analytical estimate (cycle model of the RTL) at the "
              "target; ʸ LUT: Yosys `synth_xilinx` netlist count (LUT + LUTRAM), front designs only;",
              "- ᵉ energy per inference: qmlp's power model (accelerator only, XPE's default 12.5% toggle rate, "
              "estimated resources) x one initiation interval; dynamic = the design's own, total adds the part's "
              "static power; an estimate, not a measurement;",
              "- fmax: estimated from the Yosys logic depth with rule-of-thumb delays (no open timing for the part).",
              ""]
    return "\n".join(lines)


def plot_fronts(designs: Sequence[Mapping[str, Any]], metric: str, path: Path) -> None:
    """Accuracy against ``metric`` (lut or latency_ns), one panel per board, one colour per weight
    type, one marker per activation width; designs on the 4-objective front ringed in black, the
    front of this plane alone drawn as a dashed staircase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fronts = fronts_by_board(designs)
    boards = list(fronts) or ["(no designs)"]
    fig, axes = plt.subplots(1, len(boards), figsize=(6.5 * len(boards), 4.8), squeeze=False)
    for ax, board in zip(axes[0], boards):
        group = [d for d in designs if d["board"] == board]
        front = {d["key"] for d in fronts.get(board, [])}
        for d in group:
            on = d["key"] in front
            ax.scatter(d[metric] * (1e-3 if metric == "latency_ns" else 1), d["accuracy"] * 100,
                       c=_WEIGHT_COLOURS.get(d["weights"], "tab:gray"), marker=_ACT_MARKERS.get(d["acts"], "o"),
                       s=70 if on else 30, edgecolors="black" if on else "none", linewidths=1.2, alpha=1.0 if on else 0.55,
                       zorder=3 if on else 2)
        # the front in this plane alone (accuracy vs the metric), as a staircase
        plane = sorted((group[i] for i in pareto_front(group, (("accuracy", +1), (metric, -1)))), key=lambda d: d[metric])
        ax.step([d[metric] * (1e-3 if metric == "latency_ns" else 1) for d in plane],
                [d["accuracy"] * 100 for d in plane], where="post", color="black", lw=0.8, ls="--", zorder=1)
        values = [d[metric] for d in group if d[metric] > 0]
        if values and max(values) > 20 * min(values):
            ax.set_xscale("log")
        ax.set(xlabel="LUT (estimate)" if metric == "lut" else "latency, µs (estimate)", ylabel="accuracy, %",
               title=f"{board}: accuracy vs {'LUT' if metric == 'lut' else 'latency'}")
        ax.grid(alpha=0.3, which="both")
    handles = [Line2D([], [], ls="", marker="o", color=c, label=w) for w, c in _WEIGHT_COLOURS.items()
               if any(d["weights"] == w for d in designs)]
    handles += [Line2D([], [], ls="", marker=m, color="gray", label=f"{a}-bit acts") for a, m in _ACT_MARKERS.items()
                if any(d["acts"] == a for d in designs)]
    handles.append(Line2D([], [], ls="", marker="o", color="white", mec="black", label="on the 4-objective Pareto front"))
    handles.append(Line2D([], [], ls="--", color="black", label="front in this plane"))
    axes[0][-1].legend(handles=handles, fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _atomic_write(path: Path, text: str | None = None, plot: tuple | None = None) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        if plot is not None:
            plot_fronts(*plot, tmp)
        else:
            tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _best(store: Store) -> dict[str, Mapping[str, Any]]:
    """Board -> the design the spec's ``best`` rule picks among the usable front designs."""
    run = store.last_run() or {}
    min_accuracy, minimize = _best_rule(json.loads(run["spec"]) if run.get("spec") else None)
    chosen = {}
    for board, front in fronts_by_board(store.joined_designs()).items():
        best = select_best([d for d in front if usable(d)], min_accuracy=min_accuracy, minimize=minimize)
        if best is not None:
            chosen[board] = best
    return chosen


def _copy_best(out: Path, board: str, design: Mapping[str, Any]) -> Path:
    """OUT/best/<board>/: a copy of the design's compile folder plus explore_choice.json, swapped
    in whole (a temporary sibling renamed into place)."""
    target = out / "best" / board
    tmp = scratch(target)
    shutil.copytree(out / design["folder"], tmp)
    (tmp / "explore_choice.json").write_text(json.dumps(
        {"design": design["key"], "trial": design["trial"], "folder": design["folder"],
         "accuracy": design["accuracy"]}, indent=1) + "\n")
    swap_in(tmp, target)
    return target


def write_report(out: str | Path) -> list[Path]:
    """From OUT/explore.sqlite alone: OUT/summary.md, the plots, and OUT/best/<board>/ for each
    board with a usable front design. Returns the summary, the plots, then the best folders."""
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"--report {out}: no such folder; give the output folder of a 'qmlp explore' run")
    with Store(out / STORE_NAME, create=False) as store:
        text = summary_markdown(store)
        designs = store.joined_designs()
        chosen = _best(store)
    files = [out / SUMMARY]
    _atomic_write(out / SUMMARY, text=text + "\n")
    for metric, name in PLOTS.items():
        _atomic_write(out / name, plot=(designs, metric))
        files.append(out / name)
    if (out / "best").is_dir():
        for stale in [p for p in (out / "best").iterdir() if p.is_dir() and p.name not in chosen]:
            shutil.rmtree(stale)  # a board whose choice went away keeps no old folder
    # a store copied without its folders (to share the results) still gets its summary and plots
    files += [_copy_best(out, board, design) for board, design in chosen.items() if (out / design["folder"]).is_dir()]
    return files
