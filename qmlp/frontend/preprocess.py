"""Pass: absorb the model's input preprocessing (e.g. ``2x - 1`` in FINN's bnn_pynq models)
into the host-side input quantizer.

The elementwise constant ops between the model input and its first quantizer move into
``Chain.pre``; the host applies them in float32 in the same order before quantizing
(``qmlp.ir.PreOp``), so the integers entering the fabric are exactly the quantizer's."""

from __future__ import annotations

from dataclasses import replace

from .chain import AffineStep, Chain, QuantStep

__all__ = ["absorb_input_preprocessing"]


def absorb_input_preprocessing(chain: Chain) -> Chain:
    """Expects a Chain. Guarantees a Chain whose steps start at the first non-affine step, with
    the leading AffineSteps (in order) in ``pre``; unchanged when the chain has none or when they
    are not followed by a quantizer (split_layers then reports the model's real problem)."""
    count = 0
    while count < len(chain.steps) and isinstance(chain.steps[count], AffineStep):
        count += 1
    if count == 0 or count == len(chain.steps) or not isinstance(chain.steps[count], QuantStep):
        return chain
    return replace(chain, pre=chain.pre + chain.steps[:count], steps=chain.steps[count:])
