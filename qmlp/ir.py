"""The Dataflow IR: the single source of truth for hardware semantics.

Immutable values (frozen dataclasses holding read-only numpy arrays); passes return new objects
with ``dataclasses.replace``. Semantics, exactly (see DESIGN.md "IR semantics"):

* ``InputQuant`` (host side): ``q = clip(round_half_even(float32(x) / float32(scale)), qmin, qmax)``
  as QONNX ``Quant`` computes it; for BIPOLAR ``q = +1 if x >= 0 else -1``. An optional ``pre``
  (a model's input preprocessing such as ``2x - 1``) first maps ``x`` elementwise, each op in
  float32 in order, as ``execute_onnx`` does.
* ``Layer`` (MVAU): ``acc[c] = sum_k weights[c, k] * in[k]`` in exact integers.
* ``Thresholds``: ``count[c] = sum_i [sign[c] * acc[c] >= values[c, i]]`` with ``sign[c] = -1``
  where ``negate[c]`` (a channel whose level falls as the accumulator grows, e.g. a negative
  BatchNorm scale) and ``+1`` elsewhere; the output value is ``count + bias``, except BIPOLAR
  outputs where it is ``2 * count - 1``. The direction lives here and not in the weights, so a
  layer keeps its trained weight type (negating an INT2 weight -2 would need INT3); ``-acc``
  may need one bit more than ``acc_dtype`` (the RTL compares ``~acc`` with shifted thresholds
  instead, qmlp/hwgen/thresholds.py). The wire between layers
  carries ``count`` (an unsigned ``steps``-level code); ``bias`` is applied by the consumer's
  interpretation of the code, which for the next layer is folded into its input type.
* Last layer without activation: raw accumulators leave the fabric.
* ``OutputDequant`` (host side): ``y[c] = out[c] * scale[c] + bias[c]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import untrusted as u
from .datatypes import BIPOLAR, DataType

__all__ = [
    "SCHEMA_VERSION", "READABLE_SCHEMA_VERSIONS", "InputQuant", "Thresholds", "Folding", "Layer", "OutputDequant",
    "StreamFormat", "Dataflow", "IRError", "PRE_OPS", "PreOp", "frozen_array", "accumulator_range", "verify", "to_json",
    "from_json",
    "save", "load", "replace", "WEIGHT_STORAGES",
]

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)  # version 1 predates Thresholds.negate (all False)
# Folding.weight_storage: the plan's rule, a LUT ROM, a block-RAM ROM (qmlp.hwgen.plan)
WEIGHT_STORAGES = ("auto", "lut", "bram")


class IRError(ValueError):
    """The IR breaks an invariant: a compiler bug, never the user's input."""


def frozen_array(values: Any, dtype: Any) -> np.ndarray:
    """A read-only copy, so IR values cannot be mutated behind a pass's back."""
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


PRE_OPS = ("Add", "Sub", "RSub", "Mul", "Div")  # RSub: const - x


@dataclass(frozen=True, eq=False)
class PreOp:
    """One elementwise float32 op of the input preprocessing: ``x op const`` (``const - x`` for RSub)."""

    op: str
    const: np.ndarray  # float32, size 1 or one per input feature

    def apply(self, x: np.ndarray) -> np.ndarray:
        c = self.const
        return {"Add": lambda: x + c, "Sub": lambda: x - c, "RSub": lambda: c - x,
                "Mul": lambda: x * c, "Div": lambda: x / c}[self.op]().astype(np.float32)


@dataclass(frozen=True, eq=False)
class InputQuant:
    """Host-side input quantizer producing the integers the fabric receives."""

    dtype: DataType
    scale: np.ndarray  # float32, one per input feature
    qmin: int
    qmax: int
    pre: tuple[PreOp, ...] = ()  # input preprocessing absorbed from the model, applied first

    @property
    def features(self) -> int:
        return int(self.scale.shape[0])


