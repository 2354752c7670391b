"""`qmlp trace MODEL.onnx|OUT --input X.npy [-o DIR] [--json]`: per quantizer and layer, the
range the integers reach, the share clipped, codes never used and dead channels, with findings in
words (qmlp.sim.trace); writes trace.json, summary.txt and a PNG per layer into DIR."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from ..errors import ConfigError
from ._model import load_inputs, open_dataflow

__all__ = ["add_arguments", "run", "default_dir"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.onnx|OUT", help="QONNX model or a compiled OUT directory")
    parser.add_argument("--input", required=True, metavar="X.npy", help="float inputs (batch, *input shape): real data")
    parser.add_argument("-o", "--out", type=Path, default=None, metavar="DIR",
                        help="where trace.json, summary.txt and the PNGs go (default OUT/report/trace, "
                             "or build/<model stem>-trace for a model)")
    parser.add_argument("--json", action="store_true", help="print trace.json instead of the summary")


def default_dir(model: str | Path, out_dir: Path | None) -> Path:
    return out_dir / "report" / "trace" if out_dir is not None else Path("build") / f"{Path(model).stem}-trace"


def run(args: argparse.Namespace) -> int:
    from ..sim.trace import trace, write_trace

    df, out_dir = open_dataflow(args.model)
    x = load_inputs(args.input, df)
    result = trace(df, x)
    target = args.out or default_dir(args.model, out_dir)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / "trace.json").is_file())):
        raise ConfigError(f"-o {target}: exists and is not an earlier trace folder; choose an empty or new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write_trace(result, scratch, df, x)
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result.to_json(), indent=2) if args.json else result.summary())
    if not args.json:
        print(f"wrote {target}/ (trace.json, summary.txt, input.png, layer0.png ...)")
    return 0
