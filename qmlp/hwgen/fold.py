"""Folding passes: choose or apply PE/SIMD per layer (IR -> IR).

A layer with MH outputs and MW inputs processed PE outputs x SIMD inputs per clock needs
``(MH'/PE) * (MW'/SIMD)`` cycles per inference, where ``MH' = MH + pad_out`` and
``MW' = MW + pad_in`` are the zero-padded sizes (FINN's rule is the special case pad = 0, i.e.
PE | MH and SIMD | MW). Padding only ever rounds a dimension up to the next multiple of its
parallelism (pad < PE, pad < SIMD), so a padded layer does exactly the work of
``ceil(MH/PE) * ceil(MW/SIMD)`` cycles and never wastes a whole extra fold.

Every pass here returns a new Dataflow with ``Layer.folding``, ``Dataflow.stream`` (rule in
docs/interfaces.md) and ``Dataflow.clock_mhz`` set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import FoldingError
from ..untrusted import read_json
from ..ir import Dataflow, Folding, Layer, StreamFormat, replace

__all__ = [
    "divisors", "parallelism_options", "fold_cycles", "target_cycles", "fold_layer", "fold",
    "apply_folding", "read_folding", "folding_config", "write_final_hw_config", "with_stream",
    "default_target_fps",
]

# Networks with at most this many weights are folded fully parallel by default: one inference
# per clock then costs only a few thousand LUTs and gives the lowest latency.
TINY_NETWORK_WEIGHTS = 2048
# Otherwise the default budget is this many clock cycles per inference (200 k inferences/s at
# 200 MHz): far above what a host can feed through DMA one vector at a time, far below the cost
# of a fully parallel pipeline.
DEFAULT_CYCLES_PER_INFERENCE = 1000


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` (FINN's legal PE/SIMD values), ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def parallelism_options(n: int, *, allow_padding: bool = True) -> list[tuple[int, int]]:
    """Legal ``(parallelism, pad)`` pairs for a dimension of size ``n``.

    Without padding: the divisors of n with pad 0. With padding: for every achievable fold count
    f the smallest parallelism reaching it, p = ceil(n / f), padded by ``(-n) % p``; a larger p
    with the same fold count would only add idle lanes, so it is never offered."""
    if not allow_padding:
        return [(d, 0) for d in divisors(n)]
    options = {math.ceil(n / f) for f in range(1, n + 1)}
    return [(p, (-n) % p) for p in sorted(options)]


def fold_cycles(layer: Layer, folding: Folding) -> int:
    """Cycles per inference of one layer: (MH'/PE) * (MW'/SIMD)."""
    out_folds = (layer.out_features + folding.pad_out) // folding.pe
    in_folds = (layer.in_features + folding.pad_in) // folding.simd
    return out_folds * in_folds


def target_cycles(target_fps: float | str, clock_mhz: float) -> int:
    """Cycle budget per inference: floor(clock_hz / target_fps); ``"max"`` means 1.

    Raises FoldingError when the target is not a positive number or exceeds one inference per
    clock (no folding can meet it)."""
    if clock_mhz is None or not clock_mhz > 0:
        raise FoldingError(f"--clock-mhz: {clock_mhz!r} is not a positive frequency; give e.g. --clock-mhz 200")
    if target_fps == "max":
        return 1
    try:
        fps = float(target_fps)
    except (TypeError, ValueError):
        raise FoldingError(f"--target-fps: {target_fps!r} is neither a number nor 'max'") from None
    if not fps > 0 or math.isinf(fps):
        raise FoldingError(f"--target-fps: {target_fps!r} must be a positive number of inferences/s or 'max'")
    budget = math.floor(clock_mhz * 1e6 / fps + 1e-9)
    if budget < 1:
        raise FoldingError(
            f"--target-fps {fps:g} exceeds one inference per clock at {clock_mhz:g} MHz; "
            f"use at most {clock_mhz * 1e6:g} (or 'max') or raise --clock-mhz")
    return budget


def default_target_fps(df: Dataflow, clock_mhz: float) -> float | str:
    """The default folding target: fully parallel for tiny networks, else 1000 cycles/inference."""
    weights = sum(layer.weights.size for layer in df.layers)
    if weights <= TINY_NETWORK_WEIGHTS:
        return "max"
    return clock_mhz * 1e6 / DEFAULT_CYCLES_PER_INFERENCE


def _layer_cost(layer: Layer, folding: Folding) -> float:
    from .estimate import estimate_layer, layer_cost  # lazy: estimate imports this module's helpers
    return layer_cost(estimate_layer(layer, folding))


def fold_layer(layer: Layer, budget: int, *, cost: Callable[[Layer, Folding], float] | None = None,
               allow_padding: bool = True) -> Folding:
    """The cheapest folding of ``layer`` whose cycles per inference are <= ``budget``.

    Expects budget >= 1. Guarantees the result is legal (pads < PE/SIMD) and meets the budget;
    ties on cost go to fewer cycles, then smaller PE. Cost defaults to the resource estimate
    (``estimate.layer_cost``)."""
    cost = cost or _layer_cost
    best: tuple[Any, ...] | None = None
    for pe, pad_out in parallelism_options(layer.out_features, allow_padding=allow_padding):
        out_folds = (layer.out_features + pad_out) // pe
        if out_folds > budget:
            continue
        max_in_folds = budget // out_folds
        for simd, pad_in in parallelism_options(layer.in_features, allow_padding=allow_padding):
            in_folds = (layer.in_features + pad_in) // simd
            if in_folds > max_in_folds:
                continue
            candidate = Folding(pe=pe, simd=simd, pad_out=pad_out, pad_in=pad_in)
            key = (cost(layer, candidate), out_folds * in_folds, pe, simd)
            if best is None or key < best[0]:
                best = (key, candidate)
    if best is None:  # unreachable for budget >= 1: PE = MH, SIMD = MW takes one cycle
        raise FoldingError(f"layer {layer.name}: no folding meets {budget} cycles per inference")
    return best[1]


def with_stream(df: Dataflow, clock_mhz: float | None = None) -> Dataflow:
    """Set ``Dataflow.stream`` from the folding (interfaces.md rule) and the clock.

    Expects every layer folded. Input beats carry the first layer's SIMD elements, output beats
    the last layer's PE elements, or one class index with argmax."""
    out_elems = 1 if df.argmax else df.layers[-1].folding.pe
    stream = StreamFormat(in_elems_per_beat=df.layers[0].folding.simd, out_elems_per_beat=out_elems)
    return replace(df, stream=stream, clock_mhz=df.clock_mhz if clock_mhz is None else float(clock_mhz))


