"""`qmlp train`: quantization-aware training with Brevitas, exported to QONNX (see qmlp.quantize)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..errors import ConfigError
from ..quantize import WEIGHT_RECIPES

__all__ = ["add_arguments", "run"]


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated layer widths like 256,128,64,32") from None
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: layer widths must be positive integers")
    return widths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=("can", "digits", "mnist", "unsw", "npz"))
    parser.add_argument("--weights", default="ternary", choices=WEIGHT_RECIPES,
                        help="weight recipe: ternary (1.58-bit), int2, int3, int4, bipolar (default ternary)")
    parser.add_argument("--acts", type=int, default=2,
                        help="activation bits, 1..4 or 8; 2..8 = quantized ReLU, 1 = sign {-1,+1} (default 2)")
    parser.add_argument("--input-bits", type=int, default=8, help="input quantizer bits: 1 or 2..8 (default 8)")
    parser.add_argument("--hidden", type=_hidden, default=(256, 128, 64, 32), help="hidden widths (default 256,128,64,32)")
    parser.add_argument("--epochs", type=int, default=20, help="QAT epochs (default 20)")
    parser.add_argument("--float-epochs", type=int, default=None, help="float baseline epochs (default: --epochs)")
    parser.add_argument("--batch-size", type=int, default=256, help="mini-batch size (default 256)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate, cosine-annealed (default 5e-3)")
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data generation, split, init and shuffling")
    parser.add_argument("--data", type=Path, default=None,
                        help="can: HCRL CSV file or directory of them; unsw: unsw_nb15_binarized.npz; npz: your data set")
    parser.add_argument("--can-duration", type=float, default=60.0, help="synthetic CAN seconds per attack type (default 60)")
    parser.add_argument("--can-stride", type=int, default=1, help="frames between CAN window starts (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: cores are shared)")
    parser.add_argument("--vectors", type=int, default=0, help="also write N test vectors to <model>.npz")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-o", "--output", type=Path, required=True, help="model file to write (.onnx)")


def run(args: argparse.Namespace) -> int:
    from ..quantize.pipeline import TrainOptions, run_training

    if args.vectors < 0:
        raise ConfigError(f"--vectors {args.vectors}: must be >= 0")
    opts = TrainOptions(
        dataset=args.dataset, output=args.output, weights=args.weights, acts=args.acts, input_bits=args.input_bits,
        hidden=args.hidden, epochs=args.epochs, float_epochs=args.float_epochs, batch_size=args.batch_size, lr=args.lr,
        patience=args.patience, seed=args.seed, data=args.data, can_duration=args.can_duration,
        can_stride=args.can_stride, threads=args.threads, vectors=args.vectors, progress=not args.no_progress,
        command="qmlp train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["train"] else "",
    )
    run_training(opts)
    return 0
