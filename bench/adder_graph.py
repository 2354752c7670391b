"""Fully parallel layers as constant adder graphs: qmlp (Unit.CONST, qmlp.hwgen.cmvm) against da4ml 0.6.0.

Per layer, out of context, with the same Yosys flow (``synth_xilinx -family xcup``, qmlp.hwgen.synth):

* ``qmlp graph``: the generated ``l<i>_graph`` module (the matrix product, registered for 200 MHz);
* ``qmlp shell``: ``l<i>_top`` with the graph as a black box (thresholds, handshake, output
  register); graph + shell = the whole layer as ``qmlp compile --target-fps max`` emits it;
* ``da4ml``: da4ml's Verilog for the same integer matrix and input format, pipelined with
  ``latency_cutoff`` = LATENCY_CUTOFF, run in its own venv (``make peers-da4ml``).

Cases: the shipped seed models (trained weights, ternary and int2) and, with random weights
(``qmlp.testing.random_dataflow``: INT2 weights, 2-bit activations, BIPOLAR inputs), FINN's
UNSW-NB15 MLP and the TFC shape. Jobs run smallest first; results are saved after each job, the
peer's in ``bench/results/adder_graph_da4ml.json`` (it does not depend on qmlp's graph algorithm,
so a later run reuses it) and qmlp's in ``bench/results/adder_graph.json``; the "Adder graphs"
section of BENCHMARKS.md is rendered from both.

    .venv/bin/python bench/adder_graph.py --side da4ml            # the peer, once
    .venv/bin/python bench/adder_graph.py --side qmlp --timeout 1500
    .venv/bin/python bench/adder_graph.py --render-only
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.benchmarks_md import update_section  # noqa: E402
from qmlp.datatypes import BIPOLAR, INT, UINT  # noqa: E402
from qmlp.errors import QmlpError  # noqa: E402
from qmlp.frontend import import_model  # noqa: E402
from qmlp.hwgen.cmvm import layer as cmvm_layer  # noqa: E402
from qmlp.hwgen.cmvm import render_graph_module  # noqa: E402
from qmlp.hwgen.cmvm.cost import graph_cost  # noqa: E402
from qmlp.hwgen.cmvm.digits import digit_counts  # noqa: E402
from qmlp.hwgen.cycles import cycle_model  # noqa: E402
from qmlp.hwgen.emit import emit_layer_rtl, emit_rtl  # noqa: E402
from qmlp.hwgen.estimate import estimate  # noqa: E402
from qmlp.hwgen.fold import fold  # noqa: E402
from qmlp.hwgen.plan import ThresholdUnit, build_plan, element_kind, graph_input_dtype, padded_weights  # noqa: E402
from qmlp.hwgen.synth import synthesize  # noqa: E402
from qmlp.hwgen.timing import design_timing  # noqa: E402
from qmlp.interface import TOP_MODULE  # noqa: E402
from qmlp.testing import random_dataflow  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "adder_graph.json"
PEER_RESULTS = ROOT / "bench" / "results" / "adder_graph_da4ml.json"
SECTION = "Adder graphs"
CLOCK_MHZ = 200.0
LATENCY_CUTOFF = 5.0
DA4ML = ROOT / ".venv-da4ml" / "bin" / "python"
CASES = ("seed-ternary", "seed-int2", "unsw-int2", "tfc-int2")


@lru_cache(maxsize=None)
def source_case(name: str):
    """The case's Dataflow as imported (no folding)."""
    if name.startswith("seed-"):
        return import_model(ROOT / "examples" / f"can_ids_{'ternary' if name == 'seed-ternary' else 'w2a2'}.onnx")
    widths = (600, 64, 64, 64, 1) if name == "unsw-int2" else (784, 64, 64, 64, 10)
    return random_dataflow(2024, widths=widths, weight_dtypes=INT(2), input_dtype=BIPOLAR, act_dtype=UINT(2),
                           name=name)


@lru_cache(maxsize=None)
def build_case(name: str):
    """The case folded fully parallel (every layer Unit.CONST) at CLOCK_MHZ, and its plan (built
    once: a plan of the seed network builds every graph, minutes on the shared cores)."""
    df = fold(source_case(name), target_fps="max", clock_mhz=CLOCK_MHZ)
    return df, build_plan(df)


def _kif(dtype) -> tuple[int, int]:
    """da4ml's (signed, integer bits) of an input element type (BIPOLAR values -1/+1)."""
    if dtype == BIPOLAR:
        return 1, 1  # da4ml's smallest format holding -1 and +1: signed, one integer bit
    return int(dtype.signed), dtype.bits - int(dtype.signed)