def fold(df: Dataflow, *, target_fps: float | str, clock_mhz: float, allow_padding: bool = True) -> Dataflow:
    """Fold every layer as cheaply as possible while meeting ``target_fps`` at ``clock_mhz``.

    Expects a verified IR. Guarantees the network's steady-state initiation interval, as the
    cycle model of the RTL counts it (estimate.steady_state), is <= floor(clock_hz / target_fps);
    ``target_fps="max"`` gives PE = MH and SIMD = MW everywhere (one inference per clock).

    Each layer first gets the whole cycle budget. A folded consumer reads its input stream only
    during its first output fold, so a slow producer can stretch the network's II beyond the
    slowest layer's own cycles; when the cycle model shows that, the per-layer budget shrinks in
    proportion and the layers are folded again."""
    from .estimate import steady_state  # lazy: estimate imports this module's users

    budget = target_cycles(target_fps, clock_mhz)
    layer_budget = budget
    while True:
        layers = tuple(replace(layer, folding=fold_layer(layer, layer_budget, allow_padding=allow_padding))
                       for layer in df.layers)
        folded = with_stream(replace(df, layers=layers), clock_mhz)
        _, ii = steady_state(folded)
        if ii <= budget:
            return folded
        if layer_budget == 1:  # not reached by the RTL (fully parallel runs at II 1); a guard
            raise FoldingError(f"no folding of {df.name} meets {budget} cycles per inference (best II {ii:g})")
        layer_budget = max(1, min(layer_budget - 1, math.floor(layer_budget * budget / ii)))


# --- FINN final_hw_config.json ----------------------------------------------------------------

_PAD_KEYS = {"pad_out": "qmlp_pad_out", "pad_in": "qmlp_pad_in"}
# FINN attributes that describe implementation choices qmlp makes itself; accepted and ignored.
_IGNORED_KEYS = {"ram_style", "resType", "mem_mode", "runtime_writeable_weights", "inFIFODepths",
                 "outFIFODepths", "depth", "impl_style", "ram_style_thresholds", "preferred_impl_style"}


def _default_value(defaults: Mapping[str, Any], key: str) -> Any:
    # FINN writes defaults as {"PE": [value, ["op types"]]}; accept that and plain values.
    value = defaults.get(key, 1)
    return value[0] if isinstance(value, list) and value else value