@dataclass(frozen=True, eq=False)
class Thresholds:
    """Multi-threshold activation; ``values`` ascending along each row (channel), compared with
    the accumulator, or with its negation where ``negate`` is set (see the module docstring)."""

    values: np.ndarray  # int64, (channels, steps)
    out_dtype: DataType
    bias: int
    negate: np.ndarray | None = None  # bool, (channels,); None = no channel negated

    def __post_init__(self) -> None:
        if self.negate is None:
            object.__setattr__(self, "negate", frozen_array(np.zeros(self.values.shape[0], bool), bool))

    @property
    def steps(self) -> int:
        return int(self.values.shape[1])

    def oriented(self, acc: np.ndarray) -> np.ndarray:
        """``sign[c] * acc[..., c]``: the values the thresholds are compared with (channel last)."""
        return np.where(self.negate, -np.asarray(acc, dtype=np.int64), acc)

    def output_value(self, count: np.ndarray) -> np.ndarray:
        """Map threshold counts to the integer values the next layer multiplies with."""
        if self.out_dtype == BIPOLAR:
            return 2 * count - 1
        return count + self.bias


@dataclass(frozen=True)
class Folding:
    """PE output channels and SIMD inputs processed per cycle; ``pad_*`` zero-pads a dimension
    so that a cheaper PE/SIMD divides it (0 = no padding); ``levels_per_stage`` adder-tree
    levels sit between two pipeline registers (chosen by the fold pass for the clock);
    ``weight_storage`` builds the weight ROM in LUTs (``"lut"``) or block RAM (``"bram"``), or
    leaves it to the plan's rule (``"auto"``); the fold pass prices both for the board."""

    pe: int = 1
    simd: int = 1
    pad_out: int = 0
    pad_in: int = 0
    levels_per_stage: int = 3
    weight_storage: str = "auto"


@dataclass(frozen=True, eq=False)
class Layer:
    """One fully-connected layer with its optional activation."""

    name: str
    weights: np.ndarray  # int64, (out_features, in_features)
    weight_dtype: DataType
    in_dtype: DataType
    acc_dtype: DataType
    activation: Thresholds | None = None
    folding: Folding | None = None

    @property
    def in_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def out_dtype(self) -> DataType:
        return self.activation.out_dtype if self.activation is not None else self.acc_dtype


@dataclass(frozen=True, eq=False)
class OutputDequant:
    """Host-side dequantization of the last layer's integer outputs."""

    scale: np.ndarray  # float64, (channels,)
    bias: np.ndarray  # float64, (channels,)


@dataclass(frozen=True)
class StreamFormat:
    """How vectors are packed on the AXI-Stream ports (see qmlp.packing)."""

    in_elems_per_beat: int
    out_elems_per_beat: int


@dataclass(frozen=True, eq=False)
class Dataflow:
    name: str
    input: InputQuant
    layers: tuple[Layer, ...]
    output: OutputDequant
    input_shape: tuple[int, ...]  # one sample's ONNX input shape (batch axis dropped)
    output_shape: tuple[int, ...]
    argmax: bool = False
    stream: StreamFormat | None = None
    clock_mhz: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


def accumulator_range(weights: np.ndarray, in_dtype: DataType) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel exact (min, max) of ``weights @ x`` over every x in ``in_dtype``'s range."""
    w = np.asarray(weights, dtype=np.int64)
    lo, hi = in_dtype.min, in_dtype.max
    low = np.minimum(w * lo, w * hi).sum(axis=1)
    high = np.maximum(w * lo, w * hi).sum(axis=1)
    return low, high


