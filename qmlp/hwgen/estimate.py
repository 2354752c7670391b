"""Analytical performance and resource estimates of a folded Dataflow (no tools needed).

Performance follows the RTL cycle model (qmlp/hwgen/rtl/README.md); resources are a first-order
LUT/FF/BRAM/DSP model of that RTL on a 6-input-LUT Xilinx fabric, good for comparing foldings
and for a quick look before Yosys gives real netlist counts (``qmlp compile --synth``).

Resource model, per layer with MH x MW weights, PE x SIMD lanes, ``a`` input bits, ``w`` weight
bits, ``acc`` accumulator bits, ``t`` thresholds per channel:

* Weights are constants when the layer takes one cycle (every lane always sees the same weight);
  then a TERNARY/BIPOLAR zero weight costs nothing and +-1 is an adder input (the sign folds into
  an add/subtract), an INTk weight adds one shifted input per nonzero canonical-signed-digit.
  Otherwise weights sit in a ROM of ``cycles`` words x ``PE*SIMD*w`` bits and each lane has a
  multiplier: ``a + 1`` LUTs for TERNARY/BIPOLAR (select 0/x/-x), ``a * w`` for INTk (LUT
  multiplier; the RTL never infers DSPs for these widths, so DSP = 0).
* Adder trees: a two-input adder of width b costs b LUTs (LUT + carry chain) and, pipelined, b FFs;
  widths grow one bit per level. Accumulator (only with input folding): ``acc`` LUTs + FFs per PE.
* Thresholds: ``t`` comparators per PE, ``ceil(acc/2)`` LUTs against a constant (no output
  folding) or ``acc`` LUTs against a ROM word of ``PE*t*acc`` bits x ``MH'/PE`` words.
* ROMs: up to 64 words in LUTs (one LUT6 per bit per 64 words); deeper ones in block RAM,
  the cheapest BRAM36/BRAM18 aspect ratio (72x512 ... 1x32768).
* FFs: input, output and pipeline registers plus fold counters.

These are assumptions about a typical mapping, not a synthesis result; ``report/synth_resources``
holds the real counts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..datatypes import BIPOLAR, TERNARY
from ..ir import Dataflow, Folding, Layer
from ..untrusted import quote_name

__all__ = [
    "LayerEstimate", "NetworkEstimate", "estimate_layer", "layer_cost", "estimate", "rom_cost",
    "layer_latency", "steady_state", "write_estimate_reports", "layer_resources_json",
    "network_performance_json", "summary_markdown", "plot_layer_resources", "resources_figure", "LUT_PER_BRAM36",
]

# A BRAM36 is worth this many LUTs when ranking foldings: XCZU7EV has 230,400 LUTs and 312
# BRAM36, so one BRAM36 is as large a share of the device as ~740 LUTs.
LUT_PER_BRAM36 = 740
_LUTROM_MAX_DEPTH = 64
# (width, depth) aspect ratios of a BRAM36 and a BRAM18 (7-series and UltraScale+ alike).
_BRAM36_SHAPES = ((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384), (1, 32768))
_BRAM18_SHAPES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))


@dataclass(frozen=True)
class LayerEstimate:
    name: str
    mh: int
    mw: int
    pe: int
    simd: int
    pad_out: int
    pad_in: int
    cycles: int  # initiation interval of the layer: (MH'/PE) * (MW'/SIMD)
    latency_cycles: int  # first input word in to last output word out
    lut: int
    ff: int
    bram36: float  # BRAM18 count as 0.5
    dsp: int
    weight_storage: str  # "constant", "lut" or "bram"


@dataclass(frozen=True)
class NetworkEstimate:
    name: str
    clock_mhz: float
    layers: tuple[LayerEstimate, ...]
    ii_cycles: float  # steady-state cycles between inferences (cycle model of the RTL)
    latency_cycles: int  # first input beat -> last output beat into an empty pipeline
    max_layer_cycles: int  # FINN's bound: the slowest layer's (MH'/PE)*(MW'/SIMD)
    lut: int
    ff: int
    bram36: float
    dsp: int

    @property
    def latency_ns(self) -> float:
        return self.latency_cycles * 1e3 / self.clock_mhz

    @property
    def throughput_fps(self) -> float:
        return self.clock_mhz * 1e6 / self.ii_cycles

    @property
    def stall_cycles(self) -> float:
        """II lost to stream coupling between layers beyond the slowest layer's own cycles."""
        return self.ii_cycles - self.max_layer_cycles

    @property
    def bottleneck(self) -> str:
        return max(self.layers, key=lambda layer: layer.cycles).name


