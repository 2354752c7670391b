"""Pass: back-to-back quantizers after a layer (a QuantReLU followed by a QuantIdentity, or a
BatchNorm after the activation followed by a quantizer) become one layer.

The first quantizer, and any float ops after it, turn into post ops of the layer
(``RequantStep``: quantize then dequantize, as QONNX ``Quant`` computes); the last quantizer of
the run ends the layer. The layer's level function stays monotone per channel, so the usual
exact threshold search applies. A float op between an activation quantizer and the next
MatMul (or the model output) cannot be lowered exactly and is refused, saying how to change
the model."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import ModelError
from .chain import Chain, MatMulStep, QuantStep, Step

__all__ = ["RequantStep", "merge_requantizers"]


@dataclass(frozen=True, eq=False)
class RequantStep:
    """An activation quantizer inside a layer: ``value -> level(value / scale) * scale``."""

    quant: QuantStep
    nudge: float = 0.0  # in levels, added before rounding: only the reference's tie test sets it

    @property
    def node(self) -> str:
        return self.quant.node

    @property
    def tensor(self) -> str:
        return self.quant.tensor

    def apply(self, value: np.ndarray) -> np.ndarray:
        """float64 values with the channel on axis 0 -> dequantized levels (float64)."""
        scale = self.quant.scale.astype(np.float64)
        if scale.size > 1:
            scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
        return self.quant.levels(value + self.nudge * scale, scale) * scale


def _describe(step: Step) -> str:
    return f"node '{step.node}' ({type(step).__name__.replace('Step', '')})"


def merge_requantizers(chain: Chain) -> Chain:
    """Expects a Chain. Guarantees a Chain in which every MatMul is followed by float post ops
    and at most one QuantStep before the next MatMul: earlier quantizers of the run become
    RequantSteps. Raises ModelError for float ops after a layer's last quantizer."""
    steps = list(chain.steps)
    out: list[Step] = []
    position = 0
    while position < len(steps):
        step = steps[position]
        out.append(step)
        position += 1
        if not isinstance(step, MatMulStep):
            continue
        run_end = position  # the segment up to the next MatMul or the end
        while run_end < len(steps) and not isinstance(steps[run_end], MatMulStep):
            run_end += 1
        segment = steps[position:run_end]
        quants = [i for i, s in enumerate(segment) if isinstance(s, QuantStep)]
        if quants and quants[-1] != len(segment) - 1:
            trailing = segment[quants[-1] + 1]
            where = (f"feeds {_describe(steps[run_end])}" if run_end < len(steps) else "ends the model")
            raise ModelError(
                f"{_describe(trailing)} after activation quantizer '{segment[quants[-1]].node}' {where}: a float op "
                "between a quantizer and the next layer cannot be lowered to integers exactly; move it before the "
                "activation or add a QuantIdentity after it")
        for i, s in enumerate(segment):
            out.append(RequantStep(s) if isinstance(s, QuantStep) and i != len(segment) - 1 else s)
        position = run_end
    if len(out) == len(steps) and all(a is b for a, b in zip(out, steps)):
        return chain
    return replace(chain, steps=tuple(out))

