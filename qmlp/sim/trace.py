"""Numeric tracing: what the integers inside a model do on real data.

``trace(df, x)`` runs the bit-accurate simulator on ``x`` and reports, per quantizer and layer,
the range each accumulator reaches against its type's range, the share of values each quantizer
clips, which output codes occur (and which never do), and dead channels (outputs that never
change); ``Trace.findings`` says in words what deserves attention, ``Trace.summary()`` fits one
screen. Nothing is estimated: every number is counted on the simulator's integers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..datatypes import BIPOLAR
from ..ir import Dataflow
from .bitaccurate import simulate

__all__ = ["CodeUse", "InputTrace", "LayerTrace", "Trace", "trace", "write_trace", "UNUSED_CODES_FINDING", "CLIP_FINDING"]

UNUSED_CODES_FINDING = 0.25  # say so when a quantizer leaves more than this share of its codes unused
CLIP_FINDING = 0.01  # ... or clips more than this share of its inputs at either end
DEAD_FINDING = 1  # ... or has at least this many channels that never change


@dataclass(frozen=True)
class CodeUse:
    """How often each possible output code occurs (``codes`` ascending, ``counts`` per code)."""

    codes: tuple[int, ...]
    counts: tuple[int, ...]

    @property
    def unused(self) -> tuple[int, ...]:
        return tuple(c for c, n in zip(self.codes, self.counts) if n == 0)

    @property
    def unused_share(self) -> float:
        return len(self.unused) / len(self.codes)


def _code_use(values: np.ndarray, codes: np.ndarray) -> CodeUse:
    counts = np.searchsorted(np.sort(values.ravel()), [codes, codes + 1]).astype(np.int64)
    return CodeUse(codes=tuple(int(c) for c in codes), counts=tuple(int(n) for n in counts[1] - counts[0]))


@dataclass(frozen=True)
class InputTrace:
    """The host-side input quantizer on the traced data."""

    dtype: str
    data_min: float
    data_max: float
    clipped_low: float  # share of input values below the lowest code (x / scale < qmin)
    clipped_high: float  # share above the highest code
    codes: CodeUse


@dataclass(frozen=True)
class LayerTrace:
    """One layer: accumulators against their type, and its activation's output codes."""

    name: str
    acc_dtype: str
    acc_type_range: tuple[int, int]
    acc_reached: tuple[int, int]
    below_first_threshold: float | None  # share of accumulators giving the lowest code (None: no activation)
    above_last_threshold: float | None  # share giving the highest code (the quantizer's upper clip)
    codes: CodeUse | None
    dead_channels: tuple[int, ...]  # outputs that never change over the traced data
    channels: int

    @property
    def acc_range_used(self) -> float:
        low, high = self.acc_type_range
        return (self.acc_reached[1] - self.acc_reached[0]) / max(1, high - low)


@dataclass(frozen=True)
class Trace:
    model: str
    samples: int
    input: InputTrace
    layers: tuple[LayerTrace, ...]
    findings: tuple[str, ...]

    def to_json(self) -> dict:
        data = asdict(self)
        for layer, entry in zip(self.layers, data["layers"]):
            entry["acc_range_used"] = layer.acc_range_used
        return data

    def summary(self) -> str:
        """One screen: a line for the input quantizer, one per layer, then the findings."""
        i = self.input
        lines = [f"qmlp trace: {self.model}, {self.samples} samples",
                 f"{'stage':<8} {'type':<8} {'reached':>18} {'of type range':>20} {'clip lo/hi':>13} "
                 f"{'codes unused':>13} {'dead':>9}",
                 f"{'input':<8} {i.dtype:<8} {f'[{i.data_min:.3g}, {i.data_max:.3g}]':>18} {'(float data)':>20} "
                 f"{f'{i.clipped_low:.0%}/{i.clipped_high:.0%}':>13} "
                 f"{f'{len(i.codes.unused)}/{len(i.codes.codes)}':>13} {'-':>9}"]
        for layer in self.layers:
            lo, hi = layer.acc_type_range
            clip = "-" if layer.codes is None else f"{layer.below_first_threshold:.0%}/{layer.above_last_threshold:.0%}"
            unused = "-" if layer.codes is None else f"{len(layer.codes.unused)}/{len(layer.codes.codes)}"
            lines.append(f"{layer.name:<8} {layer.acc_dtype:<8} {str(list(layer.acc_reached)):>18} "
                         f"{f'[{lo}, {hi}] {layer.acc_range_used:.0%}':>20} {clip:>13} {unused:>13} "
                         f"{f'{len(layer.dead_channels)}/{layer.channels}':>9}")
        lines += ["", "findings:" if self.findings else "findings: none"]
        lines += [f"- {text}" for text in self.findings]
        return "\n".join(lines)


