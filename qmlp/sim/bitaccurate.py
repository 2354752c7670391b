"""Bit-accurate simulator of the Dataflow IR: the golden model the RTL is checked against.

Vectorized over the batch. Matrix products run through BLAS in float32 or float64, chosen per
layer so that every partial sum is an exactly representable integer (|sum| < 2^24 resp. 2^53);
the result is converted back to int64, so nothing here approximates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datatypes import BIPOLAR
from ..ir import Dataflow, InputQuant, Layer, Thresholds

__all__ = ["SimResult", "quantize_input", "layer_forward", "apply_thresholds", "run_integer",
           "dequantize_output", "simulate", "exact_matmul"]

_FLOAT32_EXACT = 1 << 24
_FLOAT64_EXACT = 1 << 53


@dataclass(frozen=True)
class SimResult:
    inputs: np.ndarray  # int64 (batch, features): what enters the fabric
    accumulators: tuple[np.ndarray, ...]  # per layer, int64 (batch, out_features)
    activations: tuple[np.ndarray, ...]  # per layer output values (== accumulators if no activation)
    outputs: np.ndarray  # float32, shaped like the ONNX output


def quantize_input(quant: InputQuant, x: np.ndarray) -> np.ndarray:
    """Float input (batch, features) -> integers, exactly as QONNX Quant/BipolarQuant in float32."""
    x = np.asarray(x, dtype=np.float32)
    if quant.dtype == BIPOLAR:
        return np.where(x >= 0, 1, -1).astype(np.int64)
    scaled = x / quant.scale  # float32 / float32, as execute_onnx does
    clipped = np.clip(scaled, np.float32(quant.qmin), np.float32(quant.qmax))
    return np.round(clipped).astype(np.int64)


def exact_matmul(q: np.ndarray, weights: np.ndarray, bound: int) -> np.ndarray:
    """``q @ weights.T`` in exact integers, given ``bound`` >= any |partial sum|."""
    if bound < _FLOAT32_EXACT:
        return (q.astype(np.float32) @ weights.T.astype(np.float32)).astype(np.int64)
    if bound < _FLOAT64_EXACT:
        return (q.astype(np.float64) @ weights.T.astype(np.float64)).astype(np.int64)
    return q.astype(np.int64) @ weights.T.astype(np.int64)


def _partial_sum_bound(layer: Layer) -> int:
    in_mag = max(abs(layer.in_dtype.min), abs(layer.in_dtype.max))
    return int(np.abs(layer.weights).sum(axis=1).max(initial=0)) * in_mag


def apply_thresholds(act: Thresholds, acc: np.ndarray) -> np.ndarray:
    """Threshold counts -> output values (``Thresholds.output_value``)."""
    if act.steps <= 16:
        count = (acc[:, :, None] >= act.values[None, :, :]).sum(axis=2)
    else:  # many steps (up to 255): a per-channel binary search keeps memory flat
        count = np.empty_like(acc)
        for channel in range(acc.shape[1]):
            count[:, channel] = np.searchsorted(act.values[channel], acc[:, channel], side="right")
    return act.output_value(count.astype(np.int64))


def layer_forward(layer: Layer, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One MVAU + activation: returns (accumulators, output values)."""
    acc = exact_matmul(q, layer.weights, _partial_sum_bound(layer))
    if layer.activation is None:
        return acc, acc
    return acc, apply_thresholds(layer.activation, acc)


def run_integer(df: Dataflow, q: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The fabric's part: integer inputs -> per-layer (accumulators, activations)."""
    accs, acts = [], []
    for layer in df.layers:
        acc, q = layer_forward(layer, q)
        accs.append(acc)
        acts.append(q)
    return tuple(accs), tuple(acts)


def dequantize_output(df: Dataflow, out: np.ndarray) -> np.ndarray:
    y = out.astype(np.float64) * df.output.scale + df.output.bias
    return y.astype(np.float32)


def simulate(df: Dataflow, x: np.ndarray) -> SimResult:
    """Float input shaped ``(batch, *input_shape)`` -> every integer stage and the float output."""
    x = np.asarray(x, dtype=np.float32)
    batch = x.shape[0]
    if x.shape[1:] != tuple(df.input_shape):
        raise ValueError(f"input shape {x.shape} does not match (batch, {', '.join(map(str, df.input_shape))})")
    q = quantize_input(df.input, x.reshape(batch, -1))
    accs, acts = run_integer(df, q)
    outputs = dequantize_output(df, acts[-1]).reshape((batch, *df.output_shape))
    return SimResult(inputs=q, accumulators=accs, activations=acts, outputs=outputs)
