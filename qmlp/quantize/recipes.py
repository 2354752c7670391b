"""Quantization recipes: which Brevitas quantizer each part of the MLP uses.

A recipe fixes the weight quantizer; activation and input widths are separate knobs
(``ModelSpec``). The weight quantizers:

* ``ternary`` (1.58-bit): signed, narrow-range 2-bit integers {-1, 0, +1} with a per-tensor scale
  equal to the mean absolute weight, the "absmean" rule of BitNet b1.58 (Ma et al., "The Era of
  1-bit LLMs: All Large Language Models are in 1.58 Bits", arXiv:2402.17764, 2024): the scale is
  recomputed from the weights on every forward pass, so it needs no learning.
* ``int2``: signed full-range 2-bit integers {-2, -1, 0, +1} with a learned per-tensor scale
  initialised from the weight statistics.
* ``int3``, ``int4``: the ``int2`` rule at 3 and 4 bits ({-4..3}, {-8..7}), for sweeps that ask
  what the extra weight bits buy (``qmlp explore``).
* ``bipolar``: {-1, +1} with the mean absolute weight as scale (exported as ``BipolarQuant``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

with warnings.catch_warnings():  # brevitas warns on import about an optional CUDA-only package
    warnings.simplefilter("ignore", UserWarning)
    from brevitas.core.function_wrapper import TensorClampSte
    from brevitas.core.scaling import ScalingImplType
    from brevitas.inject.enum import StatsOp
    from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerTensorFloat, SignedBinaryActPerTensorConst,
                                SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat)

from ..errors import ConfigError
from . import ACT_BITS

__all__ = ["Recipe", "RECIPES", "get_recipe", "TernaryWeightQuant", "Int2WeightQuant", "Int3WeightQuant",
           "Int4WeightQuant", "BipolarWeightQuant", "act_quant", "input_quant", "ACT_BITS"]


class TernaryWeightQuant(Int8WeightPerTensorFloat):
    """{-1, 0, +1} * mean|W| (narrow 2-bit: the integer range is [-1, 1], so scale = AVE stat / 1)."""

    bit_width = 2
    narrow_range = True
    scaling_stats_op = StatsOp.AVE


class Int2WeightQuant(Int8WeightPerTensorFloat):
    """{-2, -1, 0, +1} * s, s learned (initialised from max|W|); full range so -2 is usable."""

    bit_width = 2
    narrow_range = False
    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS


class Int3WeightQuant(Int2WeightQuant):
    """{-4..3} * s, s learned, as Int2WeightQuant."""

    bit_width = 3


class Int4WeightQuant(Int2WeightQuant):
    """{-8..7} * s, s learned, as Int2WeightQuant."""

    bit_width = 4


class BipolarWeightQuant(SignedBinaryWeightPerTensorConst):
    """{-1, +1} * mean|W| (the XNOR-Net scale), recomputed every forward pass."""

    scaling_impl_type = ScalingImplType.STATS
    scaling_stats_op = StatsOp.AVE
    scaling_min_val = 1e-10
    # Brevitas' default clamps the weight parameter in place to +-scale; with a scale computed
    # from those same weights that breaks autograd, so clamp out of place (still straight-through).
    tensor_clamp_impl = TensorClampSte


@dataclass(frozen=True)
class Recipe:
    name: str
    weight_quant: type
    bits_label: str  # what reports call it
    description: str


RECIPES: dict[str, Recipe] = {
    "ternary": Recipe("ternary", TernaryWeightQuant, "1.58",
                      "ternary {-1,0,+1} weights, per-tensor scale = mean|W| (BitNet b1.58 absmean)"),
    "int2": Recipe("int2", Int2WeightQuant, "2", "signed 2-bit {-2..1} weights, learned per-tensor scale"),
    "int3": Recipe("int3", Int3WeightQuant, "3", "signed 3-bit {-4..3} weights, learned per-tensor scale"),
    "int4": Recipe("int4", Int4WeightQuant, "4", "signed 4-bit {-8..7} weights, learned per-tensor scale"),
    "bipolar": Recipe("bipolar", BipolarWeightQuant, "1", "bipolar {-1,+1} weights, per-tensor scale = mean|W|"),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"--weights {name!r}: unknown recipe (choose one of {', '.join(RECIPES)})") from None


def act_quant(bits: int) -> type:
    """Hidden activation quantizer: unsigned ``bits``-bit QuantReLU with a learned scale for
    2..4 and 8 bits; for 1 bit the sign {-1, +1} (see ``model.build_mlp`` for why not {0, 1})."""
    if bits not in ACT_BITS:
        raise ConfigError(f"--acts {bits}: activation width must be 1..4 or 8 bits")
    if bits == 1:
        return SignedBinaryActPerTensorConst
    # A learned scale initialised from a fixed max_val: BatchNorm keeps pre-activations near unit
    # variance, so ~2-4 covers the useful positive range at low widths.
    return type(f"Uint{bits}Act", (Uint8ActPerTensorFloat,),
                {"bit_width": bits, "scaling_impl_type": ScalingImplType.PARAMETER,
                 "max_val": 2.0 if bits <= 2 else 4.0})


def input_quant(bits: int, signed: bool, max_abs: float) -> type:
    """Input quantizer with a *constant* scale so the fabric sees exactly the dataset's integer grid.

    ``bits == 1`` gives a bipolar sign quantizer (inputs must be centred on 0). Otherwise the
    scale is ``max_abs / qmax`` (qmax = 2^(bits-1)-1 signed, 2^bits-1 unsigned); with CAN bytes
    encoded as byte-128 and max_abs = 127 at 8 bits the scale is 1.0 and quantization is lossless.
    """
    if bits == 1:
        return SignedBinaryActPerTensorConst
    if not 2 <= bits <= 8:
        raise ConfigError(f"--input-bits {bits}: input width must be 1 or 2..8 bits")
    qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    # Brevitas divides the constant by its "int scaling": 2^(bits-1) for signed full range,
    # 2^bits - 1 for unsigned; pick the constant so that scale == max_abs / qmax exactly.
    int_scaling = (1 << (bits - 1)) if signed else qmax
    const = float(max_abs) / qmax * int_scaling
    base = Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat
    attrs = {"bit_width": bits, "scaling_impl_type": ScalingImplType.CONST, "max_val": const}
    if signed:
        attrs["min_val"] = -const
    return type(f"{'Int' if signed else 'Uint'}{bits}InputConst", (base,), attrs)
