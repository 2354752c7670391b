"""`qmlp verify MODEL.onnx|OUT [--samples N] [--seed S]`: QONNX ``execute_onnx`` reference vs
the bit-accurate simulator on inputs that cover the whole input quantizer; for a compiled OUT
directory, the RTL check in ``qmlp.sim.verify_rtl``. Exit 1 on any disagreement beyond the
DESIGN.md rule (integer activations identical except float32 ties on a threshold)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ToolError
from ..frontend import import_model, load_model
from ..sim.bitaccurate import simulate
from ..untrusted import printable
from ._options import SEED_MAX, in_range
from ..sim.reference import OUTPUT_RTOL, Agreement, compare, run_reference, sample_inputs

__all__ = ["add_arguments", "run", "verify_model", "format_agreement", "MAX_SAMPLES"]

# Vectors per run: the simulator keeps every layer's activations (~8 bytes x channels each), so
# this bounds the memory a typo like --samples 100000000000 can ask for.
MAX_SAMPLES = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.onnx|OUT", help="QONNX model, or an OUT directory from 'qmlp compile'")
    parser.add_argument("--samples", type=int, default=1000, help="random input vectors (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the input vectors")


def verify_model(path: str | Path, samples: int, seed: int = 0) -> Agreement:
    """Reference vs simulator on ``samples`` inputs from ``sample_inputs``."""
    model = load_model(path)
    df = import_model(path)
    x = sample_inputs(df, samples, seed)
    return compare(model, df, run_reference(model, x), simulate(df, x))


def format_agreement(result: Agreement) -> str:
    rows = [("layer", "values", "mismatches", "rate", "ties", "propagated", "unexplained")]
    rows.append(("input", "-", str(result.input_mismatches), "-", "-", "-", str(result.input_mismatches)))
    for layer in result.layers:
        rows.append((printable(layer.name), str(layer.compared), str(layer.mismatches), f"{layer.rate:.3%}", str(layer.ties),
                     str(layer.propagated), str(layer.unexplained)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    verdict = "ok" if result.output_ok else f"beyond rtol {OUTPUT_RTOL:g}"
    lines.append(f"outputs: max |reference - simulator| = {result.max_abs_diff:.3g} ({verdict})")
    return "\n".join(lines)


def _verify_compiled(out_dir: Path, samples: int, seed: int) -> int:
    try:
        from ..sim.verify_rtl import verify_compiled
    except ImportError as error:
        raise ToolError(f"RTL verification is not available in this installation ({error}); "
                        "verify the ONNX model instead") from None
    result = verify_compiled(out_dir, samples=samples, seed=seed)
    if isinstance(result, bool) or not isinstance(result, int):
        return 0 if getattr(result, "ok", result) else 1
    return result


def run(args: argparse.Namespace) -> int:
    in_range("--samples", args.samples, 1, MAX_SAMPLES, " (run several seeds for more)")
    in_range("--seed", args.seed, 0, SEED_MAX)
    target = Path(args.model)
    if target.is_dir():
        return _verify_compiled(target, args.samples, args.seed)
    result = verify_model(target, args.samples, args.seed)
    print(f"qmlp verify: {target.name}: QONNX execute_onnx vs bit-accurate simulator, "
          f"{result.samples} samples (seed {args.seed})")
    print(format_agreement(result))
    print("PASS" if result.ok else "FAIL: the simulator disagrees with the QONNX reference")
    return 0 if result.ok else 1