def _synth(rtl_dir: Path, top: str, timeout: float, blackbox: tuple[str, ...] = ()) -> dict:
    try:
        r = synthesize(rtl_dir, family="xcup", top=top, timeout=timeout, blackbox=blackbox)
    except QmlpError as error:
        return {"error": str(error)}
    return {"lut": r.lut + r.lutram, "lut_sites": r.lut_sites, "ff": r.ff, "carry": r.carry, "lut_levels": r.lut_levels,
            "carry_cells": r.carry_cells, "fmax_mhz": r.fmax_estimate_mhz, "seconds": r.seconds}


def compile_seconds(case: str, index: int) -> float:
    """Seconds to build the layer's graph from scratch (every candidate, cache cleared), schedule
    it and render its Verilog, as the plan does (``graph_input_dtype``: BIPOLAR inputs with an
    activation are read as their codes)."""
    df, hw = build_case(case)
    layer, plan = df.layers[index], hw.layers[index]
    cmvm_layer.clear_cache()
    start = time.perf_counter()
    compare = plan.threshold is not None and plan.threshold.unit is ThresholdUnit.COMPARE
    g_in = graph_input_dtype(layer)
    g = cmvm_layer.layer_graph(padded_weights(layer), g_in, activation=compare, clock_mhz=CLOCK_MHZ)
    render_graph_module("g", g.graph, g.schedule, in_bits=plan.in_bits, in_kind=element_kind(g_in),
                        acc_bits=plan.acc_bits)
    seconds = time.perf_counter() - start
    if g.graph != plan.graph.graph:  # the timed build must be the graph that is synthesized
        raise RuntimeError(f"{case} fc{index}: the rebuilt graph differs from the plan's")
    return seconds


def qmlp_job(case: str, index: int, kind: str, timeout: float) -> dict:
    """One qmlp row: the graph (timed from scratch) or the shell, synthesized out of context."""
    df, hw = build_case(case)
    layer, plan = df.layers[index], hw.layers[index]
    g = plan.graph
    cost = graph_cost(g.graph, g.schedule)
    row = {"adders": cost.adders, "depth": cost.depth, "k": g.schedule.k, "cycles": plan.latency,
           "model_lut": cost.lut, "model_ff": cost.ff, "shape": list(layer.weights.shape),
           "weights": str(layer.weight_dtype), "inputs": str(layer.in_dtype),
           "graph_inputs": str(graph_input_dtype(layer))}
    if kind == "graph":  # the shell job does not rebuild the graph (minutes on the UNSW/TFC fc0)
        row["compile_s"] = round(compile_seconds(case, index), 2)
    with tempfile.TemporaryDirectory(prefix="qmlp-ag-") as tmp:
        top, _ = emit_layer_rtl(df, index, tmp, hw)
        if kind == "graph":
            row["synth"] = _synth(Path(tmp), f"{plan.ident}_graph", timeout)
        else:
            row["synth"] = _synth(Path(tmp), top, timeout, blackbox=(f"{plan.ident}_graph",))
    return row


def top_job(case: str, timeout: float) -> dict:
    """The rest of the fully parallel top: ``qmlp_top`` as emitted, its adder graphs black boxes
    (each layer's shell, the FIFOs and width converters between layers, the AXI-Lite control).
    With the graphs' own rows it is the whole design, as ``qmlp compile --synth`` counts it."""
    df, hw = build_case(case)
    with tempfile.TemporaryDirectory(prefix="qmlp-ag-top-") as tmp:
        emit_rtl(df, tmp, hw)
        return {"synth": _synth(Path(tmp), TOP_MODULE, timeout, blackbox=tuple(f"{p.ident}_graph" for p in hw.layers))}


def da4ml_job(case: str, index: int, timeout: float) -> dict:
    layer = source_case(case).layers[index]
    n = layer.in_features
    k, i = _kif(layer.in_dtype)
    with tempfile.TemporaryDirectory(prefix="da4ml-ag-") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "layer.npz", w=layer.weights, k=np.full(n, k), i=np.full(n, i), f=np.zeros(n, dtype=np.int64))
        try:
            done = subprocess.run([str(DA4ML), str(ROOT / "bench" / "da4ml_layer.py"), str(tmp / "layer.npz"),
                                   str(tmp / "prj"), f"fc{index}", str(LATENCY_CUTOFF)],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"da4ml did not finish within {timeout:g} s"}
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "da4ml failed"}
        row = json.loads(done.stdout.strip().splitlines()[-1])
        flat = tmp / "flat"
        flat.mkdir()
        for p in [*(tmp / "prj" / "src").glob("*.v"), *(tmp / "prj" / "src" / "static").glob("*.v")]:
            if not p.name.endswith("_wrapper.v"):
                shutil.copy(p, flat / p.name)
        row["cycles"] = row["stages"] + 1  # one register bank per stage boundary, input and output registers
        row["shape"] = list(layer.weights.shape)
        row["synth"] = _synth(flat, f"fc{index}", timeout)
    return row