def rom_cost(width: int, depth: int) -> tuple[int, float, str]:
    """(LUTs, BRAM36 equivalents, kind) of a read-only memory of ``depth`` words x ``width`` bits."""
    if width == 0 or depth <= 1:
        return 0, 0.0, "constant"
    if depth <= _LUTROM_MAX_DEPTH:
        return width * math.ceil(depth / 64), 0.0, "lut"
    b36 = min(math.ceil(width / w) * math.ceil(depth / d) for w, d in _BRAM36_SHAPES)
    b18 = min(math.ceil(width / w) * math.ceil(depth / d) for w, d in _BRAM18_SHAPES)
    return 0, min(float(b36), b18 / 2), "bram"


def _adder_tree(inputs: int, width: int) -> tuple[int, int]:
    """(adder bits, depth in levels) of a balanced tree summing ``inputs`` words of ``width`` bits."""
    bits, levels = 0, 0
    while inputs > 1:
        pairs = inputs // 2
        width += 1
        bits += pairs * width
        inputs -= pairs
        levels += 1
    return bits, levels


def _csd_digits(value: int) -> int:
    """Nonzero digits of ``value`` in canonical signed-digit form (adder inputs of x * value)."""
    value, digits = abs(value), 0
    while value:
        if value & 1:
            digits += 1
            value = value + 1 if value & 2 and value != 1 else value - 1
        value >>= 1
    return digits


def _const_weights(layer: Layer, folding: Folding) -> bool:
    # One ROM word: every lane sees a fixed weight, which synthesis propagates as a constant.
    return (layer.out_features + folding.pad_out) // folding.pe * ((layer.in_features + folding.pad_in) // folding.simd) == 1