def verify(df: Dataflow) -> None:
    """Check every IR invariant; raise IRError naming the layer and the broken rule."""
    if df.input.scale.ndim != 1 or not np.all(np.isfinite(df.input.scale)) or np.any(df.input.scale == 0):
        raise IRError("input: scale must be a finite, nonzero vector")
    if not (df.input.dtype.min <= df.input.qmin <= df.input.qmax <= df.input.dtype.max):
        raise IRError(f"input: clip range [{df.input.qmin}, {df.input.qmax}] outside {df.input.dtype}")
    for op in df.input.pre:
        if op.op not in PRE_OPS or op.const.size not in (1, df.input.features) or not np.all(np.isfinite(op.const)):
            raise IRError(f"input: preprocessing {op.op} needs one of {PRE_OPS} with a finite scalar or "
                          "per-feature constant")
    if not df.layers:
        raise IRError("dataflow has no layers")
    features, in_dtype = df.input.features, df.input.dtype
    for index, layer in enumerate(df.layers):
        where = f"layer {index} ({layer.name})"
        if layer.weights.ndim != 2 or layer.in_features != features:
            raise IRError(f"{where}: weights {layer.weights.shape} do not take {features} inputs")
        if layer.in_dtype != in_dtype:
            raise IRError(f"{where}: in_dtype {layer.in_dtype} but producer gives {in_dtype}")
        if not layer.weight_dtype.allows(layer.weights):
            raise IRError(f"{where}: weights not all in {layer.weight_dtype}")
        low, high = accumulator_range(layer.weights, layer.in_dtype)
        if not (layer.acc_dtype.allows(low) and layer.acc_dtype.allows(high)):
            raise IRError(f"{where}: accumulator type {layer.acc_dtype} cannot hold [{low.min()}, {high.max()}]")
        act = layer.activation
        if act is not None:
            if act.values.shape != (layer.out_features, act.steps) or act.steps < 1:
                raise IRError(f"{where}: thresholds shape {act.values.shape}")
            if act.negate.shape != (layer.out_features,) or act.negate.dtype != bool:
                raise IRError(f"{where}: negate must be one bool per channel, got {act.negate.shape} {act.negate.dtype}")
            if np.any(np.diff(act.values, axis=1) < 0):
                raise IRError(f"{where}: thresholds not ascending per channel")
            expected_steps = 1 if act.out_dtype == BIPOLAR else (1 << act.out_dtype.bits) - 1
            if act.steps > expected_steps:
                raise IRError(f"{where}: {act.steps} thresholds for {act.out_dtype}")
            out_lo = act.output_value(np.int64(0))
            out_hi = act.output_value(np.int64(act.steps))
            if not act.out_dtype.allows(np.array([out_lo, out_hi])):
                raise IRError(f"{where}: outputs [{out_lo}, {out_hi}] outside {act.out_dtype}")
        features, in_dtype = layer.out_features, layer.out_dtype
        if layer.folding is not None:
            f = layer.folding
            if (layer.out_features + f.pad_out) % f.pe or (layer.in_features + f.pad_in) % f.simd:
                raise IRError(f"{where}: folding {f} does not divide {layer.weights.shape}")
            if not isinstance(f.levels_per_stage, int) or f.levels_per_stage < 1:
                raise IRError(f"{where}: folding levels_per_stage {f.levels_per_stage!r} must be an int >= 1")
            if f.weight_storage not in WEIGHT_STORAGES:
                raise IRError(f"{where}: folding weight_storage {f.weight_storage!r} must be one of "
                              f"{', '.join(WEIGHT_STORAGES)}")
    if df.output.scale.shape != (features,) or df.output.bias.shape != (features,):
        raise IRError(f"output: dequant vectors must have {features} entries")
    if int(np.prod(df.output_shape)) != features or int(np.prod(df.input_shape)) != df.input.features:
        raise IRError("input/output shapes do not match the layer chain")


# --- JSON -------------------------------------------------------------------------------------

def _layer_to_json(layer: Layer) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": layer.name,
        "weight_dtype": layer.weight_dtype.name,
        "in_dtype": layer.in_dtype.name,
        "acc_dtype": layer.acc_dtype.name,
        "weights": layer.weights.tolist(),
        "activation": None,
        "folding": None if layer.folding is None else vars(layer.folding).copy(),
    }
    if layer.activation is not None:
        data["activation"] = {
            "out_dtype": layer.activation.out_dtype.name,
            "bias": layer.activation.bias,
            "thresholds": layer.activation.values.tolist(),
            "negate": layer.activation.negate.tolist(),
        }
    return data


