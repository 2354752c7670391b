"""Bit-accurate simulator of the Dataflow IR: the golden model the RTL is checked against.

Vectorized over the batch. Matrix products run through BLAS in float32 or float64, chosen per
layer so that every partial sum is an exactly representable integer (|sum| < 2^24 resp. 2^53);
beyond that, int64. Between layers the values stay in that float type when it is exact (small
integers are exact floats, and so are the thresholds they are compared with), which saves the
int64 round trips; results handed out are int64. Nothing here approximates."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from ..datatypes import BIPOLAR
from ..ir import Dataflow, InputQuant, Layer, Thresholds
from .engine import engine_for

__all__ = ["SimResult", "quantize_input", "layer_forward", "apply_thresholds", "run_integer",
           "dequantize_output", "fabric_outputs", "fabric_run", "simulate", "simulate_outputs", "predict_checked", "exact_matmul", "CHUNK",
           "ENGINES"]

_FLOAT32_EXACT = 1 << 24
_FLOAT64_EXACT = 1 << 53
_FEW_STEPS = 16  # up to this many thresholds: one compare pass per step; more: per-channel search
ENGINES = ("auto", "numpy", "onnxruntime")
CHUNK = 256  # rows per block: keeps a layer's operands in the CPU's L1/L2 caches


@dataclass(frozen=True)
class SimResult:
    inputs: np.ndarray  # int64 (batch, features): what enters the fabric
    accumulators: tuple[np.ndarray, ...]  # per layer, int64 (batch, out_features)
    activations: tuple[np.ndarray, ...]  # per layer output values (== accumulators if no activation)
    outputs: np.ndarray  # float32, shaped like the ONNX output


def quantize_input(quant: InputQuant, x: np.ndarray) -> np.ndarray:
    """Float input (batch, features) -> integers, exactly as QONNX Quant/BipolarQuant in float32."""
    return _quantize(quant, x).astype(np.int64)


def _quantize(quant: InputQuant, x: np.ndarray) -> np.ndarray:
    """As quantize_input, left in float32 (exact: |q| <= 2^8)."""
    x = np.asarray(x, dtype=np.float32)
    for op in quant.pre:  # the model's own preprocessing, float32 op by op as execute_onnx
        x = op.apply(x)
    if quant.dtype == BIPOLAR:
        return np.where(x >= 0, np.float32(1), np.float32(-1))
    scaled = x / quant.scale  # float32 / float32, as execute_onnx does
    clipped = np.clip(scaled, np.float32(quant.qmin), np.float32(quant.qmax))
    return np.round(clipped)


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


def _count(rows: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """``sum_i [acc[:, c] >= rows[i, c]]``; ``rows`` = thresholds transposed, in acc's dtype.
    Few steps: int8 counts (one compare pass per step, no (batch, channels, steps) temporary);
    many steps (up to 255): int64 counts from a per-channel binary search."""
    steps = rows.shape[0]
    if steps <= _FEW_STEPS:
        count = (acc >= rows[0]).view(np.int8)  # bool is one byte of 0/1: reuse it as the counter
        for i in range(1, steps):
            np.add(count, acc >= rows[i], out=count, casting="unsafe")
        return count
    count = np.empty(acc.shape, np.int64)
    for channel in range(acc.shape[1]):
        count[:, channel] = np.searchsorted(rows[:, channel], acc[:, channel], side="right")
    return count


def apply_thresholds(act: Thresholds, acc: np.ndarray) -> np.ndarray:
    """Accumulators (batch, channels) -> output values: counts of ``Thresholds.oriented(acc)``
    against the thresholds, mapped by ``Thresholds.output_value``."""
    oriented = act.oriented(np.asarray(acc, dtype=np.int64))
    return act.output_value(_count(np.ascontiguousarray(act.values.T), oriented).astype(np.int64))


@dataclass(frozen=True, eq=False)
class _Kernel:
    """A layer prepared for the fast path: weights (in, out) and thresholds (steps, out) in
    ``dtype``; activations leave as small integers (int8 counts, or int64 for many steps).
    Negated channels (``Thresholds.negate``) have their weight columns negated here, so the
    product is the oriented accumulator the thresholds compare with; ``sign`` turns it back
    into the IR's accumulator where that is asked for (None: no channel negated)."""

    dtype: type
    weights_t: np.ndarray
    sign: np.ndarray | None
    thresholds: np.ndarray | None
    bipolar: bool
    bias: int