def layer_latency(layer: Layer, folding: Folding) -> int:
    """Cycles from a layer's first input beat to its last output beat when it runs alone with
    input always valid and output always ready (RTL README): an MVAU issues NF*SF words and its
    last output beat is valid 4 cycles after the last issue; a fully parallel ternary layer
    (weights all in {-1, 0, 1}) takes input register + adder-tree stages + output register."""
    from .emit import LEVELS_PER_STAGE

    out_folds = (layer.out_features + folding.pad_out) // folding.pe
    in_folds = (layer.in_features + folding.pad_in) // folding.simd
    if out_folds * in_folds == 1 and np.all(np.abs(layer.weights) <= 1):
        levels = (layer.in_features + folding.pad_in - 1).bit_length()
        return -(-levels // LEVELS_PER_STAGE) + 2
    return out_folds * in_folds - 1 + 4


def estimate_layer(layer: Layer, folding: Folding) -> LayerEstimate:
    """Cycles, latency and LUT/FF/BRAM/DSP of one layer under ``folding`` (model in module doc)."""
    mh, mw = layer.out_features + folding.pad_out, layer.in_features + folding.pad_in
    pe, simd = folding.pe, folding.simd
    out_folds, in_folds = mh // pe, mw // simd
    cycles = out_folds * in_folds
    a, w = layer.in_dtype.bits, layer.weight_dtype.bits
    acc = layer.acc_dtype.bits
    low_precision = layer.weight_dtype in (TERNARY, BIPOLAR)
    lut = ff = 0
    bram = 0.0
    if _const_weights(layer, folding):
        storage = "constant"
        if low_precision:
            nonzero = np.count_nonzero(layer.weights, axis=1)
            for count in nonzero:  # the adder tree of each channel only sums its nonzero weights
                bits, _ = _adder_tree(int(count), a + 1)
                lut += bits
                ff += bits
        else:  # a constant INTk weight is a sum of signed shifted copies of the input (CSD digits)
            for row in layer.weights:
                terms = sum(_csd_digits(int(v)) for v in row)
                bits, _ = _adder_tree(terms, a + w)
                lut += bits
                ff += bits
    else:
        rom_lut, bram, storage = rom_cost(pe * simd * w, cycles)
        lut += rom_lut
        lane = a + 1 if low_precision else a * w
        bits, _ = _adder_tree(simd, a + 1 if low_precision else a + w)
        lut += pe * (simd * lane + bits)
        ff += pe * (simd * (a + 1 if low_precision else a + w) + bits)
    if in_folds > 1:  # accumulator per PE
        lut += pe * acc
        ff += pe * acc
    act = layer.activation
    out_bits = layer.out_dtype.bits
    if act is not None:
        if out_folds > 1:
            t_lut, t_bram, _ = rom_cost(pe * act.steps * acc, out_folds)
            lut += t_lut + pe * act.steps * acc
            bram += t_bram
        else:
            lut += pe * act.steps * math.ceil(acc / 2)
        lut += pe * act.steps  # count the comparator outputs into the code
        ff += pe * acc
    ff += simd * a + pe * out_bits + 2 * max(1, cycles).bit_length()
    return LayerEstimate(
        name=layer.name, mh=layer.out_features, mw=layer.in_features, pe=pe, simd=simd,
        pad_out=folding.pad_out, pad_in=folding.pad_in, cycles=cycles,
        latency_cycles=layer_latency(layer, folding), lut=int(lut), ff=int(ff), bram36=float(bram),
        dsp=0, weight_storage=storage)


def layer_cost(est: LayerEstimate) -> float:
    """Scalar cost used to rank foldings: LUT + FF/4 + BRAM36 in LUT-area equivalents."""
    return est.lut + est.ff / 4 + est.bram36 * LUT_PER_BRAM36


def estimate(df: Dataflow) -> NetworkEstimate:
    """Estimate a folded Dataflow. Expects every layer folded, ``df.stream`` and ``df.clock_mhz``
    set. Latency and II come from the cycle model (exact for the RTL without back-pressure)."""
    layers = tuple(estimate_layer(layer, layer.folding) for layer in df.layers)
    latency, ii = steady_state(df)
    return NetworkEstimate(
        name=df.name, clock_mhz=float(df.clock_mhz), layers=layers, ii_cycles=ii, latency_cycles=latency,
        max_layer_cycles=max(layer.cycles for layer in layers),
        lut=sum(layer.lut for layer in layers), ff=sum(layer.ff for layer in layers),
        bram36=sum(layer.bram36 for layer in layers), dsp=sum(layer.dsp for layer in layers))


# --- cycle model ------------------------------------------------------------------------------

def steady_state(df: Dataflow) -> tuple[int, float]:
    """(latency of an inference into an idle pipeline, steady-state II) in cycles.

    Taken from the RTL's executable cycle model (``qmlp.hwgen.cycles``, documented in
    qmlp/hwgen/rtl/README.md), which reproduces every handshake cycle of the emitted design."""
    from .cycles import cycle_model

    model = cycle_model(df)
    return int(model.latency), float(model.ii)


# --- reports ----------------------------------------------------------------------------------

def _resources(item: Any) -> dict[str, Any]:
    # FINN's key names (BRAM_18K, LUT, URAM, DSP) so FINN users can read the file as they know it.
    return {"LUT": item.lut, "FF": item.ff, "BRAM_18K": int(round(item.bram36 * 2)),
            "BRAM36": item.bram36, "URAM": 0, "DSP": item.dsp}


def layer_resources_json(est: NetworkEstimate) -> dict[str, Any]:
    """``estimate_layer_resources.json``: ``{"<layer>": {...}, "total": {...}}``.

    Per layer: ``LUT``, ``FF``, ``BRAM_18K`` (BRAM18 count, FINN's key), ``BRAM36`` (BRAM36
    equivalents, 0.5 per BRAM18), ``URAM`` (always 0), ``DSP`` (always 0), the folding ``PE``,
    ``SIMD``, ``pad_out``, ``pad_in``, the IR sizes ``MH``, ``MW`` and ``weight_storage``
    (``constant`` | ``lut`` | ``bram``). ``total`` has the resource keys only."""
    data: dict[str, Any] = {}
    for layer in est.layers:
        entry = _resources(layer)
        entry.update(PE=layer.pe, SIMD=layer.simd, pad_out=layer.pad_out, pad_in=layer.pad_in,
                     MH=layer.mh, MW=layer.mw, weight_storage=layer.weight_storage)
        data[layer.name] = entry
    data["total"] = _resources(est)
    return data


def network_performance_json(est: NetworkEstimate) -> dict[str, Any]:
    """``estimate_network_performance.json``: FINN's keys plus qmlp's explicit cycle counts.

    FINN's: ``critical_path_cycles`` (= latency_cycles), ``max_cycles`` (slowest layer's
    (MH'/PE)*(MW'/SIMD)), ``max_cycles_node_name``, ``estimated_throughput_fps`` (clock / II),
    ``estimated_latency_ns``. qmlp's: ``clock_mhz``, ``ii_cycles`` (steady-state cycles between
    inferences), ``latency_cycles`` (first input beat to last output beat, idle pipeline),
    ``stall_cycles`` (II beyond max_cycles, 0 when the layers are decoupled), ``layer_cycles`` and
    ``layer_latency_cycles`` (per layer, standalone)."""
    return {
        "critical_path_cycles": est.latency_cycles,
        "max_cycles": est.max_layer_cycles,
        "max_cycles_node_name": est.bottleneck,
        "estimated_throughput_fps": est.throughput_fps,
        "estimated_latency_ns": est.latency_ns,
        "clock_mhz": est.clock_mhz,
        "ii_cycles": est.ii_cycles,
        "latency_cycles": est.latency_cycles,
        "stall_cycles": est.stall_cycles,
        "layer_cycles": {layer.name: layer.cycles for layer in est.layers},
        "layer_latency_cycles": {layer.name: layer.latency_cycles for layer in est.layers},
    }


def _bar(value: float, total: float, width: int = 30) -> str:
    share = 0.0 if not total else min(1.0, value / total)
    filled = round(share * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {100 * share:5.1f}%"


def summary_markdown(est: NetworkEstimate, totals: Mapping[str, float] | None = None,
                     board: str | None = None) -> str:
    """A readable summary: performance, a per-layer table and text bars of device use."""
    lines = [f"# qmlp estimate: {quote_name(est.name)}", ""]
    lines += [f"- clock: {est.clock_mhz:g} MHz" + (f" (board {board})" if board else ""),
              f"- initiation interval: {est.ii_cycles:g} cycles -> {est.throughput_fps:,.0f} inferences/s"
              f" (slowest layer {quote_name(est.bottleneck)}: {est.max_layer_cycles} cycles)",
              f"- latency: {est.latency_cycles} cycles = {est.latency_ns:,.1f} ns", "",
              "| layer | MH x MW | PE | SIMD | pad out/in | cycles | latency | LUT | FF | BRAM36 | DSP | weights |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for l in est.layers:
        lines.append(f"| {quote_name(l.name)} | {l.mh} x {l.mw} | {l.pe} | {l.simd} | {l.pad_out}/{l.pad_in} | {l.cycles} | "
                     f"{l.latency_cycles} | {l.lut} | {l.ff} | {l.bram36:g} | {l.dsp} | {l.weight_storage} |")
    lines.append(f"| **total** | | | | | {est.ii_cycles:g} (II) | {est.latency_cycles} | {est.lut} | {est.ff} | "
                 f"{est.bram36:g} | {est.dsp} | |")
    if totals:
        lines += ["", "Device use (estimate):", "```"]
        for key, value in (("LUT", est.lut), ("FF", est.ff), ("BRAM36", est.bram36), ("DSP", est.dsp)):
            if totals.get(key):
                lines.append(f"{key:<7}{_bar(value, totals[key])}  {value:g} / {totals[key]:g}")
        lines.append("```")
    lines += ["", "Estimates from the analytical model in qmlp/hwgen/estimate.py; run "
              "`qmlp compile --synth` for Yosys netlist counts.", ""]
    return "\n".join(lines)


def plot_layer_resources(est: NetworkEstimate, path: Path) -> None:
    """A PNG bar chart of LUT and FF per layer (left axis) and BRAM36 (right axis, own scale)."""
    import matplotlib.pyplot as plt

    fig = resources_figure(est)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def resources_figure(est: NetworkEstimate):  # noqa: ANN201 - a matplotlib Figure
    """The figure behind ``plot_layer_resources``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [quote_name(layer.name) for layer in est.layers]  # tick labels are parsed as mathtext too
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 2), 3.5))
    bars = [ax.bar(x - 0.27, [l.lut for l in est.layers], width=0.27, label="LUT"),
            ax.bar(x, [l.ff for l in est.layers], width=0.27, label="FF")]
    bram = ax.twinx()
    bars.append(bram.bar(x + 0.27, [l.bram36 for l in est.layers], width=0.27, color="C2",
                         label="BRAM36 (right axis)"))
    ax.set_xticks(x, names)
    ax.set_ylabel("LUT, FF (estimate)")
    bram.set_ylabel("BRAM36 (estimate)")
    bram.set_ylim(0, max(1.0, max(l.bram36 for l in est.layers) * 1.15))
    ax.set_title(f"{quote_name(est.name)}: resources per layer (estimate)")
    ax.legend(handles=bars, fontsize="small", loc="upper right")
    fig.tight_layout()
    return fig


def write_estimate_reports(est: NetworkEstimate, report_dir: str | Path, *,
                           totals: Mapping[str, float] | None = None, board: str | None = None) -> list[Path]:
    """Write the estimate JSONs, summary.md and resources.png into ``report_dir``."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = [report_dir / "estimate_layer_resources.json", report_dir / "estimate_network_performance.json",
             report_dir / "summary.md", report_dir / "resources.png"]
    paths[0].write_text(json.dumps(layer_resources_json(est), indent=2) + "\n")
    paths[1].write_text(json.dumps(network_performance_json(est), indent=2) + "\n")
    paths[2].write_text(summary_markdown(est, totals, board))
    plot_layer_resources(est, paths[3])
    return paths