def _negate_from_json(value: Any, where: str, channels: int) -> np.ndarray:
    if not isinstance(value, list) or len(value) != channels or not all(isinstance(v, bool) for v in value):
        raise u.InputError(f"{where}: must be a list of {channels} true/false values, one per channel")
    return frozen_array(value, bool)


def _folding_from_json(data: Any, where: str) -> Folding | None:
    if data is None:
        return None
    data = u.mapping(data, where)
    extra = sorted(set(data) - {"pe", "simd", "pad_out", "pad_in", "levels_per_stage", "weight_storage"})
    if extra:
        raise u.InputError(f"{where}: unknown field '{extra[0]}' "
                           "(pe, simd, pad_out, pad_in, levels_per_stage, weight_storage)")
    storage = data.get("weight_storage", "auto")
    if storage not in WEIGHT_STORAGES:
        raise u.InputError(f"{where}.weight_storage: {u.printable(repr(storage))[:40]} is not one of "
                           f"{', '.join(WEIGHT_STORAGES)}")
    n = u.LIMITS.features
    return Folding(pe=u.integer(u.field(data, "pe", where), f"{where}.pe", 1, n),
                   simd=u.integer(u.field(data, "simd", where), f"{where}.simd", 1, n),
                   pad_out=u.integer(data.get("pad_out", 0), f"{where}.pad_out", 0, n),
                   pad_in=u.integer(data.get("pad_in", 0), f"{where}.pad_in", 0, n),
                   levels_per_stage=u.integer(data.get("levels_per_stage", 3), f"{where}.levels_per_stage", 1, 64),
                   weight_storage=storage)


def _layer_from_json(data: Any, where: str, features: int) -> Layer:
    """One entry of ``layers``; ``features`` = inputs it receives (weights must have that many columns)."""
    data = u.mapping(data, where)
    bits = u.LIMITS.data_bits
    weight_dtype = u.dtype(u.field(data, "weight_dtype", where), f"{where}.weight_dtype", bits)
    span = 1 << bits
    weights = u.int_array(u.field(data, "weights", where), f"{where}.weights", (None, features), -span, span)
    out_features = weights.shape[0]
    if not 1 <= out_features <= u.LIMITS.features:
        raise u.InputError(f"{where}.weights: {out_features} rows; a layer has 1..{u.LIMITS.features} outputs")
    act = data.get("activation")
    thresholds = None
    if act is not None:
        aw = f"{where}.activation"
        act = u.mapping(act, aw)
        out_dtype = u.dtype(u.field(act, "out_dtype", aw), f"{aw}.out_dtype", bits)
        int64 = np.iinfo(np.int64)
        values = u.int_array(u.field(act, "thresholds", aw), f"{aw}.thresholds", (out_features, None),
                             int(int64.min), int(int64.max))
        negate = act.get("negate")  # absent in schema version 1: no channel negated
        thresholds = Thresholds(values=frozen_array(values, np.int64), out_dtype=out_dtype,
                                bias=u.integer(u.field(act, "bias", aw), f"{aw}.bias", -span, span),
                                negate=None if negate is None else _negate_from_json(negate, f"{aw}.negate",
                                                                                     out_features))
    return Layer(
        name=u.string(u.field(data, "name", where), f"{where}.name"),
        weights=frozen_array(weights, np.int64),
        weight_dtype=weight_dtype,
        in_dtype=u.dtype(u.field(data, "in_dtype", where), f"{where}.in_dtype", bits),
        acc_dtype=u.dtype(u.field(data, "acc_dtype", where), f"{where}.acc_dtype", 64),
        activation=thresholds,
        folding=_folding_from_json(data.get("folding"), f"{where}.folding"),
    )