def failed(row: dict) -> bool:
    """A saved row without a result (timed out, or the tool failed): the next run tries it again."""
    return "error" in row or "error" in row.get("synth", {})


def jobs_for(cases: list[str], side: str) -> list[tuple[str, str, int, str]]:
    """(case, tool, layer, kind), smallest layer first (signed digits of its weights); layer -1
    with kind "top" is the whole top's remainder (``top_job``)."""
    jobs = []
    for name in cases:
        total = 0
        for index, layer in enumerate(source_case(name).layers):
            size = int(digit_counts(np.asarray(layer.weights)).sum())
            total += size
            if side in ("qmlp", "both"):
                jobs += [(size, name, "qmlp", index, "shell"), (size, name, "qmlp", index, "graph")]
            if side in ("da4ml", "both"):
                jobs.append((size, name, "da4ml", index, "graph"))
        if side in ("qmlp", "both"):  # the whole top's remainder, after its largest layer
            jobs.append((total, name, "qmlp", -1, "top"))
    return [job[1:] for job in sorted(jobs)]


def network_rows(cases, planned) -> dict:
    """Per case: its layers' shapes; for the ``planned`` cases (qmlp ran on them) also the
    whole-network latency (cycle model of the fully parallel top), the estimated LUTs of its
    FIFOs and control (not in the per-layer runs) and each layer's counted graph LUTs (shown for
    layers the run did not synthesize). The others stay unplanned: their graphs take minutes."""
    out = {}
    for name in cases:
        layers = source_case(name).layers
        out[name] = {"layers": len(layers), "shapes": [list(layer.weights.shape) for layer in layers],
                     "cycles": None, "glue_lut": None, "plan_fmax": None, "model": [None] * len(layers)}
        if name in planned:
            df, hw = build_case(name)
            out[name].update(cycles=cycle_model(hw).latency, glue_lut=estimate(df, hw=hw).glue_lut,
                             plan_fmax=design_timing(hw, "xcup").fmax_mhz,
                             model=[graph_cost(p.graph.graph, p.graph.schedule).lut for p in hw.layers])
    return out


def _cycles(n) -> str:
    return "–" if n is None else f"{n} cycles = {n * 1000 / CLOCK_MHZ:g} ns (whole top, cycle model)"


def _fmt(v) -> str:
    return "–" if v is None else (f"{v:,.0f}" if isinstance(v, (int, float)) else str(v))


