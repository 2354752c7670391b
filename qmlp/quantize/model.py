"""The Brevitas MLP builder: input quantizer -> [QuantLinear -> BatchNorm1d -> QuantReLU]* -> QuantLinear.

The float baseline is the same topology with plain ``nn.Linear``/``nn.ReLU`` and the same module
names, so its trained weights can initialise the quantized model (``load_float_weights``).
Hidden linears carry no bias (the BatchNorm that follows supplies it); the last linear keeps a
float bias, which the host applies with the output scale."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .recipes import act_quant, get_recipe, input_quant

__all__ = ["ModelSpec", "MLP", "build_mlp", "build_float_mlp", "load_float_weights"]


@dataclass(frozen=True)
class ModelSpec:
    """Topology and precision. ``input_max`` is the largest |value| the dataset's features reach
    (sets the constant input scale); ``input_signed`` says whether they go below zero."""

    in_features: int
    hidden: tuple[int, ...]
    classes: int
    weights: str = "ternary"
    acts: int = 2
    input_bits: int = 8
    input_signed: bool = True
    input_max: float = 127.0

    def __post_init__(self) -> None:
        if self.in_features < 1 or self.classes < 2:
            raise ConfigError(f"model needs >= 1 input and >= 2 classes, got {self.in_features} and {self.classes}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"--hidden {','.join(map(str, self.hidden)) or '(empty)'}: give one or more positive layer widths")
        get_recipe(self.weights)
        act_quant(self.acts)
        input_quant(self.input_bits, self.input_signed, self.input_max)

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.in_features, *self.hidden, self.classes)


class MLP(nn.Module):
    def __init__(self, input_layer: nn.Module, blocks: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.input = input_layer
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def _block(linear: nn.Module, width: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(linear, nn.BatchNorm1d(width), act)


def build_mlp(spec: ModelSpec) -> MLP:
    """The quantized model that gets exported to QONNX."""
    with warnings.catch_warnings():  # brevitas warns about an optional CUDA-only package on import
        warnings.simplefilter("ignore", UserWarning)
        from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU

    wq = get_recipe(spec.weights).weight_quant
    aq = act_quant(spec.acts)
    widths = spec.widths

    def activation() -> nn.Module:
        # Brevitas exports every 1-bit quantizer as BipolarQuant, so a 1-bit QuantReLU ({0, s} in
        # torch) would become {-s, +s} in ONNX. 1-bit activations are therefore the sign ({-1, +1},
        # as in binarized networks), which exports faithfully.
        return QuantIdentity(act_quant=aq) if spec.acts == 1 else QuantReLU(act_quant=aq)

    blocks = [
        _block(QuantLinear(widths[i], widths[i + 1], bias=False, weight_quant=wq), widths[i + 1], activation())
        for i in range(len(widths) - 2)
    ]
    head = QuantLinear(widths[-2], widths[-1], bias=True, weight_quant=wq, bias_quant=None)
    inp = QuantIdentity(act_quant=input_quant(spec.input_bits, spec.input_signed, spec.input_max))
    return MLP(inp, blocks, head)


def build_float_mlp(spec: ModelSpec) -> MLP:
    """Same topology in float32 (the baseline)."""
    widths = spec.widths
    blocks = [_block(nn.Linear(widths[i], widths[i + 1], bias=False), widths[i + 1], nn.ReLU())
              for i in range(len(widths) - 2)]
    return MLP(nn.Identity(), blocks, nn.Linear(widths[-2], widths[-1]))


def load_float_weights(quant: MLP, float_model: MLP) -> None:
    """Copy linear weights, biases and BatchNorm statistics from the float baseline (QAT warm start)."""
    target = quant.state_dict()
    shared = {k: v for k, v in float_model.state_dict().items() if k in target and target[k].shape == v.shape}
    quant.load_state_dict(shared, strict=False)