def _int_field(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FoldingError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def _check_parallelism(where: str, key: str, dim: str, n: int, value: int, pad: int, pad_key: str) -> None:
    if not 1 <= value <= n:
        raise FoldingError(f"{where}: {key}={value} must be between 1 and {dim}={n} "
                           f"(legal {key}: {_legal_list(n)})")
    if not 0 <= pad < value:
        raise FoldingError(f"{where}: {pad_key}={pad} must be between 0 and {key}-1={value - 1}")
    if (n + pad) % value:
        hint = f"; or set {pad_key}={(-n) % value} to zero-pad" if pad == 0 else ""
        raise FoldingError(f"{where}: {key}={value} does not divide {dim}={n}"
                           f"{f'+{pad_key}={pad}' if pad else ''} (legal {key}: {_legal_list(n)}{hint})")


def _legal_list(n: int) -> str:
    return ", ".join(map(str, divisors(n)))


def apply_folding(df: Dataflow, config: Mapping[str, Any], *, clock_mhz: float | None = None,
                  source: str = "final_hw_config.json") -> Dataflow:
    """Apply a FINN-style folding config ``{"Defaults": {...}, "<layer>": {"PE": n, "SIMD": m}}``.

    Layers missing from the config take "Defaults" (or 1). Optional ``qmlp_pad_out`` /
    ``qmlp_pad_in`` allow a PE/SIMD that does not divide the dimension. Raises FoldingError naming
    the layer, the broken constraint and the legal values; unknown layer names are errors too."""
    if not isinstance(config, Mapping):
        raise FoldingError(f"{source}: expected a JSON object of layer name -> {{\"PE\": n, \"SIMD\": m}}")
    names = {layer.name for layer in df.layers}
    unknown = sorted(set(config) - names - {"Defaults"})
    if unknown:
        raise FoldingError(f"{source}: no layer named {unknown[0]!r} (layers: {', '.join(l.name for l in df.layers)})")
    defaults = config.get("Defaults", {}) or {}
    layers = []
    for layer in df.layers:
        entry = config.get(layer.name, {})
        where = f"{source}: layer {layer.name}"
        if not isinstance(entry, Mapping):
            raise FoldingError(f"{where}: expected an object like {{\"PE\": 1, \"SIMD\": 1}}, got {entry!r}")
        known = {"PE", "SIMD", *_PAD_KEYS.values(), *_IGNORED_KEYS}
        extra = sorted(set(entry) - known)
        if extra:
            raise FoldingError(f"{where}: unknown key {extra[0]!r} (qmlp reads PE, SIMD, qmlp_pad_out, qmlp_pad_in)")
        pe = _int_field(where, "PE", entry.get("PE", _default_value(defaults, "PE")))
        simd = _int_field(where, "SIMD", entry.get("SIMD", _default_value(defaults, "SIMD")))
        pad_out = _int_field(where, "qmlp_pad_out", entry.get("qmlp_pad_out", 0))
        pad_in = _int_field(where, "qmlp_pad_in", entry.get("qmlp_pad_in", 0))
        _check_parallelism(where, "PE", "MH", layer.out_features, pe, pad_out, "qmlp_pad_out")
        _check_parallelism(where, "SIMD", "MW", layer.in_features, simd, pad_in, "qmlp_pad_in")
        layers.append(replace(layer, folding=Folding(pe=pe, simd=simd, pad_out=pad_out, pad_in=pad_in)))
    return with_stream(replace(df, layers=tuple(layers)), clock_mhz)


def read_folding(path: str | Path) -> dict[str, Any]:
    """Load a final_hw_config.json: InputError (one line) for a missing, oversized, too deeply
    nested or malformed file; apply_folding checks the content."""
    return read_json(path, "--folding")


def folding_config(df: Dataflow) -> dict[str, Any]:
    """The folding of ``df`` in FINN's final_hw_config.json format (pads only when nonzero)."""
    config: dict[str, Any] = {"Defaults": {}}
    for layer in df.layers:
        f = layer.folding
        if f is None:
            raise FoldingError(f"layer {layer.name}: not folded yet; run fold or apply_folding first")
        entry: dict[str, Any] = {"PE": f.pe, "SIMD": f.simd}
        for attr, key in _PAD_KEYS.items():
            if getattr(f, attr):
                entry[key] = getattr(f, attr)
        config[layer.name] = entry
    return config


def write_final_hw_config(df: Dataflow, path: str | Path) -> None:
    """Write ``folding_config(df)`` as indented JSON (apply_folding reads it back unchanged)."""
    Path(path).write_text(json.dumps(folding_config(df), indent=2) + "\n")