def trace(df: Dataflow, x: np.ndarray) -> Trace:
    """Trace ``x`` (float, ``(batch, *input_shape)``, batch >= 1) through ``df``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"trace needs a batch of at least one input, got shape {x.shape}")
    sim = simulate(df, x)
    flat = x.reshape(x.shape[0], -1)
    quant = df.input
    if quant.dtype == BIPOLAR:
        low = high = 0.0
        codes = np.array([-1, 1])
    else:
        scaled = flat / quant.scale
        low, high = float(np.mean(scaled < quant.qmin)), float(np.mean(scaled > quant.qmax))
        codes = np.arange(quant.qmin, quant.qmax + 1)
    inp = InputTrace(dtype=quant.dtype.name, data_min=float(flat.min()), data_max=float(flat.max()),
                     clipped_low=low, clipped_high=high, codes=_code_use(sim.inputs, codes))
    layers = []
    for layer, acc, out in zip(df.layers, sim.accumulators, sim.activations):
        act = layer.activation
        codes_use = below = above = None
        if act is not None:
            codes = act.output_value(np.arange(act.steps + 1))
            codes_use = _code_use(out, np.sort(codes))
            below, above = float(np.mean(out == codes[0])), float(np.mean(out == codes[-1]))
        dead = tuple(int(c) for c in np.flatnonzero(np.all(out == out[:1], axis=0))) if len(out) > 1 else ()
        layers.append(LayerTrace(
            name=layer.name, acc_dtype=layer.acc_dtype.name,
            acc_type_range=(int(layer.acc_dtype.min), int(layer.acc_dtype.max)),
            acc_reached=(int(acc.min()), int(acc.max())), below_first_threshold=below, above_last_threshold=above,
            codes=codes_use, dead_channels=dead, channels=layer.out_features))
    return Trace(model=df.name, samples=int(x.shape[0]), input=inp, layers=tuple(layers),
                 findings=tuple(_findings(inp, layers, quant.dtype.signed and quant.dtype != BIPOLAR)))


def _findings(inp: InputTrace, layers: list[LayerTrace], signed_input: bool) -> list[str]:
    """What a user should look at, in words, most important first."""
    out = []
    if inp.codes.unused_share > UNUSED_CODES_FINDING:
        share = f"input quantizer: {inp.codes.unused_share:.0%} of codes unused"
        if signed_input and inp.data_min >= 0:
            out.append(f"{share}: your data is non-negative, use an unsigned quantizer")
        elif inp.clipped_low + inp.clipped_high == 0:
            out.append(f"{share}: the data spans [{inp.data_min:.3g}, {inp.data_max:.3g}]; a smaller scale "
                       "would resolve it finer")
        else:
            out.append(share)
    for side, share in (("below the lowest", inp.clipped_low), ("above the highest", inp.clipped_high)):
        if share > CLIP_FINDING:
            out.append(f"input quantizer: {share:.1%} of input values clipped {side} code: widen its range (scale)")
    for layer in layers:
        if layer.codes is not None and layer.codes.unused:
            out.append(f"{layer.name}: output codes {list(layer.codes.unused)} never occur "
                       f"({len(layer.codes.unused)} of {len(layer.codes.codes)})")
        if layer.above_last_threshold is not None and layer.above_last_threshold > 0.5:
            out.append(f"{layer.name}: {layer.above_last_threshold:.0%} of outputs at the highest code "
                       "(clipped by the activation quantizer)")
        if len(layer.dead_channels) >= DEAD_FINDING:
            shown = ", ".join(map(str, layer.dead_channels[:8])) + (", ..." if len(layer.dead_channels) > 8 else "")
            out.append(f"{layer.name}: {len(layer.dead_channels)} of {layer.channels} channels never change "
                       f"(dead: {shown}); they could be pruned")
    return out


def write_trace(result: Trace, directory: Path, df: Dataflow, x: np.ndarray) -> list[Path]:
    """trace.json, summary.txt and one PNG per quantizer/layer into ``directory`` (created)."""
    from .trace_plots import plot_input, plot_layer

    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "trace.json", directory / "summary.txt"]
    paths[0].write_text(json.dumps(result.to_json(), indent=2) + "\n")
    paths[1].write_text(result.summary() + "\n")
    sim = simulate(df, x)
    paths.append(plot_input(result.input, directory / "input.png"))
    for index, (layer, acc) in enumerate(zip(result.layers, sim.accumulators)):
        # file names are qmlp's own (a layer name may come from the ONNX file)
        paths.append(plot_layer(layer, acc, directory / f"layer{index}.png"))
    return paths