def render(results: dict, peer: dict, networks: dict) -> str:
    def get(case, tool, i, kind, key):
        row = (peer if tool == "da4ml" else results).get(f"{case}|{tool}|{i}|{kind}", {})
        return row.get("synth", {}).get(key) if key in ("lut", "ff", "fmax_mhz", "seconds") else row.get(key)

    def secs(v):
        return "–" if v is None else f"{v:.2f} s"

    lines = [
        "Fully parallel layers (one inference per clock) as constant adder graphs (`Unit.CONST`,",
        "`qmlp.hwgen.cmvm`) against da4ml 0.6.0 on the same integer matrices and input formats. Every LUT/FF",
        "figure is a Yosys 0.70 netlist count (`synth_xilinx -family xcup`, LUT includes LUTRAM), **per layer out",
        "of context**; network rows are sums of the layers. *graph* = the matrix product alone (qmlp's",
        "`l<i>_graph`, da4ml's pipelined module); *layer* = qmlp's graph + its shell (thresholds, handshake,",
        "output register) as `qmlp compile --target-fps max` emits it. fmax is `qmlp.hwgen.synth`'s estimate from",
        f"the Yosys logic depth (no place and route), 200 MHz target; da4ml pipelined with `latency_cutoff={LATENCY_CUTOFF:g}`.",
        "Cycles: qmlp layer = graph register banks + threshold-search levels + output register (no input register:",
        "the graph reads a register slice or the layer before); da4ml = its stages + input and output registers. Depth = adder levels. Compile =",
        "graph construction + Verilog (qmlp, Python, every candidate graph) / trace + Verilog (da4ml, C++ core).",
        "Seed cases: the shipped trained models; UNSW/TFC: random INT2 weights, BIPOLAR inputs (qmlp's fc0 graph",
        "reads their 0/1 codes and its thresholds absorb the row constants, `plan.counted_form`; da4ml gets the",
        "values -1/+1, signed with one integer bit, and its graph computes the dot product itself). The da4ml rows",
        f"come from `{PEER_RESULTS.relative_to(ROOT)}` (run once with `--side da4ml`; they do not depend on qmlp).",
        "Measured by `bench/adder_graph.py` on the 2-core build machine, shared with other jobs: every qmlp",
        "row, the whole-top rows included, from one run (`--side qmlp --fresh`, all four cases); da4ml's",
        "TFC fc0 was not run (its trace and Yosys take longer than that whole run).",
        "",
        "| case | layer | shape | qmlp graph LUT | da4ml LUT | qmlp layer LUT | qmlp FF (graph+shell) | da4ml FF "
        "| depth qmlp / da4ml | cycles qmlp / da4ml | fmax qmlp / da4ml | counted LUT | compile qmlp / da4ml |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|---|---:|---|",
    ]
    summary: dict[str, dict] = {}
    for case in CASES:
        net = networks.get(case)
        if net is None:
            continue
        tot = {"q": 0, "d": 0, "l": 0, "qf": 0}
        have = {"q": 0, "d": 0, "l": 0}
        fmaxes = []
        for i in range(net["layers"]):
            qg, dg, qs = get(case, "qmlp", i, "graph", "lut"), get(case, "da4ml", i, "graph", "lut"), \
                get(case, "qmlp", i, "shell", "lut")
            qff = None if qg is None or qs is None else get(case, "qmlp", i, "graph", "ff") + get(case, "qmlp", i, "shell", "ff")
            layer = None if qg is None or qs is None else qg + qs
            mark = "" if qg is None or dg is None else (" ✓" if qg <= dg else " ✗")
            fmaxes += [f for f in (get(case, "qmlp", i, "graph", "fmax_mhz"), get(case, "qmlp", i, "shell", "fmax_mhz"))
                       if f is not None]
            lines.append(
                f"| {case} | fc{i} | {'x'.join(map(str, net['shapes'][i]))} | {_fmt(qg)}{mark} | {_fmt(dg)} | "
                f"{_fmt(layer)} | {_fmt(qff)} | {_fmt(get(case, 'da4ml', i, 'graph', 'ff'))} | "
                f"{_fmt(get(case, 'qmlp', i, 'graph', 'depth'))} / {_fmt(get(case, 'da4ml', i, 'graph', 'depth'))} | "
                f"{_fmt(get(case, 'qmlp', i, 'graph', 'cycles'))} / {_fmt(get(case, 'da4ml', i, 'graph', 'cycles'))} | "
                f"{_fmt(get(case, 'qmlp', i, 'graph', 'fmax_mhz'))} / {_fmt(get(case, 'da4ml', i, 'graph', 'fmax_mhz'))} | "
                f"{_fmt(net['model'][i])} | {secs(get(case, 'qmlp', i, 'graph', 'compile_s'))} / "
                f"{secs(get(case, 'da4ml', i, 'graph', 'compile_s'))} |")
            for key, v in (("q", qg), ("d", dg), ("l", layer), ("qf", qff)):
                if v is not None:
                    tot[key] += v
                    have[key] = have.get(key, 0) + 1
        n = net["layers"]
        done = {key: have[key] == n for key in ("q", "d", "l")}
        label = lambda key: f"**{tot[key]:,}**" if done[key] else f"{tot[key]:,} ({have[key]} of {n})"  # noqa: E731
        lines.append(f"| {case} | **network** | {n} layers | {label('q')} | {label('d')} | {label('l')} | {tot['qf']:,} "
                     f"| – | – | {_cycles(net['cycles'])} | – | – | – |")
        top = results.get(f"{case}|qmlp|-1|top", {}).get("synth", {})
        summary[case] = {"top_sites": top.get("lut_sites"), "graph_lut": tot["q"] if done["q"] else None,
                         "complete": done["l"], "layer_lut": tot["l"], "cycles": net["cycles"], "glue": net["glue_lut"],
                         "fmax": min(fmaxes + [top["fmax_mhz"]] if "fmax_mhz" in top else fmaxes, default=None),
                         "plan_fmax": net.get("plan_fmax"), "measured": have["l"], "layers": n,
                         "per_layer": [(i, get(case, "qmlp", i, "graph", "lut"), get(case, "da4ml", i, "graph", "lut"))
                                       for i in range(n)]}
    if any(not s["complete"] for s in summary.values()) or any(
            q is None or d is None for s in summary.values() for _, q, d in s["per_layer"]):
        lines += ["", "A – marks a layer not synthesized in this run (stopped for time: Yosys on the largest layers",
                  "takes many minutes on the shared cores); *counted LUT* is qmlp's count on the graph (`cmvm.cost`)."]
    lines += ["", "Goals of issue 17 (from the rows above):", ""]
    for case, budget in (("seed-ternary", 45_000), ("seed-int2", 65_000)):
        got = summary.get(case)
        if not got:
            continue
        if got["cycles"] is None:
            continue
        ns = got["cycles"] * 1000 / CLOCK_MHZ
        state = ("met" if got["layer_lut"] <= budget else "not met") if got["complete"] else "incomplete run"
        latency = f"latency {ns:g} ns" + (" against <= 100" if case == "seed-ternary" else "")
        measured = "" if got["complete"] else f"; {got['measured']} of {got['layers']} layers measured"
        if got["top_sites"] is not None and got["graph_lut"] is not None:
            whole = got["graph_lut"] + got["top_sites"]
            state = "met" if whole <= budget else "not met"
            lines.append(f"- {case}: whole design {whole:,} Yosys LUT sites: the adder graphs out of context "
                         f"({got['graph_lut']:,}) plus the rest of `qmlp_top` with the graphs as black boxes "
                         f"({got['top_sites']:,} LUT sites: shells with thresholds, the stream buffers, AXI-Lite "
                         f"control; a RAM32M16 cell counted as the 8 LUT sites it fills), the split "
                         f"`qmlp compile --synth` uses; the layers alone (graph + shell) sum to "
                         f"{got['layer_lut']:,}. Against <= {budget:,}: {state}; estimated fmax "
                         f"{_fmt(got['fmax'])} MHz from the netlists' depth (slowest of the layers' parts and the "
                         f"top's remainder), {_fmt(got['plan_fmax'])} MHz by the plan's timing model, against >= 200; "
                         f"{latency}.")
            continue
        lines.append(f"- {case}: whole network {got['layer_lut']:,} Yosys LUT including thresholds (layers out of "
                     f"context, summed{measured}; the FIFOs and AXI-Lite control between them add ~{got['glue']:,} "
                     f"LUT by the estimate) against <= {budget:,}: {state}; estimated fmax (slowest layer "
                     f"part) {_fmt(got['fmax'])} MHz against >= 200; {latency}.")
    pairs = [(case, i, q, d) for case, got in summary.items() for i, q, d in got["per_layer"]
             if q is not None and d is not None]
    worse = [f"{case} fc{i} ({q:,} vs {d:,})" for case, i, q, d in pairs if q > d]
    lines.append(f"- per layer <= da4ml's LUT: {len(pairs) - len(worse)} of {len(pairs)} layers measured on both sides"
                 + (f"; above da4ml: {', '.join(worse)}." if worse else "."))
    return "\n".join(lines) + "\n"


