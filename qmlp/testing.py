"""Random but valid Dataflow IRs for tests of the simulator, RTL and drivers (no ONNX needed)."""

from __future__ import annotations

import numpy as np

from .datatypes import BIPOLAR, INT, TERNARY, UINT, DataType, smallest_type_for_range
from .ir import (Dataflow, Folding, InputQuant, Layer, OutputDequant, StreamFormat, Thresholds, accumulator_range,
                 frozen_array, replace)

__all__ = ["random_dataflow", "random_weights", "SWEEP_KINDS", "sweep_dataflow", "wait_for"]

# (weight, input, activation) types of the calibration sweep's design kinds (bench/calibrate.py)
SWEEP_KINDS: dict[str, tuple[DataType, DataType, DataType]] = {
    "ternary": (TERNARY, INT(8), UINT(2)), "int2": (INT(2), INT(8), UINT(2)), "int2-a2": (INT(2), UINT(2), UINT(2)),
    "bipolar": (BIPOLAR, BIPOLAR, BIPOLAR), "int4": (INT(4), UINT(4), UINT(2)), "ternary-a4": (TERNARY, UINT(4), UINT(4)),
    "int2-bin": (INT(2), BIPOLAR, UINT(2)), "ternary-a8": (TERNARY, UINT(8), UINT(8)),
}


def random_weights(rng: np.random.Generator, dtype: DataType, shape: tuple[int, int], sparsity: float = 0.3) -> np.ndarray:
    if dtype == BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    if dtype == TERNARY:
        return rng.choice([-1, 0, 1], size=shape, p=[(1 - sparsity) / 2, sparsity, (1 - sparsity) / 2])
    return rng.integers(dtype.min, dtype.max + 1, size=shape)


def _random_thresholds(rng: np.random.Generator, low: np.ndarray, high: np.ndarray, out_dtype: DataType,
                       negate: float) -> Thresholds:
    steps = 1 if out_dtype == BIPOLAR else (1 << out_dtype.bits) - 1
    # A negated channel compares -acc, whose range is [-high, -low].
    flip = rng.random(len(low)) < negate if negate > 0 else np.zeros(len(low), bool)
    low, high = np.where(flip, -high, low), np.where(flip, -low, high)
    # Draw thresholds mostly inside the reachable range, a few outside (always on / always off).
    span = np.maximum(high - low, 1)
    centre = (low + high) // 2
    raw = centre[:, None] + rng.normal(0, 0.25, size=(len(low), steps)) * span[:, None]
    values = np.sort(np.clip(np.round(raw), low[:, None] - 1, high[:, None] + 1).astype(np.int64), axis=1)
    bias = 0 if not out_dtype.signed or out_dtype == BIPOLAR else out_dtype.min
    return Thresholds(values=frozen_array(values, np.int64), out_dtype=out_dtype, bias=bias,
                      negate=frozen_array(flip, bool))


def random_dataflow(
    seed: int,
    widths: tuple[int, ...] = (12, 9, 7, 3),
    weight_dtypes: tuple[DataType, ...] | DataType = TERNARY,
    input_dtype: DataType = INT(8),
    act_dtype: tuple[DataType, ...] | DataType = UINT(2),
    name: str = "random",
    negate: float = 0.0,
) -> Dataflow:
    """A chain ``widths[0] -> ... -> widths[-1]``; every layer but the last has ``act_dtype``
    multi-thresholds (one type, or one per layer), a ``negate`` fraction of their channels
    comparing the negated accumulator; the last layer emits raw accumulators."""
    rng = np.random.default_rng(seed)
    n_layers = len(widths) - 1
    wtypes = weight_dtypes if isinstance(weight_dtypes, tuple) else (weight_dtypes,) * n_layers
    atypes = act_dtype if isinstance(act_dtype, tuple) else (act_dtype,) * (n_layers - 1)
    layers = []
    in_dtype = input_dtype
    for i in range(n_layers):
        w = random_weights(rng, wtypes[i], (widths[i + 1], widths[i]))
        low, high = accumulator_range(w, in_dtype)
        acc_dtype = smallest_type_for_range(min(int(low.min()), 0), max(int(high.max()), 0))
        is_last = i == n_layers - 1
        act = None if is_last else _random_thresholds(rng, low, high, atypes[i], negate)
        layers.append(Layer(name=f"fc{i}", weights=frozen_array(w, np.int64), weight_dtype=wtypes[i],
                            in_dtype=in_dtype, acc_dtype=acc_dtype, activation=act))
        in_dtype = atypes[i] if not is_last else acc_dtype
    quant = InputQuant(
        dtype=input_dtype,
        scale=frozen_array(rng.uniform(0.01, 0.1, size=widths[0]), np.float32),
        qmin=input_dtype.min, qmax=input_dtype.max,
    )
    out = OutputDequant(scale=frozen_array(rng.uniform(0.001, 0.01, size=widths[-1]), np.float64),
                        bias=frozen_array(rng.normal(0, 0.1, size=widths[-1]), np.float64))
    return Dataflow(name=name, input=quant, layers=tuple(layers), output=out,
                    input_shape=(widths[0],), output_shape=(widths[-1],))


def sweep_dataflow(seed: int, widths: tuple[int, ...], kind: str, foldings: tuple[tuple[int, ...], ...],
                   clock_mhz: float = 200.0) -> Dataflow:
    """A folded design of the calibration sweep: ``random_dataflow`` of a ``SWEEP_KINDS`` kind with
    ``foldings`` = (pe, simd, pad_out, pad_in, levels_per_stage) per layer (deterministic)."""
    w, i, a = SWEEP_KINDS[kind]
    df = random_dataflow(seed, widths=tuple(widths), weight_dtypes=w, input_dtype=i, act_dtype=a, name=f"cal{seed}")
    folds = [Folding(*f) for f in foldings]
    layers = tuple(replace(layer, folding=f) for layer, f in zip(df.layers, folds))
    return replace(df, layers=layers, stream=StreamFormat(folds[0].simd, folds[-1].pe), clock_mhz=clock_mhz)


def wait_for(predicate, what: str, timeout: float = 60.0, interval: float = 0.01) -> None:
    """Poll ``predicate`` until it holds; AssertionError naming ``what`` after ``timeout`` seconds.
    For states of another process (its /proc entry, files it writes) that offer no event to wait on."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