def to_json(df: Dataflow) -> dict[str, Any]:
    """A JSON-ready dict; floats are written with repr precision so the round trip is exact."""
    return {
        "schema": "qmlp.dataflow",
        "schema_version": SCHEMA_VERSION,
        "name": df.name,
        "input_shape": list(df.input_shape),
        "output_shape": list(df.output_shape),
        "argmax": df.argmax,
        "clock_mhz": df.clock_mhz,
        "stream": None if df.stream is None else vars(df.stream).copy(),
        "metadata": dict(df.metadata),
        "input": {
            "dtype": df.input.dtype.name,
            "qmin": df.input.qmin,
            "qmax": df.input.qmax,
            "scale": [float(s) for s in df.input.scale],
            **({"pre": [{"op": op.op, "const": [float(c) for c in op.const]} for op in df.input.pre]}
               if df.input.pre else {}),
        },
        "layers": [_layer_to_json(layer) for layer in df.layers],
        "output": {
            "scale": [float(s) for s in df.output.scale],
            "bias": [float(b) for b in df.output.bias],
        },
    }


def _shape(value: Any, where: str, features: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= 8:
        raise u.InputError(f"{where}: must be a list of 1..8 dimensions")
    dims = tuple(u.integer(d, f"{where}[{i}]", 1, u.LIMITS.features) for i, d in enumerate(value))
    if math.prod(dims) != features:
        raise u.InputError(f"{where}: {list(dims)} holds {math.prod(dims)} values, the layers need {features}")
    return dims


def _stream_from_json(data: Any, where: str, layers: tuple[Layer, ...], argmax: bool) -> StreamFormat | None:
    """Elements per beat, at most one (padded) vector per beat: a beat width comes from the data."""
    if data is None:
        return None
    data = u.mapping(data, where)
    first, last = layers[0], layers[-1]
    in_max = first.in_features + (first.folding.pad_in if first.folding else 0)
    out_max = 1 if argmax else last.out_features + (last.folding.pad_out if last.folding else 0)
    return StreamFormat(
        in_elems_per_beat=u.integer(u.field(data, "in_elems_per_beat", where), f"{where}.in_elems_per_beat", 1, in_max),
        out_elems_per_beat=u.integer(u.field(data, "out_elems_per_beat", where), f"{where}.out_elems_per_beat",
                                     1, out_max))


def _pre_from_json(data: Any, where: str, features: int) -> tuple[PreOp, ...]:
    """The optional input preprocessing: a short list of {op, const} with finite constants."""
    if not isinstance(data, list) or len(data) > 8:
        raise u.InputError(f"{where}: must be a list of at most 8 {{op, const}} entries")
    ops = []
    for index, raw in enumerate(data):
        at = f"{where}[{index}]"
        raw = u.mapping(raw, at)
        op = u.field(raw, "op", at)
        if op not in PRE_OPS:
            raise u.InputError(f"{at}.op: must be one of {', '.join(PRE_OPS)}")
        raw_const = u.field(raw, "const", at)
        size = len(raw_const) if isinstance(raw_const, list) and len(raw_const) in (1, features) else features
        const = u.float_vector(raw_const, f"{at}.const", size)
        ops.append(PreOp(op, frozen_array(const, np.float32)))
    return tuple(ops)


def _weight_budget(layers: tuple[Layer, ...], where: str) -> None:
    total = 0
    for layer in layers:
        f = layer.folding or Folding()
        total += (layer.out_features + f.pad_out) * (layer.in_features + f.pad_in)
    if total > u.LIMITS.weights:
        raise u.InputError(f"{where}: {total:,} weights (padding included), more than the {u.LIMITS.weights:,} "
                           "qmlp handles")


def from_json(data: Any, source: str = "dataflow.json") -> Dataflow:
    """Build a Dataflow from parsed JSON of untrusted origin.

    Every field is checked for type, range, finiteness and size (``qmlp.untrusted.LIMITS``), then
    every IR invariant (``verify``); any violation is one InputError naming ``source`` and the field."""
    data = u.mapping(data, source)
    if data.get("schema") != "qmlp.dataflow":
        raise u.InputError(f"{source}: not a qmlp dataflow document (missing schema: qmlp.dataflow)")
    if data.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
        raise u.InputError(f"{source}: dataflow schema version {u.field(data, 'schema_version', source, None)!r} "
                           f"not supported (this qmlp reads {', '.join(map(str, READABLE_SCHEMA_VERSIONS))})")
    where = f"{source}: input"
    inp = u.mapping(u.field(data, "input", source), where)
    in_dtype = u.dtype(u.field(inp, "dtype", where), f"{where}.dtype", u.LIMITS.data_bits)
    raw_scale = u.field(inp, "scale", where)
    features = len(raw_scale) if isinstance(raw_scale, list) else 0
    if not 1 <= features <= u.LIMITS.features:
        raise u.InputError(f"{where}.scale: must list one scale per input feature (1..{u.LIMITS.features})")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
        scale = u.float_vector(raw_scale, f"{where}.scale", features, nonzero=True).astype(np.float32)
    if not np.all(np.isfinite(scale)) or np.any(scale == 0):
        raise u.InputError(f"{where}.scale: values must be nonzero and within float32")
    span = 1 << u.LIMITS.data_bits
    input_quant = InputQuant(dtype=in_dtype, scale=frozen_array(scale, np.float32),
                             qmin=u.integer(u.field(inp, "qmin", where), f"{where}.qmin", -span, span),
                             qmax=u.integer(u.field(inp, "qmax", where), f"{where}.qmax", -span, span),
                             pre=_pre_from_json(inp.get("pre", []), f"{where}.pre", features))
    raw_layers = u.field(data, "layers", source)
    if not isinstance(raw_layers, list) or not 1 <= len(raw_layers) <= u.LIMITS.layers:
        raise u.InputError(f"{source}: layers: must be a list of 1..{u.LIMITS.layers} layers")
    layers: list[Layer] = []
    for index, raw in enumerate(raw_layers):
        layers.append(_layer_from_json(raw, f"{source}: layers[{index}]", features))
        features = layers[-1].out_features
    _weight_budget(tuple(layers), f"{source}: layers")
    where = f"{source}: output"
    out = u.mapping(u.field(data, "output", source), where)
    argmax = u.field(data, "argmax", source, False)
    if not isinstance(argmax, bool):
        raise u.InputError(f"{source}: argmax: must be true or false")
    clock = u.field(data, "clock_mhz", source, None)
    metadata = u.mapping(u.field(data, "metadata", source, {}), f"{source}: metadata")
    for key, value in metadata.items():  # provenance text: any length the file size allows
        if not isinstance(value, str):
            raise u.InputError(f"{source}: metadata.{u.quote_name(key)}: must be a string")
    df = Dataflow(
        name=u.string(u.field(data, "name", source), f"{source}: name"),
        input=input_quant,
        layers=tuple(layers),
        output=OutputDequant(scale=frozen_array(u.float_vector(u.field(out, "scale", where), f"{where}.scale",
                                                               features, nonzero=True), np.float64),
                             bias=frozen_array(u.float_vector(u.field(out, "bias", where), f"{where}.bias",
                                                              features), np.float64)),
        input_shape=_shape(u.field(data, "input_shape", source), f"{source}: input_shape", input_quant.features),
        output_shape=_shape(u.field(data, "output_shape", source), f"{source}: output_shape",
                            features),
        argmax=argmax,
        stream=_stream_from_json(u.field(data, "stream", source, None), f"{source}: stream", tuple(layers), argmax),
        clock_mhz=None if clock is None else u.number(clock, f"{source}: clock_mhz", positive=True),
        metadata=dict(metadata),
    )
    try:
        verify(df)
    except IRError as error:
        raise u.InputError(f"{source}: invalid IR: {error}; re-run 'qmlp compile'") from None
    return df


def save(df: Dataflow, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(df), separators=(",", ":")) + "\n")


def load(path: str | Path) -> Dataflow:
    """Read a dataflow.json written by qmlp (or anyone): InputError naming the file and field."""
    return from_json(u.read_json(path, "dataflow"), str(path))
