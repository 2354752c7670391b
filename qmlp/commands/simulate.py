"""`qmlp simulate MODEL.onnx|OUT --input X.npy --output Y.npy [--level ir|rtl]`: float inputs
in, float outputs out, the same values ``execute_onnx`` gives (via the bit-accurate IR model,
or through the compiled RTL in Verilator)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError, ToolError
from ..sim.bitaccurate import simulate, simulate_outputs
from ._model import load_inputs, open_dataflow, save_atomic

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.onnx|OUT", help="QONNX model or a compiled OUT directory")
    parser.add_argument("--input", required=True, metavar="X.npy", help="float inputs (batch, *input shape)")
    parser.add_argument("--output", required=True, metavar="Y.npy", help="where to write the float outputs")
    parser.add_argument("--level", choices=("ir", "rtl"), default="ir",
                        help="bit-accurate IR model (default) or the emitted RTL in Verilator (needs OUT)")
    parser.add_argument("--dump-layers", type=Path, default=None, metavar="L.npz",
                        help="also write every layer's integers (IR level): input, l<i>_acc, l<i>_out")


def run(args: argparse.Namespace) -> int:
    df, out_dir = open_dataflow(args.model)
    x = load_inputs(args.input, df)
    if args.level == "rtl":
        if out_dir is None:
            raise ConfigError(f"--level rtl needs a compiled OUT directory, not {args.model}; "
                              "run 'qmlp compile' first and pass its OUT")
        from ..build import Build

        try:
            y = Build.open(out_dir, folded=False).predict(x, level="rtl")
        except ImportError as error:
            raise ToolError(f"RTL simulation is not available in this installation ({error}); use --level ir") from None
    else:
        y = simulate_outputs(df, x)
    if args.dump_layers is not None:
        sim = simulate(df, x)
        arrays = {"input": sim.inputs}
        for i, (acc, out) in enumerate(zip(sim.accumulators, sim.activations)):
            arrays[f"l{i}_acc"], arrays[f"l{i}_out"] = acc, out
        save_atomic(args.dump_layers, arrays, option="--dump-layers")
        print(f"qmlp simulate: per-layer integers of {len(df.layers)} layers -> {args.dump_layers}")
    save_atomic(args.output, y)
    print(f"qmlp simulate: {len(x)} samples through {df.name} ({args.level}) -> {args.output} "
          f"{tuple(y.shape)} {y.dtype}")
    return 0
