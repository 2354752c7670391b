"""Passes: Chain -> Dataflow IR, exactly (see qmlp/ir.py for the semantics).

Between two quantizers the model computes, per output channel c, a monotone float function of
the integer accumulator a: ``level(a) = quant(post_ops(a * s_in * s_w[c]))``. Because ``a`` only
takes integer values in a known range, this function is captured exactly by the smallest ``a``
reaching each level: the multi-threshold values. We find them by binary search on the float64
reference chain, so no algebraic rearrangement (and no rounding drift) is involved."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..datatypes import DataType, smallest_type_for_range
from ..errors import ModelError
from ..ir import Dataflow, InputQuant, Layer, OutputDequant, PreOp, Thresholds, accumulator_range, frozen_array
from .chain import AffineStep, BatchNormStep, Chain, MatMulStep, QuantStep, ReluStep, Step
from .requant import RequantStep

__all__ = ["LayerSpec", "split_layers", "lower_input", "uniform_scale", "apply_post_ops", "prequant_function", "level_function",
           "orient_channels", "derive_thresholds", "accumulator_dtype", "fold_output_affine", "lower_layer",
           "lower_chain"]

PostOp = AffineStep | BatchNormStep | ReluStep | RequantStep


@dataclass(frozen=True, eq=False)
class LayerSpec:
    """One fully-connected layer of the chain: its input quantizer, MatMul, the float ops after
    it and the quantizer that ends it (None for a last layer that emits raw accumulators)."""

    in_quant: QuantStep
    matmul: MatMulStep
    post: tuple[PostOp, ...]
    out_quant: QuantStep | None


def _describe(step: Step) -> str:
    return f"node '{step.node}' ({type(step).__name__.replace('Step', '')})"


def split_layers(chain: Chain) -> tuple[QuantStep, tuple[LayerSpec, ...]]:
    """Expects a Chain. Guarantees (input quantizer, layers) where the chain reads
    ``Quant (MatMul post* Quant)* MatMul post* [Quant]``; anything else is a ModelError."""
    steps = list(chain.steps)
    if not steps or not isinstance(steps[0], QuantStep):
        found = _describe(steps[0]) if steps else "nothing"
        raise ModelError(f"model input '{chain.input_name}' must go straight into an input quantizer (Quant, "
                         f"BipolarQuant or QuantizeLinear), found {found}; add a brevitas QuantIdentity first")
    in_quant, position, layers = steps[0], 1, []
    while position < len(steps):
        step = steps[position]
        if not isinstance(step, MatMulStep):
            raise ModelError(f"{_describe(step)} follows quantizer '{in_quant.node}' instead of a MatMul/Gemm; "
                             "qmlp needs a chain of fully-connected layers")
        position += 1
        post: list[PostOp] = []
        while position < len(steps) and not isinstance(steps[position], (QuantStep, MatMulStep)):
            post.append(steps[position])
            position += 1
        out_quant = None
        if position < len(steps):
            if isinstance(steps[position], MatMulStep):
                raise ModelError(f"{_describe(steps[position])} follows MatMul '{step.node}' without an "
                                 "activation quantizer in between; qmlp needs integer activations")
            out_quant = steps[position]
            position += 1
        elif any(isinstance(op, ReluStep) for op in post):
            relu = next(op for op in post if isinstance(op, ReluStep))
            raise ModelError(f"{_describe(relu)} after the last MatMul has no quantizer; qmlp can dequantize "
                             "only an affine output on the host: quantize it (QuantReLU) or drop it")
        layers.append(LayerSpec(in_quant, step, tuple(post), out_quant))
        if out_quant is not None:
            in_quant = out_quant
    if not layers:
        raise ModelError(f"model '{chain.name}' has no MatMul/Gemm layer after its input quantizer")
    return steps[0], tuple(layers)


def uniform_scale(quant: QuantStep, consumer: MatMulStep) -> float:
    """The single scale of a quantizer feeding a MatMul (integer weights need one scale per input)."""
    if not np.all(quant.scale == quant.scale[0]):
        raise ModelError(f"node '{quant.node}': per-channel activation scales feeding '{consumer.node}' cannot "
                         "be folded into integer weights; use a per-tensor activation quantizer")
    return float(quant.scale[0])


def lower_input(quant: QuantStep, features: int, pre: tuple[AffineStep, ...] = ()) -> InputQuant:
    """Expects the first quantizer, the input feature count and the preprocessing before it.
    Guarantees the host-side InputQuant with one float32 scale per feature."""
    if quant.scale.size not in (1, features):
        raise ModelError(f"node '{quant.node}': {quant.scale.size} scales for {features} input features")
    ops = tuple(PreOp(op.op, frozen_array(op.const, np.float32)) for op in pre)  # float32 as in the model
    return InputQuant(dtype=quant.dtype, scale=frozen_array(np.broadcast_to(quant.scale, (features,)), np.float32),
                      qmin=quant.qmin, qmax=quant.qmax, pre=ops)


def _per_channel(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def apply_post_ops(post: tuple[PostOp, ...], value: np.ndarray) -> np.ndarray:
    """The float ops between MatMul and quantizer, in float64; axis 0 of ``value`` is the channel."""
    for op in post:
        if isinstance(op, ReluStep):
            value = np.maximum(value, 0.0)
        elif isinstance(op, RequantStep):
            value = op.apply(value)
        elif isinstance(op, BatchNormStep):
            c = lambda v: _per_channel(v, value)  # noqa: E731
            value = (value - c(op.mean)) / np.sqrt(c(op.var) + op.eps) * c(op.gamma) + c(op.beta)
        else:
            k = _per_channel(op.const, value)
            value = {"Add": lambda: value + k, "Sub": lambda: value - k, "RSub": lambda: k - value,
                     "Mul": lambda: value * k, "Div": lambda: value / k}[op.op]()
    return value


def prequant_function(spec: LayerSpec) -> Callable[[np.ndarray], np.ndarray]:
    """Integer accumulators (channel, ...) -> the float64 value the output quantizer rounds
    (post ops applied, divided by the quantizer's scale, before clipping and rounding)."""
    acc_scale = uniform_scale(spec.in_quant, spec.matmul) * spec.matmul.scale
    if spec.out_quant is None:
        raise ValueError(f"layer at '{spec.matmul.node}' has no output quantizer")
    out_scale = spec.out_quant.scale.astype(np.float64)

    def prequant(acc: np.ndarray) -> np.ndarray:
        real = apply_post_ops(spec.post, acc.astype(np.float64) * _per_channel(acc_scale, acc))
        return real / (_per_channel(out_scale, acc) if out_scale.size > 1 else out_scale[0])

    return prequant


def level_function(spec: LayerSpec) -> Callable[[np.ndarray], np.ndarray]:
    """Integer accumulators (channel, ...) -> output levels of ``spec.out_quant``, evaluated on the
    float64 reference chain (affine ops, relu, divide by scale, clip, round half to even)."""
    prequant = prequant_function(spec)
    quant = spec.out_quant
    return lambda acc: quant.levels(prequant(acc), 1.0)


def orient_channels(levels: Callable[[np.ndarray], np.ndarray], low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Expects a per-channel monotone level function and the accumulator range. Guarantees a
    boolean mask of channels whose level falls as the accumulator grows: their thresholds
    compare the negated accumulator (``Thresholds.negate``), so every threshold row ascends."""
    return levels(low[:, None])[:, 0] > levels(high[:, None])[:, 0]


def derive_thresholds(levels: Callable[[np.ndarray], np.ndarray], low: np.ndarray, high: np.ndarray,
                      quant: QuantStep) -> Thresholds:
    """Expects a per-channel nondecreasing level function on [low, high]. Guarantees thresholds
    T[c, i] = smallest a in [low, high] with level(a) >= i-th level above the minimum, or
    high + 1 where no such a exists; so ``count + bias == level`` on the whole range."""
    targets = np.array([1]) if quant.bipolar else np.arange(quant.qmin + 1, quant.qmax + 1)
    shape = (low.size, targets.size)
    lo = np.broadcast_to(low[:, None], shape).astype(np.int64)
    hi = np.broadcast_to(high[:, None] + 1, shape).astype(np.int64)
    while np.any(active := lo < hi):  # converged entries must stay put while others search on
        mid = lo + (hi - lo) // 2
        reached = levels(mid) >= targets[None, :]
        hi = np.where(active & reached, mid, hi)
        lo = np.where(active & ~reached, mid + 1, lo)
    out_dtype = quant.dtype
    bias = 0 if quant.bipolar else quant.qmin
    return Thresholds(values=frozen_array(lo, np.int64), out_dtype=out_dtype, bias=bias)


def accumulator_dtype(weights: np.ndarray, in_dtype: DataType) -> DataType:
    """The narrowest INT/UINT that holds every reachable accumulator value (and zero)."""
    low, high = accumulator_range(weights, in_dtype)
    return smallest_type_for_range(min(int(low.min()), 0), max(int(high.max()), 0))


def fold_output_affine(spec: LayerSpec) -> OutputDequant:
    """Expects a last layer without a quantizer (post ops affine only). Guarantees the host
    dequantization ``y = acc * scale + bias`` composing input scale, weight scale and post ops."""
    scale = uniform_scale(spec.in_quant, spec.matmul) * spec.matmul.scale
    bias = np.zeros_like(scale)
    for op in spec.post:
        if isinstance(op, BatchNormStep):
            k = op.gamma / np.sqrt(op.var + op.eps)
            scale, bias = scale * k, (bias - op.mean) * k + op.beta
        elif isinstance(op, AffineStep):
            c = op.const
            if op.op in ("Add", "Sub"):
                bias = bias + c if op.op == "Add" else bias - c
            elif op.op == "RSub":
                scale, bias = -scale, c - bias
            elif op.op == "Mul":
                scale, bias = scale * c, bias * c
            else:
                scale, bias = scale / c, bias / c
        else:  # split_layers rejects a relu here; keep the invariant visible
            raise ModelError(f"node '{op.node}': nonlinear op after the last MatMul")
    n = spec.matmul.weights.shape[0]
    return OutputDequant(scale=frozen_array(np.broadcast_to(scale, (n,)), np.float64),
                         bias=frozen_array(np.broadcast_to(bias, (n,)), np.float64))


def lower_layer(spec: LayerSpec, in_dtype: DataType, index: int) -> Layer:
    """Expects one LayerSpec and the integer type of its input. Guarantees an IR Layer whose
    integer behaviour equals the float reference: the weights at their trained type, minimal
    accumulator type and, if the layer ends in a quantizer, exact multi-thresholds (with the
    channels whose level falls as the accumulator grows marked ``negate``)."""
    weights = spec.matmul.weights
    activation = None
    if spec.out_quant is not None:
        levels = level_function(spec)
        low, high = accumulator_range(weights, in_dtype)
        negate = orient_channels(levels, low, high)
        sign = np.where(negate, -1, 1)
        oriented = lambda a: levels(a * _per_channel(sign, a))  # noqa: E731  level of the oriented value a
        thresholds = derive_thresholds(oriented, np.where(negate, -high, low), np.where(negate, -low, high),
                                       spec.out_quant)
        activation = replace(thresholds, negate=frozen_array(negate, bool))
    return Layer(name=f"fc{index}", weights=frozen_array(weights, np.int64), weight_dtype=spec.matmul.weight_dtype,
                 in_dtype=in_dtype, acc_dtype=accumulator_dtype(weights, in_dtype), activation=activation)


def lower_chain(chain: Chain) -> Dataflow:
    """Expects a Chain. Guarantees a Dataflow (not yet verified) computing the same integers."""
    in_quant, specs = split_layers(chain)
    features = int(np.prod(chain.input_shape))
    first = specs[0].matmul
    if first.weights.shape[1] != features:
        raise ModelError(f"node '{first.node}': takes {first.weights.shape[1]} inputs but the model input "
                         f"'{chain.input_name}' has {features} features")
    inp = lower_input(in_quant, features, chain.pre)
    layers, in_dtype = [], inp.dtype
    for index, spec in enumerate(specs):
        layer = lower_layer(spec, in_dtype, index)
        layers.append(layer)
        in_dtype = layer.out_dtype
    last = specs[-1]
    if last.out_quant is None:
        output = fold_output_affine(last)
    else:
        n = last.matmul.weights.shape[0]
        scale = np.broadcast_to(last.out_quant.scale.astype(np.float64), (n,))
        output = OutputDequant(scale=frozen_array(scale, np.float64), bias=frozen_array(np.zeros(n), np.float64))
    return Dataflow(name=chain.name, input=inp, layers=tuple(layers), output=output,
                    input_shape=chain.input_shape, output_shape=chain.output_shape, metadata=dict(chain.metadata))