def _load(path: Path, keep: bool) -> dict:
    return json.loads(path.read_text()) if keep and path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--side", choices=("qmlp", "da4ml", "both"), default="qmlp",
                        help="which tool's jobs to run (da4ml's results are kept and reused)")
    parser.add_argument("--fresh", action="store_true", help="drop saved results of the side being run")
    parser.add_argument("--timeout", type=float, default=3600, help="Yosys time limit per job, seconds")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    results = _load(RESULTS, not (args.fresh and args.side in ("qmlp", "both")))
    peer = _load(PEER_RESULTS, not (args.fresh and args.side in ("da4ml", "both")))
    if not args.render_only:
        for case, tool, index, kind in jobs_for(args.cases, args.side):
            key = f"{case}|{tool}|{index}|{kind}"
            store, path = (peer, PEER_RESULTS) if tool == "da4ml" else (results, RESULTS)
            if key in store and not failed(store[key]):
                continue
            start = time.perf_counter()
            if kind == "top":
                store[key] = top_job(case, args.timeout)
            else:
                store[key] = (qmlp_job(case, index, kind, args.timeout) if tool == "qmlp"
                              else da4ml_job(case, index, args.timeout))
            print(f"{key}: {json.dumps(store[key].get('synth', store[key]))} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
        if args.side == "da4ml":
            return
    # plans are built only for cases whose every graph was measured (a plan builds all its graphs)
    planned = {case for case in CASES if all(f"{case}|qmlp|{i}|graph" in results and not failed(results[f"{case}|qmlp|{i}|graph"])
                                               for i in range(len(source_case(case).layers)))}
    update_section(SECTION, render(results, peer, network_rows(CASES, planned)))


if __name__ == "__main__":
    main()