_KERNELS: "weakref.WeakKeyDictionary[Layer, _Kernel]" = weakref.WeakKeyDictionary()


def _kernel(layer: Layer) -> _Kernel:
    kernel = _KERNELS.get(layer)
    if kernel is None:
        bound = _partial_sum_bound(layer)
        # thresholds lie in [acc_min, acc_max + 1], so bound + 1 must be exact as well
        dtype = np.float32 if bound + 1 < _FLOAT32_EXACT else np.float64 if bound + 1 < _FLOAT64_EXACT else np.int64
        act = layer.activation
        negate = act is not None and bool(act.negate.any())
        sign = np.where(act.negate, -1, 1).astype(dtype) if negate else None
        kernel = _Kernel(
            dtype=dtype,
            weights_t=np.ascontiguousarray((layer.weights.T * (1 if sign is None else sign)).astype(dtype)),
            sign=sign,
            thresholds=None if act is None else np.ascontiguousarray(act.values.T.astype(dtype)),
            bipolar=act is not None and act.out_dtype == BIPOLAR,
            bias=0 if act is None else act.bias,
        )
        _KERNELS[layer] = kernel
    return kernel


def _layer_block(kernel: _Kernel, q: np.ndarray, keep: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """(accumulators if ``keep`` else None, output values) of one block of rows."""
    oriented = q.astype(kernel.dtype, copy=False) @ kernel.weights_t
    if kernel.thresholds is None:
        return oriented, oriented
    acc = None if not keep else oriented if kernel.sign is None else oriented * kernel.sign
    count = _count(kernel.thresholds, oriented)  # int8 here holds count + bias for <= 16 steps (>= -8)
    if kernel.bipolar:
        return acc, 2 * count - 1
    if kernel.bias:
        count += np.asarray(kernel.bias, dtype=count.dtype)
    return acc, count


def layer_forward(layer: Layer, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One MVAU + activation: returns (accumulators, output values), int64."""
    acc, out = _layer_block(_kernel(layer), np.asarray(q), keep=True)
    return acc.astype(np.int64), out.astype(np.int64)


def run_integer(df: Dataflow, q: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The fabric's part: integer inputs -> per-layer (accumulators, activations), int64."""
    return _run(df, np.asarray(q), keep=True)


def _run(df: Dataflow, q: np.ndarray, keep: bool) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    kernels = [_kernel(layer) for layer in df.layers]
    batch = q.shape[0]
    accs = [np.empty((batch, layer.out_features), np.int64) for layer in df.layers] if keep else []
    acts = [np.empty((batch, layer.out_features), np.int64) for layer in df.layers] if keep else []
    last = np.empty((batch, df.layers[-1].out_features), np.int64)
    for start in range(0, batch, CHUNK):
        block = q[start:start + CHUNK]
        for index, kernel in enumerate(kernels):
            acc, block = _layer_block(kernel, block, keep)
            if keep:
                accs[index][start:start + len(block)] = acc
                acts[index][start:start + len(block)] = block
        last[start:start + len(block)] = block
    if keep:
        return tuple(accs), tuple(acts)
    return (), (last,)


def fabric_outputs(df: Dataflow, last: np.ndarray) -> np.ndarray:
    """What the fabric's output stream carries for the last layer's values ``last`` (batch,
    channels): the values themselves, or with the argmax unit the class index as (batch, 1),
    ties to the lowest index like qmlp_argmax.v. The one golden definition that verify, HIL,
    profile and the driver's self-check compare the hardware with."""
    last = np.asarray(last, dtype=np.int64)
    return np.argmax(last, axis=1).astype(np.int64)[:, None] if df.argmax else last


def fabric_run(df: Dataflow, q: np.ndarray) -> np.ndarray:
    """Integer inputs (batch, features) -> what the fabric emits (``fabric_outputs``)."""
    _, (last,) = _run(df, np.asarray(q), keep=False)
    return fabric_outputs(df, last)


def dequantize_output(df: Dataflow, out: np.ndarray) -> np.ndarray:
    """The host's ``y = acc * scale[c] + bias[c]``: in float64 (``out`` of any integer or float
    dtype holding exact integers is promoted exactly), rounded once to float32."""
    return (out * df.output.scale + df.output.bias).astype(np.float32)


def _check_shape(df: Dataflow, x: np.ndarray) -> None:
    if x.shape[1:] != tuple(df.input_shape):
        raise ValueError(f"input shape {x.shape} does not match (batch, {', '.join(map(str, df.input_shape))})")


def _has_nan(x2d: np.ndarray) -> bool:
    """Any NaN in float32 ``x2d``? (Infinities are fine: they clip.) min propagates NaN: one
    pass, no temporary, no floating-point warnings. The API checks finiteness itself and skips
    this (``predict_checked(finite=True)``)."""
    return bool(x2d.size) and math.isnan(x2d.min())


def _engine(df: Dataflow, x2d: np.ndarray, engine: str, keep: bool):  # noqa: ANN202 - an Engine or None
    """The onnxruntime engine (qmlp.sim.engine) for ``engine`` "auto" or "onnxruntime", when it
    is exact for ``df`` and the input has no NaN (whose integer value numpy leaves undefined)."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "numpy" or (engine == "auto" and keep):
        return None  # keeping every layer: numpy is as fast (measured: the int64 copies dominate)
    found = engine_for(df, keep=keep)
    if found is None or _has_nan(x2d):
        if engine == "onnxruntime":
            raise ValueError(f"{df.name}: the onnxruntime engine is not exact for this model or input; use engine='auto'")
        return None
    return found


def simulate(df: Dataflow, x: np.ndarray, *, engine: str = "auto") -> SimResult:
    """Float input shaped ``(batch, *input_shape)`` -> every integer stage and the float output.

    ``engine``: "numpy" (the reference path in this module), "onnxruntime" (qmlp.sim.engine:
    the same integer arithmetic as one ONNX graph, exact by construction and tested equal), or
    "auto" (here: numpy; in ``simulate_outputs``: onnxruntime where it is exact and installed)."""
    x = np.asarray(x, dtype=np.float32)
    _check_shape(df, x)
    batch = x.shape[0]
    x2d = np.ascontiguousarray(x.reshape(batch, -1))
    fast = _engine(df, x2d, engine, keep=True)
    if fast is not None:
        q, *stages = (a.astype(np.int64) for a in fast.run(x2d))
        accs, acts = tuple(stages[0::2]), tuple(stages[1::2])
    else:
        q = _quantize(df.input, x2d).astype(np.int64)
        accs, acts = _run(df, q, keep=True)
    outputs = dequantize_output(df, acts[-1]).reshape((batch, *df.output_shape))
    return SimResult(inputs=q, accumulators=accs, activations=acts, outputs=outputs)


def simulate_outputs(df: Dataflow, x: np.ndarray, *, engine: str = "auto") -> np.ndarray:
    """``simulate(df, x).outputs`` without keeping the per-layer integers: the fast path."""
    x = np.asarray(x, dtype=np.float32)
    _check_shape(df, x)
    return predict_checked(df, x, engine)


def predict_checked(df: Dataflow, x: np.ndarray, engine: str = "auto", *, finite: bool = False) -> np.ndarray:
    """``simulate_outputs`` for float32 ``x`` whose shape is already checked (``finite``: and
    that holds no NaN, so the NaN test is skipped): the per-call work around the engine is a few
    attribute lookups (a batch-1 call is ~12 us here)."""
    x2d = x if x.ndim == 2 and x.flags.c_contiguous else np.ascontiguousarray(x.reshape(len(x), -1))
    if engine == "auto":  # _engine's rule, inlined for the common case
        fast = engine_for(df)
        fast = None if fast is None or (not finite and _has_nan(x2d)) else fast
    else:
        fast = _engine(df, x2d, engine, keep=False)
    if fast is None:
        y = dequantize_output(df, _run(df, _quantize(df.input, x2d), keep=False)[1][0])
    else:  # float32 holding exact integers (dequantize_output takes them as they are) or already dequantized
        y = fast.run_one(x2d) if fast.dequantized else dequantize_output(df, fast.run_one(x2d))
    return y if len(df.output_shape) == 1 else y.reshape((len(x), *df.output_shape))
