"""`qmlp info MODEL.onnx|OUT [--json]`: per layer widths, data types, ternary sparsity and MACs
(totals agree with qonnx ``inference_cost``: all MACs, and nonzero-weight MACs)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from ..ir import Dataflow
from ..untrusted import printable
from ._model import open_dataflow

__all__ = ["add_arguments", "run", "summarize", "format_summary"]


def summarize(df: Dataflow) -> dict[str, Any]:
    """Per-layer and total figures of an IR as plain data."""
    layers = []
    for layer in df.layers:
        zeros = int(np.count_nonzero(layer.weights == 0))
        layers.append({
            "name": layer.name, "in_features": layer.in_features, "out_features": layer.out_features,
            "weight_dtype": layer.weight_dtype.name, "in_dtype": layer.in_dtype.name,
            "acc_dtype": layer.acc_dtype.name, "out_dtype": layer.out_dtype.name,
            "thresholds": 0 if layer.activation is None else layer.activation.steps,
            "zero_weights": zeros, "sparsity": zeros / layer.weights.size,
            "macs": int(layer.weights.size), "nonzero_macs": int(layer.weights.size - zeros),
            "pe": None if layer.folding is None else layer.folding.pe,
            "simd": None if layer.folding is None else layer.folding.simd,
        })
    return {
        "name": df.name, "input_shape": list(df.input_shape), "output_shape": list(df.output_shape),
        "input_dtype": df.input.dtype.name, "layers": layers,
        "total_macs": sum(l["macs"] for l in layers), "total_nonzero_macs": sum(l["nonzero_macs"] for l in layers),
        "weight_bits": sum(l["macs"] * df.layers[i].weight_dtype.bits for i, l in enumerate(layers)),
    }


def format_summary(summary: dict[str, Any]) -> str:
    folded = all(l.get("pe") is not None for l in summary["layers"])
    head = ("layer", "in", "out", "weights", "in type", "acc", "out type", "zeros", "MACs", "nonzero MACs") + (
        ("PE x SIMD",) if folded else ())
    rows = [head]
    for l in summary["layers"]:
        rows.append((printable(l["name"]), str(l["in_features"]), str(l["out_features"]), l["weight_dtype"], l["in_dtype"],
                     l["acc_dtype"], l["out_dtype"], f"{l['sparsity']:.1%}", str(l["macs"]), str(l["nonzero_macs"]))
                    + ((f"{l['pe']} x {l['simd']}",) if folded else ()))
    rows.append(("total", "", "", "", "", "", "", "", str(summary["total_macs"]), str(summary["total_nonzero_macs"]))
                + (("",) if folded else ()))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    title = (f"{printable(summary['name'])}: input {summary['input_dtype']} {tuple(summary['input_shape'])} -> "
             f"output {tuple(summary['output_shape'])}, {len(summary['layers'])} layers, "
             f"{summary['weight_bits']} weight bits")
    return "\n".join([title, *table, *_build_lines(summary.get("build"))])


def _build_lines(build: dict[str, Any] | None) -> list[str]:
    """What a compiled OUT adds: timing and resources (estimate, and Yosys counts with --synth)."""
    if not build:
        return []
    lines = []
    perf = build.get("performance")
    if perf:
        lines.append(f"timing (cycle model) at {perf['clock_mhz']:g} MHz: II {perf['ii_cycles']:g} cycles = "
                     f"{perf['throughput_fps']:,.0f} inferences/s (slowest layer {printable(str(perf['bottleneck']))}), latency "
                     f"{perf['latency_cycles']} cycles = {perf['latency_cycles'] / perf['clock_mhz']:.2f} us")
    est = build.get("estimate_resources")
    if est:
        lines.append("resources (analytical estimate): " + ", ".join(f"{v:g} {k}" for k, v in est.items()))
    synth = build.get("synth_resources")
    lines.append("resources (Yosys netlist): " + ", ".join(f"{v:g} {k}" for k, v in synth.items())
                 if synth else "resources (Yosys netlist): not run; compile with --synth")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.onnx|OUT", help="QONNX model or a compiled OUT directory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def build_summary(out_dir) -> dict[str, Any]:  # noqa: ANN001 - a Path
    """Timing and resources of a compiled OUT, from its reports (qmlp.build.Build)."""
    from dataclasses import asdict

    from ..build import Build

    reports = Build.open(out_dir, folded=False).reports
    keys = ("LUT", "FF", "BRAM36", "DSP")
    est = reports.layer_resources
    synth = reports.synth
    return {
        "performance": None if reports.performance is None else asdict(reports.performance),
        "estimate_resources": None if not est or "total" not in est else {k: est["total"][k] for k in keys if k in est["total"]},
        "synth_resources": None if not synth else {k: synth[k] for k in keys if k in synth},
    }


def run(args: argparse.Namespace) -> int:
    df, out_dir = open_dataflow(args.model)
    summary = summarize(df)
    if out_dir is not None:
        summary["build"] = build_summary(out_dir)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
