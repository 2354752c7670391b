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
        })
    return {
        "name": df.name, "input_shape": list(df.input_shape), "output_shape": list(df.output_shape),
        "input_dtype": df.input.dtype.name, "layers": layers,
        "total_macs": sum(l["macs"] for l in layers), "total_nonzero_macs": sum(l["nonzero_macs"] for l in layers),
        "weight_bits": sum(l["macs"] * df.layers[i].weight_dtype.bits for i, l in enumerate(layers)),
    }


def format_summary(summary: dict[str, Any]) -> str:
    head = ("layer", "in", "out", "weights", "in type", "acc", "out type", "zeros", "MACs", "nonzero MACs")
    rows = [head]
    for l in summary["layers"]:
        rows.append((printable(l["name"]), str(l["in_features"]), str(l["out_features"]), l["weight_dtype"], l["in_dtype"],
                     l["acc_dtype"], l["out_dtype"], f"{l['sparsity']:.1%}", str(l["macs"]), str(l["nonzero_macs"])))
    rows.append(("total", "", "", "", "", "", "", "", str(summary["total_macs"]), str(summary["total_nonzero_macs"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    title = (f"{printable(summary['name'])}: input {summary['input_dtype']} {tuple(summary['input_shape'])} -> "
             f"output {tuple(summary['output_shape'])}, {len(summary['layers'])} layers, "
             f"{summary['weight_bits']} weight bits")
    return "\n".join([title, *table])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.onnx|OUT", help="QONNX model or a compiled OUT directory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    df, _ = open_dataflow(args.model)
    summary = summarize(df)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
