"""``python3 -m qmlp_driver --input X.npy --output Y.npy [--argmax] [--batch-size N]``: float inputs
shaped like the ONNX input through the accelerator; prints the hardware counters afterwards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .accelerator import Accelerator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m qmlp_driver", description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--argmax", action="store_true", help="write the index of the largest output")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--bitfile", type=Path, default=None)
    args = parser.parse_args(argv)
    acc = Accelerator(args.bitfile, batch_size=args.batch_size)
    acc.identify()
    acc.clear_counters()
    y = acc.predict(np.load(args.input), argmax=args.argmax)
    np.save(args.output, y)
    print(f"{len(y)} inferences; counters {acc.counters()}; last latency {acc.latency_us():.3f} us")
    acc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
